//! Uniqueness claims (`slug-…`, `domain-…`, `username-…` streams).
//!
//! A claim stream's last event says who holds the name. Claiming appends with the
//! stream's current version as expected version, so of two racing claims exactly one
//! commits, on any number of nodes.

use serde::{Deserialize, Serialize};

use super::codec::DomainEvent;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ClaimEvent {
    Claimed { owner: String },
    Released { owner: String },
}

impl DomainEvent for ClaimEvent {}

impl ClaimEvent {
    /// The holder after this event, if any.
    pub fn holder(&self) -> Option<&str> {
        match self {
            ClaimEvent::Claimed { owner } => Some(owner),
            ClaimEvent::Released { .. } => None,
        }
    }
}
