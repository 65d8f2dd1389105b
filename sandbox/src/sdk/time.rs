//! `time::now`, `time::format`, `time::parse`: instants as Unix milliseconds (UTC).

use rhai::INT;
use rhai::plugin::*;

#[export_module]
pub mod time_functions {
    use std::fmt::Write;

    use chrono::{DateTime, SecondsFormat, Utc};
    use serde_json::Value;

    use crate::answers::{Keep, pass};

    /// Longest format string `time::format` accepts.
    const MAX_FORMAT_LEN: usize = 256;

    /// The current time in milliseconds since the Unix epoch.
    ///
    /// ```rhai
    /// let started = time::now();
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn now() -> Result<INT, Box<EvalAltResult>> {
        pass(
            "time::now",
            Keep::Value,
            || Value::Null,
            || Ok(Utc::now().timestamp_millis()),
        )
    }

    /// Formats Unix milliseconds as RFC 3339 in UTC, with milliseconds.
    ///
    /// ```rhai
    /// time::format(0)   // "1970-01-01T00:00:00.000Z"
    /// ```
    #[rhai_fn(name = "format", return_raw)]
    pub fn format_rfc3339(ms: INT) -> Result<String, Box<EvalAltResult>> {
        Ok(instant(ms)?.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    /// Formats Unix milliseconds in UTC with a `strftime` format (chrono's syntax).
    /// Throws on an invalid format.
    ///
    /// ```rhai
    /// time::format(0, "%Y-%m-%d %H:%M")   // "1970-01-01 00:00"
    /// ```
    #[rhai_fn(name = "format", return_raw)]
    pub fn format_with(ms: INT, format: &str) -> Result<String, Box<EvalAltResult>> {
        if format.len() > MAX_FORMAT_LEN {
            return Err(format!("time::format: format longer than {MAX_FORMAT_LEN} bytes").into());
        }
        let at = instant(ms)?;
        let mut out = String::new();
        // chrono reports a bad format as a fmt::Error from Display; `to_string()` would
        // panic on it, `write!` hands it back.
        write!(out, "{}", at.format(format))
            .map_err(|_| format!("time::format: invalid format string {format:?}"))?;
        Ok(out)
    }

    /// Parses an RFC 3339 date-time (any offset) into Unix milliseconds. Throws when
    /// the text is not RFC 3339.
    ///
    /// ```rhai
    /// time::parse("2024-05-01T12:00:00+02:00")   // 1714557600000
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parse(text: &str) -> Result<INT, Box<EvalAltResult>> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|at| at.timestamp_millis())
            .map_err(|err| format!("time::parse: {text:?} is not RFC 3339: {err}").into())
    }

    fn instant(ms: INT) -> Result<DateTime<Utc>, Box<EvalAltResult>> {
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| format!("time: {ms} ms is outside the supported date range").into())
    }
}
