//! The cluster's node registry: one row per node in the `nodes` table (migration
//! 0011), written by the node itself (start, heartbeats, drain, exit) and read by
//! `GET /api/v1/admin/nodes`. A node that stops beating is marked `gone` by
//! whichever node notices first (`Store::reap_nodes`), which frees the outbox
//! leases it held.

use serde::Serialize;

/// Where a node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Serving and taking outbox work.
    Up,
    /// Shutting down: no new outbox work, finishing what it runs.
    Draining,
    /// Left cleanly, or stopped beating.
    Gone,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Draining => "draining",
            NodeState::Gone => "gone",
        }
    }

    /// The stored text; anything unknown reads as `gone` (a row written by a newer
    /// build with a state this one does not know is not counted as serving).
    pub fn parse(text: &str) -> NodeState {
        match text {
            "up" => NodeState::Up,
            "draining" => NodeState::Draining,
            _ => NodeState::Gone,
        }
    }
}

/// One node's row. Times are microseconds since the Unix epoch (UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    pub id: String,
    /// Where it serves HTTP (`host:port`).
    pub address: String,
    pub version: String,
    pub started_at: i64,
    pub last_seen_at: i64,
    pub state: NodeState,
    pub slots: i64,
    pub in_flight: i64,
}
