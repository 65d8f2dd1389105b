//! `/healthz`, `/readyz`, `/version`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
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
