//! Invocations (`invocation-<uuid>` streams), the projection that turns them into
//! the admin read model (`invocations` documents), and the outbox projection that
//! keeps one `deliveries` row per asynchronous invocation still to run.
//!
//! Synchronous runs are recorded by a batching writer after the response is sent:
//! `InvocationsRecorded` events on their app's `runs-<app>` stream, each holding
//! up to `RUNS_PER_EVENT` finished runs, many per transaction, every run's
//! `invocations` document written in the same transaction. (Logs written before
//! that hold one `InvocationCompleted` per synchronous run, on its own
//! `invocation-<id>` stream; the projection still reads them.)
//!
//! An asynchronous invocation's stream:
//!
//! ```text
//! InvocationRequested                      (queued; appended with its cause)
//! InvocationAttemptFailed{next_attempt_at} (0..max_attempts-1 times: queued again)
//! InvocationCompleted | InvocationDead     (the last attempt's outcome)
//! InvocationRedriven                       (an admin queued a dead one again) …
//! ```
//!
//! Each outcome is appended expecting the exact version the dispatcher claimed,
//! so two nodes that both ran a delivery (an expired lease) record it once.

use chrono::{DateTime, Utc};
use picloud_sandbox::{LogLine, Recording};
use serde::{Deserialize, Serialize};

use super::codec::{DomainEvent, decode};
use crate::event::RecordedEvent;
use crate::projection::Projection;
use crate::readmodel::{Delivery, DeliveryLease, Doc, EncodedDoc, RowOp};

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
    /// Which attempt of an asynchronous invocation this was (from 1); 0 for a
    /// synchronous run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The answers the run got from the outside world, when its script records
    /// (`sandbox.record: "full"`, or the app's default): what a replay answers
    /// from. Secrets appear by name only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The HTTP request behind a queued invocation (a webhook delivery), as the
/// script will see it in `ctx.request`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueuedRequest {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: Vec<(String, String)>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body as text when it is UTF-8 …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// … else as standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

/// What an asynchronous invocation will run, with what, and how often it may try.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationRequest {
    pub id: String,
    pub app_id: String,
    pub script_id: String,
    /// `webhook`, `cron`, `event` or `async`.
    pub trigger: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// `ctx.event` (an object with at least `kind`).
    pub event: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<QueuedRequest>,
    pub max_attempts: u32,
    /// Unique per cause (a webhook id, a cron tick, an emitting invocation …).
    pub idempotency_key: String,
    pub requested_at: DateTime<Utc>,
    /// How many asynchronous hops led here (an emit from an emitted run is 2 …).
    #[serde(default)]
    pub depth: u32,
    /// Set when the node that accepted the request runs it at once (it had a free
    /// slot): its outbox row is written leased to that node until then, so no
    /// other node claims it meanwhile. If that node dies or leaves first, its
    /// leases are freed (or the row is written unleased when it is already gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<DeliveryLease>,
}

/// How long the stored invocation read models let commits gather after a
/// wake-up (`Projection::settle`). Neither is on a request's path: a request is
/// run where it is accepted, and its record's document follows the log a few
/// milliseconds later. Under load an invocation's request and outcome then
/// often fall in one batch (one document written, its outbox row only
/// deleted), and on a cluster every node reads and tries each batch once
/// instead of per commit.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(10);

/// Runs of one app recorded together (at most `RUNS_PER_EVENT` per event).
pub const RUNS_PER_EVENT: usize = 64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum InvocationEvent {
    InvocationCompleted(InvocationRecord),
    /// Synchronous runs of one app, recorded together on `runs-<app>` (each
    /// run's request id is in its record).
    InvocationsRecorded {
        runs: Vec<InvocationRecord>,
    },
    InvocationRequested(InvocationRequest),
    /// An attempt failed and another is scheduled.
    InvocationAttemptFailed {
        record: InvocationRecord,
        next_attempt_at: DateTime<Utc>,
    },
    /// The last allowed attempt failed (or the script is gone): dead-lettered.
    InvocationDead(InvocationRecord),
    /// Queued again by an admin; attempts count from zero again.
    InvocationRedriven {
        at: DateTime<Utc>,
    },
}

