//! A unified line diff (`@@ -a,b +c,d @@`, three lines of context) of a script's
//! source on the server and in the folder: a longest common subsequence over
//! lines, which is plenty for scripts (a few hundred lines; past a size cap the
//! whole file is shown as replaced).

/// One line of the edit script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edit {
    Keep(usize, usize),
    Delete(usize),
    Insert(usize),
}

/// Above this many cells the LCS table is not built.
const MAX_CELLS: usize = 4_000_000;
const CONTEXT: usize = 3;

/// The diff of `old` → `new`: the unified text (no file header) and the number of
/// changed lines (the larger of lines removed and lines added).
pub fn unified(old: &str, new: &str) -> (String, usize) {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let edits = edits(&a, &b);
    let removed = edits
        .iter()
        .filter(|e| matches!(e, Edit::Delete(_)))
        .count();
    let added = edits
        .iter()
        .filter(|e| matches!(e, Edit::Insert(_)))
        .count();
    (render(&a, &b, &edits), removed.max(added))
}

fn edits(a: &[&str], b: &[&str]) -> Vec<Edit> {
    // Common prefix and suffix first: most edits touch a few lines.
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut out: Vec<Edit> = (0..prefix).map(|i| Edit::Keep(i, i)).collect();
    if ma.len().saturating_mul(mb.len()) > MAX_CELLS {
        out.extend((0..ma.len()).map(|i| Edit::Delete(prefix + i)));
        out.extend((0..mb.len()).map(|j| Edit::Insert(prefix + j)));
    } else {
        // lcs[i][j]: the LCS length of ma[i..] and mb[j..].
        let (n, m) = (ma.len(), mb.len());
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * (m + 1) + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && ma[i] == mb[j] {
                out.push(Edit::Keep(prefix + i, prefix + j));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
                // Deletions before insertions, as `diff -u` shows them.
                out.push(Edit::Delete(prefix + i));
                i += 1;
            } else {
                out.push(Edit::Insert(prefix + j));
                j += 1;
            }
        }
    }
    let (sa, sb) = (a.len() - suffix, b.len() - suffix);
    out.extend((0..suffix).map(|k| Edit::Keep(sa + k, sb + k)));
    out
}

fn render(a: &[&str], b: &[&str], edits: &[Edit]) -> String {
    let changed: Vec<usize> = edits
        .iter()
        .enumerate()
        .filter(|(_, e)| !matches!(e, Edit::Keep(..)))
        .map(|(i, _)| i)
        .collect();
    let mut out = String::new();
    let mut k = 0;
    while k < changed.len() {
        // A hunk: changes closer than 2 × context are merged.
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 2 * CONTEXT + 1 {
            k += 1;
            end = changed[k];
        }
        let end = (end + CONTEXT + 1).min(edits.len());
        k += 1;
        let hunk = &edits[start..end];
        let (old_start, new_start) = position(edits, start);
        let old_len = hunk
            .iter()
            .filter(|e| !matches!(e, Edit::Insert(_)))
            .count();
        let new_len = hunk
            .iter()
            .filter(|e| !matches!(e, Edit::Delete(_)))
            .count();
        out.push_str(&format!(
            "@@ -{},{old_len} +{},{new_len} @@\n",
            old_start + usize::from(old_len > 0),
            new_start + usize::from(new_len > 0)
        ));
        for e in hunk {
            match *e {
                Edit::Keep(i, _) => out.push_str(&format!(" {}\n", a[i])),
                Edit::Delete(i) => out.push_str(&format!("-{}\n", a[i])),
                Edit::Insert(j) => out.push_str(&format!("+{}\n", b[j])),
            }
        }
    }
    out
}

/// Lines of old and new before edit `at`.
fn position(edits: &[Edit], at: usize) -> (usize, usize) {
    edits[..at].iter().fold((0, 0), |(o, n), e| match e {
        Edit::Keep(..) => (o + 1, n + 1),
        Edit::Delete(_) => (o + 1, n),
        Edit::Insert(_) => (o, n + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn one_changed_line_is_one_hunk_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let (text, n) = unified(old, new);
        assert_eq!(n, 1);
        assert_eq!(text, "@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n");
    }

    #[test]
    fn identical_sources_have_no_diff() {
        assert_eq!(unified("x\ny\n", "x\ny\n"), (String::new(), 0));
    }

    #[test]
    fn additions_and_removals_are_counted() {
        let (text, n) = unified("a\nb\n", "a\nc\nd\ne\n");
        assert_eq!(n, 3);
        assert!(text.contains("-b\n+c\n+d\n+e\n"), "{text}");
    }
}
