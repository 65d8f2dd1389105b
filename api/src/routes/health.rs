//! `/healthz`, `/readyz`, `/version`, `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::ApiState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "ok": true }))
}

pub async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    if state.runtime.is_ready().await {
        (StatusCode::OK, Json(json!({ "ready": true })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "ready": false, "error": "not ready: store unreachable or read models catching up", "code": "not_ready" }),
            ),
        )
    }
}

pub async fn version() -> impl IntoResponse {
    Json(json!({
        "product": env!("CARGO_PKG_VERSION"),
        "schema": picloud_events::migrate::SCHEMA_VERSION,
        "sdk": crate::SDK_VERSION,
    }))
}

pub async fn admin_not_found() -> ApiError {
    ApiError::not_found("endpoint")
}

/// `GET /metrics`: Prometheus text. Unauthenticated like the health checks (it
/// names app and script ids, never data): keep it off the public side of the proxy.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let rt = &state.runtime;
    let stats = &rt.executor.stats;
    let mut gauges: Vec<(String, &str, f64)> = vec![
        (
            "picloud_slots".into(),
            "Executor slots.",
            rt.executor.slots as f64,
        ),
        (
            "picloud_slots_busy".into(),
            "Slots running a script.",
            stats.busy.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
        (
            "picloud_queue_depth".into(),
            "Runs waiting for a slot.",
            stats.queued.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
        (
            "picloud_inline_runs".into(),
            "Runs executed inline on a runtime thread, the node having no other run in flight, since start.",
            stats.inline.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
    ];
    gauges.push((
        "picloud_invocation_records_written".into(),
        "Invocation records the batching writer stored since start.",
        rt.recorder
            .written
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    ));
    gauges.push((
        "picloud_invocation_records_dropped".into(),
        "Invocation records lost since start: refused by the store after retries, or finished after the writer stopped.",
        rt.recorder
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    ));
    if let Ok(projections) = rt.projections().await {
        for p in projections {
            gauges.push((
                format!("picloud_projection_lag_{}", p.name),
                "Events the read model trails the log by.",
                p.lag as f64,
            ));
        }
    }
    let gauges: Vec<(&str, &str, f64)> = gauges
        .iter()
        .map(|(n, h, v)| (n.as_str(), *h, *v))
        .collect();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        rt.metrics.render(&gauges),
    )
        .into_response()
}
