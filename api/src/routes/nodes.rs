//! `GET /nodes`: the cluster's nodes as the registry shows them (this node's own
//! row live), for owners and admins.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use picloud_events::NodeRow;
use serde_json::{Value, json};

use crate::auth::{Capability, Principal, authorize};
use crate::error::ApiResult;
use crate::state::ApiState;

pub async fn list(State(state): State<ApiState>, principal: Principal) -> ApiResult<Json<Value>> {
    authorize(&principal, &Capability::InstanceReadNodes)?;
    let nodes: Vec<Value> = state
        .runtime
        .membership
        .nodes()
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(Json(json!({ "nodes": nodes })))
}

fn view(node: &NodeRow) -> Value {
    json!({
        "id": node.id,
        "address": node.address,
        "version": node.version,
        "started_at": time(node.started_at),
        "last_seen_at": time(node.last_seen_at),
        "state": node.state.as_str(),
        "slots": node.slots,
        "in_flight": node.in_flight,
    })
}

/// RFC 3339 in UTC with milliseconds.
fn time(micros: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}
