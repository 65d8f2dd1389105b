//! What a run produces: the outcome, the captured log and the time it took.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The HTTP response a script's value maps to (see `response.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    /// Lower-cased names; includes `content-type` whenever there is a body.
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The script finished and its value mapped to a response.
    Response(Response),
    /// A compile or runtime error, or a value that is not a valid response.
    /// `line` and `position` are 1-based, as Rhai gives them.
    ScriptError {
        message: String,
        line: Option<usize>,
        position: Option<usize>,
    },
    /// A sandbox knob was exceeded: `max_operations`, `max_string_size`,
    /// `max_array_size`, `max_map_size`, `max_call_levels` or `max_expr_depth`.
    LimitExceeded { limit: &'static str },
    /// The wall-clock limit passed, or the run was cancelled.
    Timeout,
}

impl Outcome {
    /// A script error with no position (e.g. an invalid response value).
    pub(crate) fn script_error(message: impl Into<String>) -> Outcome {
        Outcome::ScriptError {
            message: message.into(),
            line: None,
            position: None,
        }
    }
}

/// Severity of a captured log line. `print` logs at `Info`, `debug` at `Debug`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// One captured log line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub outcome: Outcome,
    pub logs: Vec<LogLine>,
    /// Lines were dropped because the run logged more than `max_log_bytes`.
    pub logs_truncated: bool,
    pub duration: Duration,
    /// The answers the run got from the outside world, when it was recorded.
    pub recording: Option<crate::Recording>,
    /// In a replay, the first call the recording could not answer.
    pub unanswered: Option<String>,
}

/// A script that does not compile. `line` and `position` are 1-based.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub message: String,
    pub line: Option<usize>,
    pub position: Option<usize>,
}
