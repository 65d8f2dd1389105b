//! `GET /api/v1/admin/apps/{app}/logs/stream`: live logs as Server-Sent Events.
//!
//! One `invocation` event per finished run (or attempt) of the app, then one `log`
//! event per log line of that run; `?script=<id>` narrows to one script. The stream
//! follows this node's runs (in a cluster, each node streams its own). A client
//! that falls more than the live buffer behind is dropped (its stream ends with a
//! `dropped` event), so a slow reader never slows a run; a client that goes away
//! costs nothing once its connection closes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use picloud_events::domain::InvocationRecord;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use super::apps::load_app;
use crate::auth::{Capability, Principal, authorize};
use crate::error::ApiResult;
use crate::state::ApiState;

#[derive(Deserialize)]
pub struct StreamQuery {
    script: Option<String>,
}

pub async fn stream(
    State(state): State<ApiState>,
    principal: Principal,
    Path(key): Path<String>,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let entry = load_app(&state, &key)?;
    authorize(&principal, &Capability::AppLogRead(entry.app.id.clone()))?;
    let rx = state.runtime.live.subscribe();
    let filter = Filter {
        app_id: entry.app.id.clone(),
        script: q.script,
    };
    let events = futures_util::stream::unfold(
        Some((rx, filter, Vec::<Event>::new())),
        |state| async move {
            let (mut rx, filter, mut pending) = state?;
            loop {
                if !pending.is_empty() {
                    let next = pending.remove(0);
                    return Some((Ok(next), Some((rx, filter, pending))));
                }
                match rx.recv().await {
                    Ok(record) if filter.matches(&record) => pending = frames(&record),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let dropped = Event::default().event("dropped").data(
                            json!({ "missed": missed, "reason": "the client fell behind" })
                                .to_string(),
                        );
                        // End the stream after this event.
                        return Some((Ok(dropped), None));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Filter {
    app_id: String,
    script: Option<String>,
}

impl Filter {
    fn matches(&self, record: &InvocationRecord) -> bool {
        record.app_id == self.app_id && self.script.as_deref().is_none_or(|s| s == record.script_id)
    }
}

/// The SSE events of one finished run: the run, then its log lines.
fn frames(record: &Arc<InvocationRecord>) -> Vec<Event> {
    let mut out = Vec::with_capacity(1 + record.logs.len());
    out.push(
        Event::default().event("invocation").data(
            json!({
                "id": record.id,
                "script_id": record.script_id,
                "script_version": record.script_version,
                "trigger": record.trigger,
                "status": record.status.as_str(),
                "attempt": record.attempt,
                "started_at": record.started_at,
                "ended_at": record.ended_at,
                "duration_ms": record.duration_ms,
                "response_status": record.response_status,
                "error": record.error,
                "log_count": record.logs.len(),
            })
            .to_string(),
        ),
    );
    for line in &record.logs {
        out.push(
            Event::default().event("log").data(
                json!({
                    "invocation_id": record.id,
                    "script_id": record.script_id,
                    "line": line,
                })
                .to_string(),
            ),
        );
    }
    out
}
