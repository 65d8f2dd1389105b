//! Builders shared by the unit tests of this crate.

use chrono::Utc;
use picloud_events::domain::{InvocationRecord, InvocationStatus};

/// A finished synchronous HTTP run of script `s` in `app`, started now.
pub fn record(id: &str, app: &str, ms: f64, status: InvocationStatus) -> InvocationRecord {
    InvocationRecord {
        id: id.into(),
        app_id: app.into(),
        script_id: "s".into(),
        script_version: 1,
        trigger: "http".into(),
        status,
        started_at: Utc::now(),
        ended_at: Utc::now(),
        duration_ms: ms,
        response_status: Some(200),
        logs: Vec::new(),
        logs_truncated: false,
        error: None,
        request_id: None,
        attempt: 0,
        recording: None,
    }
}
