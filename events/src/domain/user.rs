//! Instance users, their API tokens and dashboard sessions (`user-<uuid>` streams),
//! the one-time bootstrap of an instance (`instance` stream) and the set of owners
//! (`owners` stream).
//!
//! Token and session values never appear in an event: only their SHA-256 hash does.
//! Passwords appear only as argon2 PHC strings, and the API redacts even those.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::DomainEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// What a token is for: an API token a user minted, or a dashboard session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    #[default]
    Api,
    Session,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    UserCreated {
        user_id: String,
        username: String,
        role: Role,
        /// argon2 PHC string; `None`: no password (token-only user).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_hash: Option<String>,
        created_at: DateTime<Utc>,
    },
    UserRoleChanged {
        role: Role,
        at: DateTime<Utc>,
    },
    /// `disabled: true` locks the user out (every token and session stops working).
    UserDisabledSet {
        disabled: bool,
        at: DateTime<Utc>,
    },
    UserPasswordSet {
        password_hash: String,
        at: DateTime<Utc>,
    },
    UserDeleted {
        at: DateTime<Utc>,
    },
    TokenIssued {
        token_id: String,
        name: String,
        /// Hex SHA-256 of the token value.
        hash: String,
        scopes: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
        issued_at: DateTime<Utc>,
        #[serde(default)]
        kind: TokenKind,
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
    /// The whole set of owners after a change (on the `owners` stream).
    OwnersChanged { owners: Vec<String> },
    /// The master key's check value (a fixed text sealed under the key), appended
    /// once on the `master-key` stream: a node started with another key cannot
    /// open it and refuses to start instead of sealing with a second key.
    MasterKeyRegistered { check: String, at: DateTime<Utc> },
}

impl DomainEvent for InstanceEvent {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub hash: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub issued_at: DateTime<Utc>,
    pub kind: TokenKind,
    pub revoked: bool,
}

impl Token {
    /// Neither revoked nor expired at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && self.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub deleted: bool,
    pub tokens: BTreeMap<String, Token>,
}

impl User {
    /// May this user act at all (not disabled, not deleted)?
    pub fn is_active(&self) -> bool {
        !self.disabled && !self.deleted
    }

    pub fn apply(state: &mut Option<User>, event: &UserEvent) {
        if let UserEvent::UserCreated {
            user_id,
            username,
            role,
            password_hash,
            created_at,
        } = event
        {
            *state = Some(User {
                id: user_id.clone(),
                username: username.clone(),
                role: *role,
                created_at: *created_at,
                password_hash: password_hash.clone(),
                disabled: false,
                deleted: false,
                tokens: BTreeMap::new(),
            });
            return;
        }
        let Some(user) = state.as_mut() else {
            return;
        };
        match event {
            UserEvent::UserCreated { .. } => {}
            UserEvent::UserRoleChanged { role, .. } => user.role = *role,
            UserEvent::UserDisabledSet { disabled, .. } => user.disabled = *disabled,
            UserEvent::UserPasswordSet { password_hash, .. } => {
                user.password_hash = Some(password_hash.clone());
            }
            UserEvent::UserDeleted { .. } => {
                user.deleted = true;
                user.password_hash = None;
                for token in user.tokens.values_mut() {
                    token.revoked = true;
                }
            }
            UserEvent::TokenIssued {
                token_id,
                name,
                hash,
                scopes,
                expires_at,
                issued_at,
                kind,
            } => {
                user.tokens.insert(
                    token_id.clone(),
                    Token {
                        id: token_id.clone(),
                        name: name.clone(),
                        hash: hash.clone(),
                        scopes: scopes.clone(),
                        expires_at: *expires_at,
                        issued_at: *issued_at,
                        kind: *kind,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    fn issued(id: &str) -> UserEvent {
        UserEvent::TokenIssued {
            token_id: id.into(),
            name: id.into(),
            hash: format!("hash-{id}"),
            scopes: vec!["admin".into()],
            expires_at: None,
            issued_at: t(),
            kind: TokenKind::Api,
        }
    }

    #[test]
    fn deleting_a_user_revokes_every_token_and_forgets_the_password() {
        let mut state = None;
        User::apply(
            &mut state,
            &UserEvent::UserCreated {
                user_id: "u1".into(),
                username: "ann".into(),
                role: Role::Admin,
                password_hash: Some("$argon2id$x".into()),
                created_at: t(),
            },
        );
        User::apply(&mut state, &issued("t1"));
        User::apply(&mut state, &issued("t2"));
        User::apply(&mut state, &UserEvent::UserDeleted { at: t() });
        let user = state.expect("user");
        assert!(user.deleted && !user.is_active());
        assert!(user.password_hash.is_none());
        assert!(user.tokens.values().all(|t| t.revoked));
    }

    #[test]
    fn events_from_before_sessions_default_to_api_tokens() {
        let json = serde_json::json!({
            "token_id": "t", "name": "n", "hash": "h", "scopes": [],
            "expires_at": null, "issued_at": t(),
        });
        let event: UserEvent =
            serde_json::from_value(serde_json::json!({"type": "TokenIssued", "data": json}))
                .expect("decodes");
        assert!(matches!(
            event,
            UserEvent::TokenIssued {
                kind: TokenKind::Api,
                ..
            }
        ));
    }

    #[test]
    fn roles_order_member_admin_owner() {
        assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
        for role in [Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