/// An asynchronous invocation folded from its stream.
#[derive(Clone, Debug, PartialEq)]
pub struct InvocationState {
    pub request: InvocationRequest,
    /// Attempts made since the request (or the last redrive).
    pub attempts: u32,
    pub status: InvocationStatus,
    /// The stream's last version.
    pub version: u64,
}

impl InvocationState {
    /// Fold a stream; `None` when it holds no request (a synchronous record).
    pub fn fold(events: &[RecordedEvent]) -> Option<InvocationState> {
        let mut state: Option<InvocationState> = None;
        for e in events {
            let Some(event) = decode::<InvocationEvent>(e) else {
                continue;
            };
            match (event, state.as_mut()) {
                (InvocationEvent::InvocationRequested(request), _) => {
                    state = Some(InvocationState {
                        request,
                        attempts: 0,
                        status: InvocationStatus::Queued,
                        version: e.version,
                    });
                }
                (InvocationEvent::InvocationAttemptFailed { record, .. }, Some(s)) => {
                    s.attempts = record.attempt;
                    s.status = InvocationStatus::Queued;
                }
                (InvocationEvent::InvocationCompleted(record), Some(s)) => {
                    s.attempts = record.attempt;
                    s.status = record.status;
                }
                (InvocationEvent::InvocationDead(record), Some(s)) => {
                    s.attempts = record.attempt;
                    s.status = InvocationStatus::Dead;
                }
                (InvocationEvent::InvocationRedriven { .. }, Some(s)) => {
                    s.attempts = 0;
                    s.status = InvocationStatus::Queued;
                }
                (InvocationEvent::InvocationsRecorded { .. }, _) | (_, None) => {}
            }
            if let Some(s) = state.as_mut() {
                s.version = e.version;
            }
        }
        state
    }

    /// Still to run (queued, or failed with attempts left).
    pub fn is_pending(&self) -> bool {
        self.status == InvocationStatus::Queued
    }
}

impl DomainEvent for InvocationEvent {}

/// The `invocations` read model: one document per invocation, listed newest first
/// per app and filtered by status (`tag1`) and script (`tag2`).
pub struct InvocationsProjection;

impl InvocationsProjection {
    pub const NAME: &'static str = "invocations";
    pub const COLLECTION: &'static str = "invocations";
    /// Synchronous runs' records: their writer (the recorder) puts each run's
    /// `run_doc` with them (`Store::append_projected`).
    pub const RUN_RECORD: &'static str = "InvocationsRecorded";

    /// The whole document of a synchronous run.
    pub fn run_doc(record: &InvocationRecord) -> Doc {
        Self::run_doc_with(record, serde_json::to_value(record).unwrap_or_default())
    }

    /// `run_doc` as the store writes it, its body `record_json`: the record
    /// serialised (`serde_json::to_string(record)`), no `Value` built on the way.
    pub fn encoded_run_doc(record: &InvocationRecord, record_json: String) -> EncodedDoc {
        Self::run_doc_with(record, record_json)
    }

    fn run_doc_with<B>(record: &InvocationRecord, body: B) -> Doc<B> {
        Doc {
            collection: Self::COLLECTION.to_owned(),
            key: record.id.clone(),
            app: Some(record.app_id.clone()),
            sort: record.started_at.timestamp_micros(),
            tag1: Some(record.status.as_str().to_owned()),
            tag2: Some(record.script_id.clone()),
            body,
        }
    }
}

impl Projection for InvocationsProjection {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn collections(&self) -> &[&'static str] {
        &[Self::COLLECTION]
    }

