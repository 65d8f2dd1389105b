//! `log::info`, `log::warn`, `log::error`: lines captured with the run.
//!
//! Debug lines come from Rhai's own `debug(value)` (and `print(value)` logs at info):
//! `debug` is a reserved keyword, so no `log::debug` can be called.
//!
//! The capture is capped by `max_log_bytes`; lines past the cap are dropped and the run
//! is marked `logs_truncated`. Logging never fails.

use rhai::plugin::*;

use crate::outcome::LogLevel;
use crate::run_state;

#[export_module]
pub mod log_functions {
    use super::capture;
    use crate::outcome::LogLevel;

    /// Captures an info line. A non-string value is logged in its display form.
    ///
    /// ```rhai
    /// log::info("order " + order.id + " accepted");
    /// ```
    pub fn info(message: Dynamic) {
        capture(LogLevel::Info, &message);
    }

    /// Captures a warning.
    ///
    /// ```rhai
    /// log::warn("retrying with the fallback host");
    /// ```
    pub fn warn(message: Dynamic) {
        capture(LogLevel::Warn, &message);
    }

    /// Captures an error line (the run still goes on: throw to fail it).
    ///
    /// ```rhai
    /// log::error(`payment ${id} declined`);
    /// ```
    pub fn error(message: Dynamic) {
        capture(LogLevel::Error, &message);
    }
}

/// A string is logged as is, anything else in its display form.
fn capture(level: LogLevel, message: &Dynamic) {
    match message.as_immutable_string_ref() {
        Ok(text) => run_state::log(level, text.as_str()),
        Err(_) => run_state::log(level, &message.to_string()),
    }
}
