//! Users: commands on `user-<uuid>` streams, decided against the user's folded
//! state, the username claim and the set of owners, appended with expected versions.
//!
//! There is no actor per user: user commands are rare and the expected versions make
//! concurrent ones safe (one wins, the other reloads and decides once more). The
//! invariant that spans users, "there is always an active owner", lives on the
//! `owners` stream: every command that changes the set of active owners appends the
//! new set there with the version it decided against, so two admins demoting the
//! last two owners at once cannot both succeed.
//!
//! Who may issue a command (roles, escalation) is the API's `authorize`; what a
//! command may do to the state (invariants) is decided here.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use picloud_events::domain::{
    ClaimEvent, InstanceEvent, Role, TokenKind, User, UserEvent, decode, encode, stream,
};
use picloud_events::{ExpectedVersion, Metadata, Store, StoreError, StreamWrite};

use crate::app::CommandError;
use crate::app::decide::expected_after;
use crate::app::load_claim;
use crate::validate::{ValidationError, validate_token_name, validate_username};

#[derive(Clone, Debug)]
pub enum UserCommand {
    Create {
        username: String,
        role: Role,
        password_hash: Option<String>,
    },
    SetRole {
        role: Role,
    },
    SetDisabled {
        disabled: bool,
    },
    SetPassword {
        password_hash: String,
    },
    Delete,
    IssueToken {
        token_id: String,
        name: String,
        hash: String,
        scopes: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
        kind: TokenKind,
    },
    RevokeToken {
        token_id: String,
    },
}

/// The `owners` stream as last read: its version and the active owners.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Owners {
    pub version: u64,
    pub owners: BTreeSet<String>,
}

/// Everything `decide` reads besides the user's own state.
pub struct Context<'a> {
    pub user_id: &'a str,
    /// Version of the user's stream (0: it does not exist).
    pub user_version: u64,
    pub owners: &'a Owners,
    /// Version and holder of `username-<name>` (for `Create` only).
    pub username_claim: (u64, Option<String>),
    pub metadata: &'a Metadata,
    pub now: DateTime<Utc>,
}

/// Decide the writes for `command` on a user whose state is `state`.
pub fn decide(
    state: Option<&User>,
    command: &UserCommand,
    cx: &Context<'_>,
) -> Result<Vec<StreamWrite>, CommandError> {
    let enc = |e: &UserEvent| encode(e, cx.metadata);
    let user_stream = stream::user(cx.user_id);

    if let UserCommand::Create {
        username,
        role,
        password_hash,
    } = command
    {
        if state.is_some() {
            return Err(conflict("user_exists", "the user already exists"));
        }
        validate_username(username).map_err(invalid)?;
        let (claim_version, holder) = &cx.username_claim;
        if holder.is_some() {
            return Err(conflict(
                "username_taken",
                &format!("username '{username}' is taken"),
            ));
        }
        let mut writes = vec![
            StreamWrite {
                stream: user_stream,
                expected: ExpectedVersion::NoStream,
                events: vec![enc(&UserEvent::UserCreated {
                    user_id: cx.user_id.to_owned(),
                    username: username.clone(),
                    role: *role,
                    password_hash: password_hash.clone(),
                    created_at: cx.now,
                })],
            },
            StreamWrite {
                stream: stream::username(username),
                expected: expected_after(*claim_version),
                events: vec![encode(
                    &ClaimEvent::Claimed {
                        owner: cx.user_id.to_owned(),
                    },
                    cx.metadata,
                )],
            },
        ];
        if *role == Role::Owner {
            writes.push(owners_write(cx, true)?);
        }
        return Ok(writes);
    }

    let user = match state {
        Some(user) if !user.deleted => user,
        _ => return Err(CommandError::NotFound("user")),
    };
    // Owners-set change this command makes: Some(true) adds the user, Some(false)
    // removes them (refused if they are the last).
    let was_owner = user.role == Role::Owner && !user.disabled;
    let (events, owners_change): (Vec<UserEvent>, Option<bool>) = match command {
        UserCommand::Create { .. } => {
            return Err(conflict("user_exists", "the user already exists"));
        }
        UserCommand::SetRole { role } => {
            if *role == user.role {
                return Ok(Vec::new());
            }
            let is_owner = *role == Role::Owner && !user.disabled;
            (
                vec![UserEvent::UserRoleChanged {
                    role: *role,
                    at: cx.now,
                }],
                owner_change(was_owner, is_owner),
            )
        }
        UserCommand::SetDisabled { disabled } => {
            if *disabled == user.disabled {
                return Ok(Vec::new());
            }
            let is_owner = user.role == Role::Owner && !disabled;
            (
                vec![UserEvent::UserDisabledSet {
                    disabled: *disabled,
                    at: cx.now,
                }],
                owner_change(was_owner, is_owner),
            )
        }
        UserCommand::SetPassword { password_hash } => (
            vec![UserEvent::UserPasswordSet {
                password_hash: password_hash.clone(),
                at: cx.now,
            }],
            None,
        ),
        UserCommand::Delete => (
            vec![UserEvent::UserDeleted { at: cx.now }],
            owner_change(was_owner, false),
        ),
        UserCommand::IssueToken {
            token_id,
            name,
            hash,
            scopes,
            expires_at,
            kind,
        } => {
            validate_token_name(name).map_err(invalid)?;
            if user.disabled {
                return Err(conflict("user_disabled", "the user is disabled"));
            }
            if expires_at.is_some_and(|at| at <= cx.now) {
                return Err(CommandError::Invalid {
                    field: "expires_at",
                    message: "must be in the future".into(),
                });
            }
            (
                vec![UserEvent::TokenIssued {
                    token_id: token_id.clone(),
                    name: name.clone(),
                    hash: hash.clone(),
                    scopes: scopes.clone(),
                    expires_at: *expires_at,
                    issued_at: cx.now,
                    kind: *kind,
                }],
                None,
            )
        }
        UserCommand::RevokeToken { token_id } => {
            match user.tokens.get(token_id) {
                None => return Err(CommandError::NotFound("token")),
                Some(token) if token.revoked => return Ok(Vec::new()),
                Some(_) => {}
            }
            (
                vec![UserEvent::TokenRevoked {
                    token_id: token_id.clone(),
                    at: cx.now,
                }],
                None,
            )
        }
    };
    let mut writes = vec![StreamWrite {
        stream: user_stream,
        expected: ExpectedVersion::Exact(cx.user_version),
        events: events.iter().map(enc).collect(),
    }];
    if let Some(add) = owners_change {
        writes.push(owners_write(cx, add)?);
    }
    if matches!(command, UserCommand::Delete) {
        // The name is free again.
        writes.push(StreamWrite {
            stream: stream::username(&user.username),
            expected: ExpectedVersion::Any,
            events: vec![encode(
                &ClaimEvent::Released {
                    owner: cx.user_id.to_owned(),
                },
                cx.metadata,
            )],
        });
    }
    Ok(writes)
}