    fn skipped_when_following(&self) -> Option<&'static str> {
        Some(Self::RUN_RECORD)
    }

    fn settle(&self) -> std::time::Duration {
        SETTLE
    }

    fn apply(&self, event: &RecordedEvent) -> Vec<RowOp> {
        let Some(decoded) = decode::<InvocationEvent>(event) else {
            return Vec::new();
        };
        let doc = |key: &str,
                   app: Option<String>,
                   sort: i64,
                   status: &str,
                   script: Option<String>,
                   body: serde_json::Value| Doc {
            collection: Self::COLLECTION.to_owned(),
            key: key.to_owned(),
            app,
            sort,
            tag1: Some(status.to_owned()),
            tag2: script,
            body,
        };
        let record_body =
            |record: &InvocationRecord| serde_json::to_value(record).unwrap_or_default();
        match decoded {
            // Synchronous runs: each whole document at once.
            InvocationEvent::InvocationsRecorded { runs } => runs
                .iter()
                .map(|record| RowOp::Put(Self::run_doc(record)))
                .collect(),
            // One synchronous run as logs before `InvocationsRecorded` hold it.
            InvocationEvent::InvocationCompleted(record) if record.attempt == 0 => {
                vec![RowOp::Put(Self::run_doc(&record))]
            }
            // The last attempt of an asynchronous invocation (a dead one carries
            // status `dead`; its error says why).
            InvocationEvent::InvocationCompleted(record)
            | InvocationEvent::InvocationDead(record) => {
                let mut body = record_body(&record);
                if let Some(o) = body.as_object_mut() {
                    o.insert("attempts".into(), record.attempt.into());
                    o.insert("next_attempt_at".into(), serde_json::Value::Null);
                }
                let status = record.status.as_str();
                vec![RowOp::Merge(doc(&record.id, None, 0, status, None, body))]
            }
            InvocationEvent::InvocationRequested(request) => {
                let body = serde_json::json!({
                    "id": request.id,
                    "app_id": request.app_id,
                    "script_id": request.script_id,
                    "trigger": request.trigger,
                    "trigger_id": request.trigger_id,
                    "status": "queued",
                    "requested_at": request.requested_at,
                    "attempts": 0,
                    "max_attempts": request.max_attempts,
                    "depth": request.depth,
                    // The detail's shape from the start (CONTRACT.md): null until
                    // an attempt ends.
                    "started_at": null,
                    "ended_at": null,
                    "duration_ms": null,
                    "response_status": null,
                    "logs": [],
                });
                vec![RowOp::Put(doc(
                    &request.id,
                    Some(request.app_id.clone()),
                    request.requested_at.timestamp_micros(),
                    "queued",
                    Some(request.script_id.clone()),
                    body,
                ))]
            }
            InvocationEvent::InvocationAttemptFailed {
                record,
                next_attempt_at,
            } => {
                let mut body = record_body(&record);
                if let Some(o) = body.as_object_mut() {
                    o.insert("status".into(), "queued".into());
                    o.insert("last_status".into(), record.status.as_str().into());
                    o.insert("attempts".into(), record.attempt.into());
                    o.insert(
                        "next_attempt_at".into(),
                        serde_json::to_value(next_attempt_at).unwrap_or_default(),
                    );
                }
                vec![RowOp::Merge(doc(&record.id, None, 0, "queued", None, body))]
            }
            InvocationEvent::InvocationRedriven { at } => {
                let id = event
                    .stream
                    .strip_prefix("invocation-")
                    .unwrap_or(&event.stream);
                let body = serde_json::json!({
                    "status": "queued",
                    "attempts": 0,
                    "next_attempt_at": null,
                    "redriven_at": at,
                });
                vec![RowOp::Merge(doc(id, None, 0, "queued", None, body))]
            }
        }
    }
}

/// The `outbox` read model: one `deliveries` row per asynchronous invocation that
/// still has to run, due when it may next be tried.
pub struct OutboxProjection;

impl OutboxProjection {
    pub const NAME: &'static str = "outbox";
}

impl Projection for OutboxProjection {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn collections(&self) -> &[&'static str] {
        &[crate::readmodel::DELIVERIES]
    }

