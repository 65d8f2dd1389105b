//! The captured log of one run, capped in bytes.
//!
//! A line costs its message bytes plus one (its line break, as in a log file), so
//! even empty lines use up the budget and a loop of `log::info("")` cannot grow the
//! buffer without bound. Lines past the cap are dropped, never an error: logging must
//! not change what a script does.

use crate::outcome::{LogLevel, LogLine};

#[derive(Debug)]
pub(crate) struct LogBuffer {
    lines: Vec<LogLine>,
    used: usize,
    max_bytes: usize,
    truncated: bool,
}

impl LogBuffer {
    pub(crate) fn new(max_bytes: usize) -> LogBuffer {
        LogBuffer {
            lines: Vec::new(),
            used: 0,
            max_bytes,
            truncated: false,
        }
    }

    /// Keeps the line if it fits in what is left of the budget.
    pub(crate) fn push(&mut self, level: LogLevel, message: &str) {
        let cost = message.len().saturating_add(1);
        if self.truncated || cost > self.max_bytes - self.used {
            // Once a line is dropped, later (possibly shorter) lines are dropped too,
            // so the captured log is always a prefix of what the script logged.
            self.truncated = true;
            return;
        }
        self.used += cost;
        self.lines.push(LogLine {
            level,
            message: message.to_owned(),
            at: chrono::Utc::now(),
        });
    }

    pub(crate) fn into_parts(self) -> (Vec<LogLine>, bool) {
        (self.lines, self.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_past_the_cap_are_dropped_and_flagged() {
        let mut log = LogBuffer::new(10);
        log.push(LogLevel::Info, "12345"); // costs 6
        log.push(LogLevel::Warn, "123"); // costs 4: exactly full
        log.push(LogLevel::Error, ""); // costs 1: over
        let (lines, truncated) = log.into_parts();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].level, LogLevel::Warn);
        assert!(truncated);
    }

    proptest! {
        #[test]
        fn captured_bytes_never_exceed_the_cap(
            max in 0usize..200,
            messages in proptest::collection::vec(".{0,40}", 0..50),
        ) {
            let mut log = LogBuffer::new(max);
            for m in &messages {
                log.push(LogLevel::Info, m);
            }
            let (lines, truncated) = log.into_parts();
            let used: usize = lines.iter().map(|l| l.message.len() + 1).sum();
            prop_assert!(used <= max);
            // What was kept is a prefix of what was logged.
            for (kept, logged) in lines.iter().zip(&messages) {
                prop_assert_eq!(&kept.message, logged);
            }
            prop_assert_eq!(truncated, lines.len() < messages.len());
        }
    }
}
