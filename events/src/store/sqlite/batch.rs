//! Many rows per statement on SQLite.
//!
//! sqlx runs SQLite on a worker thread: every statement is a message to it and a
//! wake-up back, which costs more than inserting a small row. So batches are
//! written with multi-row statements. A batch of `n` rows is cut into chunks
//! whose sizes are powers of two (full chunks of the largest size, then the
//! binary digits of the rest), so whatever `n` is, the writer connection only
//! ever prepares a handful of statement texts and keeps them all cached.

/// The most rows one statement carries. SQLite (3.32 and later, as bundled)
/// allows 32,766 variables per statement; 256 rows of up to 8 columns stay far
/// below that, and larger statements save nothing measurable.
pub(super) const MAX_ROWS: usize = 256;

/// The sizes of the chunks `n` rows are written in, largest first; they add up
/// to `n`. `max` is a power of two.
pub(super) fn chunk_sizes(n: usize, max: usize) -> impl Iterator<Item = usize> {
    debug_assert!(max.is_power_of_two());
    let full = n / max;
    let rest = n % max;
    let digits = (0..max.trailing_zeros())
        .rev()
        .map(|bit| 1usize << bit)
        .filter(move |size| rest & size != 0);
    std::iter::repeat_n(max, full).chain(digits)
}

/// `(?, ?, …), (?, …), …`: `rows` tuples of `columns` anonymous parameters,
/// bound in order.
///
/// Anonymous, not numbered: sqlx asks SQLite for the name of every parameter it
/// binds (`sqlite3_bind_parameter_name`), which for numbered parameters walks a
/// list of all of them, so binding a statement of `n` numbered parameters costs
/// O(n²): 2,048 parameters (256 rows of 8) took a quarter of the process's CPU
/// while the invocation recorder drained. For `?` the answer is immediate.
pub(super) fn values(rows: usize, columns: usize) -> String {
    let mut tuple = String::with_capacity(columns * 3);
    tuple.push('(');
    for column in 0..columns {
        if column > 0 {
            tuple.push_str(", ");
        }
        tuple.push('?');
    }
    tuple.push(')');
    let mut text = String::with_capacity(rows * (tuple.len() + 2));
    for row in 0..rows {
        if row > 0 {
            text.push_str(", ");
        }
        text.push_str(&tuple);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_adding_up_to_the_batch() {
        let sizes = |n| chunk_sizes(n, 256).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(512), vec![256, 256]);
        assert_eq!(sizes(300), vec![256, 32, 8, 4]);
        assert_eq!(sizes(255), vec![128, 64, 32, 16, 8, 4, 2, 1]);
        for n in 0..2_000 {
            let all = sizes(n);
            assert_eq!(all.iter().sum::<usize>(), n);
            assert!(all.iter().all(|s| s.is_power_of_two() && *s <= 256));
            assert!(all.windows(2).all(|w| w[0] >= w[1]), "largest first");
        }
    }

    #[test]
    fn values_has_one_anonymous_parameter_per_cell() {
        assert_eq!(values(1, 1), "(?)");
        assert_eq!(values(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
