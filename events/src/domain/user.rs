//! Instance users and their API tokens (`user-<uuid>` streams), and the one-time
//! bootstrap of an instance (`instance` stream).
//!
//! Token values never appear in an event: only their SHA-256 hash does.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::DomainEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    UserCreated {
        user_id: String,
        username: String,
        role: Role,
        created_at: DateTime<Utc>,
    },
    TokenIssued {
        token_id: String,
        name: String,
        /// Hex SHA-256 of the token value.
        hash: String,
        scopes: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
        issued_at: DateTime<Utc>,
    },
    TokenRevoked {
        token_id: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for UserEvent {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum InstanceEvent {
    /// Appended once, with `NoStream`, so only one node of a cluster bootstraps.
    InstanceBootstrapped { owner_id: String, at: DateTime<Utc> },
}

impl DomainEvent for InstanceEvent {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub hash: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub tokens: BTreeMap<String, Token>,
}

impl User {
    pub fn apply(state: &mut Option<User>, event: &UserEvent) {
        if let UserEvent::UserCreated {
            user_id,
            username,
            role,
            created_at,
        } = event
        {
            *state = Some(User {
                id: user_id.clone(),
                username: username.clone(),
                role: *role,
                created_at: *created_at,
                tokens: BTreeMap::new(),
            });
            return;
        }
        let Some(user) = state.as_mut() else {
            return;
        };
        match event {
            UserEvent::UserCreated { .. } => {}
            UserEvent::TokenIssued {
                token_id,
                name,
                hash,
                scopes,
                expires_at,
                ..
            } => {
                user.tokens.insert(
                    token_id.clone(),
                    Token {
                        id: token_id.clone(),
                        name: name.clone(),
                        hash: hash.clone(),
                        scopes: scopes.clone(),
                        expires_at: *expires_at,
                        revoked: false,
                    },
                );
            }
            UserEvent::TokenRevoked { token_id, .. } => {
                if let Some(token) = user.tokens.get_mut(token_id) {
                    token.revoked = true;
                }
            }
        }
    }
}
