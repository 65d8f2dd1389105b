//! Invocation records (`invocation-<uuid>` streams) and the projection that turns
//! them into the admin read model (`invocations` documents).
//!
//! Synchronous runs are recorded by a batching writer after the response is sent:
//! one `InvocationCompleted` per run, many runs per transaction.

use chrono::{DateTime, Utc};
use picloud_sandbox::LogLine;
use serde::{Deserialize, Serialize};

use super::codec::{DomainEvent, decode};
use crate::event::RecordedEvent;
use crate::projection::Projection;
use crate::readmodel::{Doc, RowOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvocationStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Killed,
    TimedOut,
    Dead,
}

impl InvocationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Queued => "queued",
            InvocationStatus::Running => "running",
            InvocationStatus::Succeeded => "succeeded",
            InvocationStatus::Failed => "failed",
            InvocationStatus::Killed => "killed",
            InvocationStatus::TimedOut => "timed_out",
            InvocationStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<InvocationStatus> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// Everything recorded about one finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    pub id: String,
    pub app_id: String,
    pub script_id: String,
    pub script_version: u64,
    /// `http`, `webhook`, `cron`, `event`, `async` or `manual`.
    pub trigger: String,
    pub status: InvocationStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub response_status: Option<u16>,
    pub logs: Vec<LogLine>,
    #[serde(default)]
    pub logs_truncated: bool,
    pub error: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum InvocationEvent {
    InvocationCompleted(InvocationRecord),
}

impl DomainEvent for InvocationEvent {}

/// The `invocations` read model: one document per invocation, listed newest first
/// per app and filtered by status (`tag1`) and script (`tag2`).
pub struct InvocationsProjection;

impl InvocationsProjection {
    pub const NAME: &'static str = "invocations";
    pub const COLLECTION: &'static str = "invocations";
}

impl Projection for InvocationsProjection {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn collections(&self) -> &[&'static str] {
        &[Self::COLLECTION]
    }

    fn apply(&self, event: &RecordedEvent) -> Vec<RowOp> {
        match decode::<InvocationEvent>(event) {
            Some(InvocationEvent::InvocationCompleted(record)) => {
                let sort = record.started_at.timestamp_micros();
                let body = serde_json::to_value(&record).unwrap_or_default();
                vec![RowOp::Put(Doc {
                    collection: Self::COLLECTION.to_owned(),
                    key: record.id.clone(),
                    app: Some(record.app_id.clone()),
                    sort,
                    tag1: Some(record.status.as_str().to_owned()),
                    tag2: Some(record.script_id.clone()),
                    body,
                })]
            }
            None => Vec::new(),
        }
    }
}
