//! First start of an empty store: create the owner user and their API token.
//!
//! The `instance` stream is appended with `NoStream` in the same transaction as the
//! owner, so when several nodes start against one empty database exactly one of
//! them bootstraps.

use chrono::Utc;
use picloud_events::domain::{
    ClaimEvent, InstanceEvent, Role, TokenKind, UserEvent, encode, stream,
};
use picloud_events::{ExpectedVersion, Metadata, Store, StoreError, StreamWrite};
use sha2::{Digest, Sha256};

pub const OWNER_USERNAME: &str = "owner";

/// Hex SHA-256 of a token value: what events and the catalog keep.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random API token (`pc_` + 64 hex characters, 256 bits of randomness):
/// 32 bytes from the operating system, hashed with two v4 UUIDs (from the
/// thread's CSPRNG, itself seeded by the OS) so the token stays random should
/// the OS call ever fail.
pub fn new_token() -> String {
    let mut os = [0u8; 32];
    let os_ok = getrandom::fill(&mut os).is_ok();
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let mut hasher = Sha256::new();
    if os_ok {
        hasher.update(os);
    }
    hasher.update(a.as_bytes());
    hasher.update(b.as_bytes());
    hasher.update(uuid::Uuid::now_v7().as_bytes());
    format!("pc_{}", hex::encode(hasher.finalize()))
}

/// Bootstrap the instance if it never was. Returns the owner's token when this
/// call created it (`given` if set, else a new random one), `None` when the
/// instance already existed.
pub async fn bootstrap(
    store: &dyn Store,
    given: Option<String>,
    node: &str,
) -> Result<Option<String>, StoreError> {
    if store.stream_version(stream::INSTANCE).await?.is_some() {
        return Ok(None);
    }
    let token = given.unwrap_or_else(new_token);
    let owner_id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now();
    let metadata = Metadata {
        actor: Some("system".into()),
        node: Some(node.to_owned()),
        ..Metadata::default()
    };
    let writes = vec![
        StreamWrite {
            stream: stream::INSTANCE.to_owned(),
            expected: ExpectedVersion::NoStream,
            events: vec![encode(
                &InstanceEvent::InstanceBootstrapped {
                    owner_id: owner_id.clone(),
                    at: now,
                },
                &metadata,
            )],
        },
        StreamWrite {
            stream: stream::user(&owner_id),
            expected: ExpectedVersion::NoStream,
            events: vec![
                encode(
                    &UserEvent::UserCreated {
                        user_id: owner_id.clone(),
                        username: OWNER_USERNAME.into(),
                        role: Role::Owner,
                        password_hash: None,
                        created_at: now,
                    },
                    &metadata,
                ),
                encode(
                    &UserEvent::TokenIssued {
                        token_id: uuid::Uuid::now_v7().to_string(),
                        name: "bootstrap".into(),
                        hash: token_hash(&token),
                        scopes: vec!["admin".into()],
                        expires_at: None,
                        issued_at: now,
                        kind: TokenKind::Api,
                    },
                    &metadata,
                ),
            ],
        },
        StreamWrite {
            stream: stream::OWNERS.to_owned(),
            expected: ExpectedVersion::Any,
            events: vec![encode(
                &InstanceEvent::OwnersChanged {
                    owners: vec![owner_id.clone()],
                },
                &metadata,
            )],
        },
        StreamWrite {
            stream: stream::username(OWNER_USERNAME),
            expected: ExpectedVersion::Any,
            events: vec![encode(
                &ClaimEvent::Claimed {
                    owner: owner_id.clone(),
                },
                &metadata,
            )],
        },
    ];
    match store.append_many(writes).await {
        Ok(_) => Ok(Some(token)),
        // Another node bootstrapped first.
        Err(StoreError::VersionConflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::new_token;

    #[test]
    fn a_token_is_pc_and_64_hex_digits_and_never_repeats() {
        let tokens: std::collections::HashSet<String> = (0..1_000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 1_000);
        for token in &tokens {
            let hex = token.strip_prefix("pc_").expect("pc_ prefix");
            assert_eq!(hex.len(), 64, "{token}");
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }
}
