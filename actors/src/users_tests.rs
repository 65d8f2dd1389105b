//! `decide` for users: given a state, when a command, then these writes (or this error).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use picloud_events::domain::{InstanceEvent, Role, TokenKind, User, UserEvent, decode_new};
use picloud_events::{ExpectedVersion, Metadata, StreamWrite};

use super::*;

fn t() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

fn user(id: &str, role: Role) -> User {
    let mut state = None;
    User::apply(
        &mut state,
        &UserEvent::UserCreated {
            user_id: id.into(),
            username: format!("name-{id}"),
            role,
            password_hash: None,
            created_at: t(),
        },
    );
    state.expect("created")
}

fn owners(ids: &[&str]) -> Owners {
    Owners {
        version: 3,
        owners: ids.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn run(
    state: Option<&User>,
    owners: &Owners,
    command: UserCommand,
) -> Result<Vec<StreamWrite>, CommandError> {
    let metadata = Metadata::default();
    let cx = Context {
        user_id: state.map_or("new", |u| u.id.as_str()),
        user_version: u64::from(state.is_some()) * 5,
        owners,
        username_claim: (0, None),
        metadata: &metadata,
        now: t(),
    };
    decide(state, &command, &cx)
}

fn owners_after(writes: &[StreamWrite]) -> Option<BTreeSet<String>> {
    let write = writes.iter().find(|w| w.stream == "owners")?;
    match write.events.first().and_then(decode_new::<InstanceEvent>) {
        Some(InstanceEvent::OwnersChanged { owners }) => Some(owners.into_iter().collect()),
        _ => None,
    }
}

fn code(result: Result<Vec<StreamWrite>, CommandError>) -> &'static str {
    match result {
        Err(CommandError::Conflict { code, .. }) => code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn the_last_owner_cannot_be_demoted_disabled_or_deleted() {
    let only = user("o1", Role::Owner);
    let set = owners(&["o1"]);
    for command in [
        UserCommand::SetRole { role: Role::Admin },
        UserCommand::SetDisabled { disabled: true },
        UserCommand::Delete,
    ] {
        assert_eq!(code(run(Some(&only), &set, command)), "last_owner");
    }
}

#[test]
fn demoting_one_of_two_owners_appends_the_smaller_set_at_the_read_version() {
    let first = user("o1", Role::Owner);
    let writes = run(
        Some(&first),
        &owners(&["o1", "o2"]),
        UserCommand::SetRole { role: Role::Member },
    )
    .expect("allowed");
    assert_eq!(
        owners_after(&writes),
        Some(BTreeSet::from(["o2".to_owned()]))
    );
    let owners_write = writes
        .iter()
        .find(|w| w.stream == "owners")
        .expect("owners");
    assert_eq!(owners_write.expected, ExpectedVersion::Exact(3));
    let user_write = writes.iter().find(|w| w.stream == "user-o1").expect("user");
    assert_eq!(user_write.expected, ExpectedVersion::Exact(5));
}

#[test]
fn promoting_to_owner_adds_to_the_set_and_other_changes_leave_it_alone() {
    let admin = user("a1", Role::Admin);
    let set = owners(&["o1"]);
    let writes = run(
        Some(&admin),
        &set,
        UserCommand::SetRole { role: Role::Owner },
    )
    .expect("ok");
    assert_eq!(
        owners_after(&writes),
        Some(BTreeSet::from(["a1".to_owned(), "o1".to_owned()]))
    );
    let writes = run(
        Some(&admin),
        &set,
        UserCommand::SetDisabled { disabled: true },
    )
    .expect("ok");
    assert_eq!(owners_after(&writes), None);
}

#[test]
fn creating_a_user_claims_the_username_and_a_taken_name_is_refused() {
    let metadata = Metadata::default();
    let set = owners(&["o1"]);
    let command = UserCommand::Create {
        username: "ann".into(),
        role: Role::Owner,
        password_hash: None,
    };
    let mut cx = Context {
        user_id: "u9",
        user_version: 0,
        owners: &set,
        username_claim: (0, None),
        metadata: &metadata,
        now: t(),
    };
    let writes = decide(None, &command, &cx).expect("created");
    let streams: Vec<&str> = writes.iter().map(|w| w.stream.as_str()).collect();
    assert_eq!(streams, ["user-u9", "username-ann", "owners"]);
    cx.username_claim = (2, Some("someone".into()));
    assert_eq!(code(decide(None, &command, &cx)), "username_taken");
    let bad = UserCommand::Create {
        username: "Ann Smith".into(),
        role: Role::Member,
        password_hash: None,
    };
    cx.username_claim = (0, None);
    assert!(matches!(
        decide(None, &bad, &cx),
        Err(CommandError::Invalid {
            field: "username",
            ..
        })
    ));
}

#[test]
fn tokens_for_disabled_users_and_past_expiries_are_refused() {
    let mut member = user("m1", Role::Member);
    let set = owners(&["o1"]);
    let issue = |expires_at| UserCommand::IssueToken {
        token_id: "t1".into(),
        name: "ci".into(),
        hash: "h".into(),
        scopes: vec!["apps:read".into()],
        expires_at,
        kind: TokenKind::Api,
    };
    assert!(matches!(
        run(Some(&member), &set, issue(Some(t()))),
        Err(CommandError::Invalid {
            field: "expires_at",
            ..
        })
    ));
    assert!(run(Some(&member), &set, issue(None)).is_ok());
    member.disabled = true;
    assert_eq!(code(run(Some(&member), &set, issue(None))), "user_disabled");
}

#[test]
fn deleted_users_are_not_found_and_no_op_changes_write_nothing() {
    let mut member = user("m1", Role::Member);
    let set = owners(&["o1"]);
    assert_eq!(
        run(
            Some(&member),
            &set,
            UserCommand::SetRole { role: Role::Member }
        )
        .map(|w| w.len()),
        Ok(0)
    );
    member.deleted = true;
    assert!(matches!(
        run(
            Some(&member),
            &set,
            UserCommand::SetDisabled { disabled: true }
        ),
        Err(CommandError::NotFound("user"))
    ));
}
