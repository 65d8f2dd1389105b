//! Medians, percentiles and the pairs of an interleaved comparison.

use serde::Serialize;

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of already sorted `values`.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One interleaved pair: PiCloud's number and the baseline's, same unit.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Pair {
    pub picloud: f64,
    pub baseline: f64,
}

impl Pair {
    pub fn ratio(&self) -> f64 {
        if self.baseline == 0.0 {
            0.0
        } else {
            self.picloud / self.baseline
        }
    }
}

/// What a set of pairs says: medians of each side, the median ratio and its spread.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Summary {
    pub picloud: f64,
    pub baseline: f64,
    pub ratio: f64,
    pub ratio_min: f64,
    pub ratio_max: f64,
}

pub fn summarize(pairs: &[Pair]) -> Summary {
    let ratios: Vec<f64> = pairs.iter().map(Pair::ratio).collect();
    Summary {
        picloud: median(&pairs.iter().map(|p| p.picloud).collect::<Vec<_>>()),
        baseline: median(&pairs.iter().map(|p| p.baseline).collect::<Vec<_>>()),
        ratio: median(&ratios),
        ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratio_max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
    }

    #[test]
    fn summary_takes_the_median_ratio_and_its_spread() {
        let pairs = [
            Pair {
                picloud: 80.0,
                baseline: 100.0,
            },
            Pair {
                picloud: 90.0,
                baseline: 100.0,
            },
            Pair {
                picloud: 50.0,
                baseline: 100.0,
            },
        ];
        let s = summarize(&pairs);
        assert!((s.ratio - 0.8).abs() < 1e-9);
        assert!((s.ratio_min - 0.5).abs() < 1e-9);
        assert!((s.ratio_max - 0.9).abs() < 1e-9);
    }
}