fn owner_change(was: bool, is: bool) -> Option<bool> {
    (was != is).then_some(is)
}

fn owners_write(cx: &Context<'_>, add: bool) -> Result<StreamWrite, CommandError> {
    let mut owners = cx.owners.owners.clone();
    if add {
        owners.insert(cx.user_id.to_owned());
    } else {
        owners.remove(cx.user_id);
        if owners.is_empty() {
            return Err(conflict(
                "last_owner",
                "the last active owner cannot be demoted, disabled or deleted",
            ));
        }
    }
    Ok(StreamWrite {
        stream: stream::OWNERS.to_owned(),
        expected: expected_after(cx.owners.version),
        events: vec![encode(
            &InstanceEvent::OwnersChanged {
                owners: owners.into_iter().collect(),
            },
            cx.metadata,
        )],
    })
}

fn conflict(code: &'static str, message: &str) -> CommandError {
    CommandError::Conflict {
        code,
        message: message.to_owned(),
    }
}

fn invalid(e: ValidationError) -> CommandError {
    CommandError::Invalid {
        field: e.field,
        message: e.reason,
    }
}

/// What a successful command produced.
#[derive(Clone, Debug)]
pub struct UserOutcome {
    /// Position of the last event appended (0 when the command changed nothing).
    pub position: i64,
    pub user: Option<User>,
}

/// Load, decide and append `command` for `user_id`; on a version conflict reload and
/// decide again (up to three attempts). `fallback_owners` gives the active owners
/// when the `owners` stream does not exist yet.
pub async fn execute(
    store: &dyn Store,
    user_id: &str,
    command: &UserCommand,
    metadata: &Metadata,
    fallback_owners: &(dyn Fn() -> BTreeSet<String> + Send + Sync),
) -> Result<UserOutcome, CommandError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (user, user_version) = load_user(store, user_id).await?;
        let mut owners = load_owners(store).await?;
        if owners.version == 0 {
            owners.owners = fallback_owners();
        }
        let username_claim = match command {
            UserCommand::Create { username, .. } => {
                load_claim(store, &stream::username(username)).await?
            }
            _ => (0, None),
        };
        let cx = Context {
            user_id,
            user_version,
            owners: &owners,
            username_claim,
            metadata,
            now: Utc::now(),
        };
        let writes = decide(user.as_ref(), command, &cx)?;
        if writes.is_empty() {
            return Ok(UserOutcome { position: 0, user });
        }
        match store.append_many(writes).await {
            Ok(appended) => {
                let position = appended.iter().map(|a| a.last_position).max().unwrap_or(0);
                let (user, _) = load_user(store, user_id).await?;
                return Ok(UserOutcome { position, user });
            }
            Err(StoreError::VersionConflict(conflict)) if attempt < 3 => {
                tracing::debug!(stream = %conflict.stream, "version conflict; deciding again");
            }
            Err(StoreError::VersionConflict(conflict)) => {
                let code = if conflict.stream.starts_with("username-") {
                    "username_taken"
                } else {
                    "version_conflict"
                };
                return Err(CommandError::Conflict {
                    code,
                    message: format!("concurrent change to {}; retry", conflict.stream),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Fold a user's whole stream; the state and the stream's version.
pub async fn load_user(
    store: &dyn Store,
    user_id: &str,
) -> Result<(Option<User>, u64), StoreError> {
    let name = stream::user(user_id);
    let mut user = None;
    let mut version = 0;
    loop {
        let batch = store.read_stream(&name, version + 1, 1000).await?;
        let Some(last) = batch.last() else {
            break;
        };
        version = last.version;
        for event in &batch {
            if let Some(e) = decode::<UserEvent>(event) {
                User::apply(&mut user, &e);
            }
        }
    }
    Ok((user, version))
}

/// The `owners` stream's version and its last set.
pub async fn load_owners(store: &dyn Store) -> Result<Owners, StoreError> {
    let version = store.stream_version(stream::OWNERS).await?.unwrap_or(0);
    let mut owners = BTreeSet::new();
    if version > 0 {
        let last = store.read_stream(stream::OWNERS, version, 1).await?;
        if let Some(InstanceEvent::OwnersChanged { owners: set }) =
            last.first().and_then(decode::<InstanceEvent>)
        {
            owners = set.into_iter().collect();
        }
    }
    Ok(Owners { version, owners })
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