    /// Synchronous runs' records leave the outbox alone.
    fn skipped_when_following(&self) -> Option<&'static str> {
        Some(InvocationsProjection::RUN_RECORD)
    }

    fn settle(&self) -> std::time::Duration {
        SETTLE
    }

    fn apply(&self, event: &RecordedEvent) -> Vec<RowOp> {
        let id = || {
            event
                .stream
                .strip_prefix("invocation-")
                .unwrap_or(&event.stream)
                .to_owned()
        };
        let put_leased =
            |app: &str, attempt: u32, due: DateTime<Utc>, lease: Option<DeliveryLease>| {
                vec![RowOp::PutDelivery(Delivery {
                    invocation_id: id(),
                    app: app.to_owned(),
                    stream_version: event.version,
                    attempt,
                    due_at: due.timestamp_micros(),
                    lease,
                })]
            };
        let put = |app: &str, attempt: u32, due: DateTime<Utc>| put_leased(app, attempt, due, None);
        match decode::<InvocationEvent>(event) {
            Some(InvocationEvent::InvocationRequested(r)) => {
                put_leased(&r.app_id, 0, r.requested_at, r.lease)
            }
            Some(InvocationEvent::InvocationAttemptFailed {
                record,
                next_attempt_at,
            }) => put(&record.app_id, record.attempt, next_attempt_at),
            Some(InvocationEvent::InvocationRedriven { at }) => {
                let app = event.metadata.app.clone().unwrap_or_default();
                put(&app, 0, at)
            }
            Some(InvocationEvent::InvocationsRecorded { .. }) => Vec::new(),
            Some(InvocationEvent::InvocationCompleted(record)) if record.attempt == 0 => Vec::new(),
            Some(InvocationEvent::InvocationCompleted(_))
            | Some(InvocationEvent::InvocationDead(_)) => {
                vec![RowOp::DeleteDelivery {
                    invocation_id: id(),
                }]
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::codec::encode;
    use crate::event::{Metadata, NewEvent};

    /// `new` as the first event of `stream`, recorded now.
    fn first_of(stream: &str, new: NewEvent) -> RecordedEvent {
        RecordedEvent {
            position: 1,
            stream: stream.into(),
            version: 1,
            event_type: new.event_type,
            data: new.data,
            metadata: new.metadata,
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_queued_invocation_has_the_detail_shape_with_nulls() {
        let request = InvocationRequest {
            id: "inv-1".into(),
            app_id: "app-1".into(),
            script_id: "script-1".into(),
            trigger: "async".into(),
            trigger_id: None,
            event: serde_json::json!({"kind": "async"}),
            request: None,
            max_attempts: 5,
            idempotency_key: "k".into(),
            requested_at: chrono::Utc::now(),
            depth: 0,
            lease: None,
        };
        let new = encode(
            &InvocationEvent::InvocationRequested(request),
            &Metadata::default(),
        );
        let ops = InvocationsProjection.apply(&first_of("invocation-inv-1", new));
        let [RowOp::Put(doc)] = ops.as_slice() else {
            panic!("one document: {ops:?}");
        };
        assert_eq!(doc.body["status"], "queued");
        for field in ["started_at", "ended_at", "duration_ms", "response_status"] {
            assert_eq!(
                doc.body.get(field),
                Some(&serde_json::Value::Null),
                "{field}"
            );
        }
        assert_eq!(doc.body["logs"], serde_json::json!([]));
    }

    /// What the recorder writes for a run is what replaying its
    /// `InvocationsRecorded` puts: same columns, same body.
    #[test]
    fn a_recorded_run_is_the_document_a_replay_makes() {
        let now = chrono::Utc::now();
        let record = InvocationRecord {
            id: "run-1".into(),
            app_id: "app-1".into(),
            script_id: "script-1".into(),
            script_version: 2,
            trigger: "http".into(),
            status: InvocationStatus::Failed,
            started_at: now,
            ended_at: now,
            duration_ms: 0.25,
            response_status: Some(500),
            logs: Vec::new(),
            logs_truncated: false,
            error: Some(serde_json::json!({"message": "boom"})),
            request_id: Some("req-1".into()),
            attempt: 0,
            recording: None,
        };
        let new = encode(
            &InvocationEvent::InvocationsRecorded {
                runs: vec![record.clone()],
            },
            &Metadata::default(),
        );
        let ops = InvocationsProjection.apply(&first_of("runs-app-1", new));
        let [RowOp::Put(replayed)] = ops.as_slice() else {
            panic!("one document: {ops:?}");
        };
        let json = serde_json::to_string(&record).expect("JSON");
        let written = InvocationsProjection::encoded_run_doc(&record, json);
        let body: serde_json::Value = serde_json::from_str(&written.body).expect("JSON");
        assert_eq!(body, replayed.body);
        // The same columns (the body's keys may come in another order).
        let columns = |doc: EncodedDoc| EncodedDoc {
            body: String::new(),
            ..doc
        };
        assert_eq!(columns(written), columns(replayed.clone().into()));
        assert_eq!(replayed.tag1.as_deref(), Some("failed"));
        assert_eq!(replayed.tag2.as_deref(), Some("script-1"));
    }
}
