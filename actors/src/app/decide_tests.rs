//! Given/when/then tests of the app decisions: given past events, when a command,
//! then these events (or this error).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use picloud_events::domain::{App, AppEvent, ClaimEvent, ScriptKind, decode_new, stream};
use picloud_events::{ExpectedVersion, Metadata, StreamWrite};
use picloud_sandbox::Overrides;

use super::*;

const APP: &str = "app1";

static KEYS: std::sync::LazyLock<crate::keys::MasterKey> =
    std::sync::LazyLock::new(|| crate::keys::MasterKey::from_bytes([5; 32]));

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_750_000_000, 0).unwrap_or_default()
}

struct Given {
    app: Option<App>,
    claims: HashMap<String, ClaimState>,
}

fn given(events: &[AppEvent]) -> Given {
    let app = App::fold(events.iter().enumerate().map(|(i, e)| (i as u64 + 1, e)));
    Given {
        app,
        claims: HashMap::new(),
    }
}

impl Given {
    fn claimed(mut self, name: String, version: u64, holder: Option<&str>) -> Given {
        self.claims.insert(
            name,
            ClaimState {
                version,
                holder: holder.map(str::to_owned),
            },
        );
        self
    }

    fn when(&self, command: AppCommand) -> Result<Vec<StreamWrite>, CommandError> {
        let metadata = Metadata::default();
        let cx = Context {
            app_id: APP,
            claims: &self.claims,
            metadata: &metadata,
            now: now(),
            keys: &KEYS,
        };
        decide(self.app.as_ref(), &command, &cx)
    }
}

fn app_events(writes: &[StreamWrite]) -> Vec<AppEvent> {
    writes
        .iter()
        .filter(|w| w.stream == stream::app(APP))
        .flat_map(|w| w.events.iter())
        .filter_map(decode_new)
        .collect()
}

fn created() -> AppEvent {
    AppEvent::AppCreated {
        app_id: APP.into(),
        slug: "demo".into(),
        name: "Demo".into(),
        created_at: now(),
    }
}

fn script(id: &str, name: &str, kind: ScriptKind) -> [AppEvent; 2] {
    [
        AppEvent::ScriptCreated {
            script_id: id.into(),
            name: name.into(),
            kind,
            created_at: now(),
        },
        AppEvent::ScriptVersionSaved {
            script_id: id.into(),
            version: 1,
            source: "\"v1\"".into(),
            sandbox: Overrides::default(),
            permissions: None,
            saved_at: now(),
        },
    ]
}

fn add_route(method: &str, path: &str, script_id: &str) -> AppCommand {
    AppCommand::AddRoute {
        route_id: format!("r-{method}-{path}"),
        method: method.into(),
        path: path.into(),
        script_id: script_id.into(),
    }
}

#[test]
fn creating_an_app_claims_its_slug_in_the_same_write() {
    let writes = given(&[])
        .when(AppCommand::Create {
            slug: "demo".into(),
            name: None,
        })
        .expect("created");
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].expected, ExpectedVersion::NoStream);
    assert_eq!(writes[1].stream, stream::slug("demo"));
    assert_eq!(writes[1].expected, ExpectedVersion::NoStream);
    let claim: Option<ClaimEvent> = decode_new(&writes[1].events[0]);
    assert_eq!(claim, Some(ClaimEvent::Claimed { owner: APP.into() }));
    match &app_events(&writes)[..] {
        [AppEvent::AppCreated { name, .. }] => assert_eq!(name, "demo"),
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn a_taken_slug_is_a_conflict_and_a_released_one_is_claimed_again() {
    let taken = given(&[])
        .claimed(stream::slug("demo"), 1, Some("other"))
        .when(AppCommand::Create {
            slug: "demo".into(),
            name: None,
        });
    assert!(matches!(
        taken,
        Err(CommandError::Conflict {
            code: "slug_taken",
            ..
        })
    ));
    let released = given(&[])
        .claimed(stream::slug("demo"), 2, None)
        .when(AppCommand::Create {
            slug: "demo".into(),
            name: None,
        })
        .expect("claimed again");
    assert_eq!(released[1].expected, ExpectedVersion::Exact(2));
}

#[test]
fn an_invalid_slug_is_refused_naming_the_field() {
    let result = given(&[]).when(AppCommand::Create {
        slug: "Not A Slug".into(),
        name: None,
    });
    assert!(matches!(
        result,
        Err(CommandError::Invalid { field: "slug", .. })
    ));
}

#[test]
fn commands_on_a_missing_or_deleted_app_are_not_found() {
    let result = given(&[]).when(AppCommand::Rename { name: "x".into() });
    assert!(matches!(result, Err(CommandError::NotFound("app"))));
    let deleted = given(&[created(), AppEvent::AppDeleted { deleted_at: now() }])
        .when(AppCommand::Rename { name: "x".into() });
    assert!(matches!(deleted, Err(CommandError::NotFound("app"))));
}

#[test]
fn every_change_expects_the_current_app_version() {
    let writes = given(&[created()])
        .when(AppCommand::Rename { name: "New".into() })
        .expect("renamed");
    assert_eq!(writes[0].expected, ExpectedVersion::Exact(1));
}

#[test]
fn deleting_an_app_releases_its_slug_and_domains() {
    let writes = given(&[
        created(),
        AppEvent::DomainAdded {
            domain: "a.example.com".into(),
        },
    ])
    .claimed(stream::slug("demo"), 1, Some(APP))
    .claimed(stream::domain("a.example.com"), 1, Some(APP))
    .when(AppCommand::Delete)
    .expect("deleted");
    let streams: Vec<&str> = writes.iter().map(|w| w.stream.as_str()).collect();
    assert_eq!(
        streams,
        vec![
            stream::app(APP).as_str(),
            stream::slug("demo").as_str(),
            stream::domain("a.example.com").as_str()
        ]
    );
    assert!(
        writes[1..]
            .iter()
            .all(|w| w.expected == ExpectedVersion::Exact(1))
    );
}

#[test]
fn a_domain_of_another_app_is_taken_and_domains_are_normalized() {
    let taken = given(&[created()])
        .claimed(stream::domain("a.example.com"), 1, Some("other"))
        .when(AppCommand::AddDomain {
            domain: "A.Example.com".into(),
        });
    assert!(matches!(
        taken,
        Err(CommandError::Conflict {
            code: "domain_taken",
            ..
        })
    ));
    let added = given(&[created()])
        .when(AppCommand::AddDomain {
            domain: "A.Example.com".into(),
        })
        .expect("added");
    assert_eq!(
        app_events(&added),
        vec![AppEvent::DomainAdded {
            domain: "a.example.com".into()
        }]
    );
}

#[test]
fn script_names_are_unique_within_an_app() {
    let mut events = vec![created()];
    events.extend(script("s1", "hello", ScriptKind::Endpoint));
    let result = given(&events).when(AppCommand::CreateScript {
        script_id: "s2".into(),
        name: "hello".into(),
        kind: ScriptKind::Endpoint,
        source: "1".into(),
        sandbox: Overrides::default(),
        permissions: None,
    });
    assert!(matches!(
        result,
        Err(CommandError::Conflict {
            code: "script_exists",
            ..
        })
    ));
}

#[test]
fn an_update_is_a_new_version_carrying_over_what_it_does_not_change() {
    let mut events = vec![created()];
    events.extend(script("s1", "hello", ScriptKind::Endpoint));
    events.push(AppEvent::ScriptLiveVersionSet {
        script_id: "s1".into(),
        version: 1,
        at: now(),
    });
    let writes = given(&events)
        .when(AppCommand::UpdateScript {
            script_id: "s1".into(),
            source: Some("\"v2\"".into()),
            sandbox: None,
            permissions: None,
        })
        .expect("updated");
    match &app_events(&writes)[..] {
        [
            AppEvent::ScriptVersionSaved {
                version, source, ..
            },
        ] => {
            assert_eq!(*version, 2);
            assert_eq!(source, "\"v2\"");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rollback_to_an_unknown_version_is_invalid() {
    let mut events = vec![created()];
    events.extend(script("s1", "hello", ScriptKind::Endpoint));
    let result = given(&events).when(AppCommand::Rollback {
        script_id: "s1".into(),
        version: 7,
    });
    assert!(matches!(
        result,
        Err(CommandError::Invalid {
            field: "version",
            ..
        })
    ));
}

#[test]
fn duplicate_routes_conflict_even_with_renamed_params() {
    let mut events = vec![created()];
    events.extend(script("s1", "hello", ScriptKind::Endpoint));
    events.push(AppEvent::RouteAdded {
        route_id: "r1".into(),
        method: "GET".into(),
        path: "/users/:id".into(),
        script_id: "s1".into(),
        created_at: now(),
    });
    let g = given(&events);
    let dup = g.when(add_route("GET", "/users/:name", "s1"));
    assert!(matches!(
        dup,
        Err(CommandError::Conflict {
            code: "route_exists",
            ..
        })
    ));
    assert!(g.when(add_route("POST", "/users/:name", "s1")).is_ok());
    assert!(g.when(add_route("*", "/users/:name", "s1")).is_ok());
}

#[test]
fn routes_need_an_endpoint_script_of_the_same_app_and_a_valid_pattern() {
    let mut events = vec![created()];
    events.extend(script("m1", "lib", ScriptKind::Module));
    let g = given(&events);
    assert!(matches!(
        g.when(add_route("GET", "/x", "m1")),
        Err(CommandError::Invalid {
            field: "script_id",
            ..
        })
    ));
    assert!(matches!(
        g.when(add_route("GET", "/x", "nope")),
        Err(CommandError::Invalid {
            field: "script_id",
            ..
        })
    ));
    assert!(matches!(
        g.when(add_route("FETCH", "/x", "m1")),
        Err(CommandError::Invalid {
            field: "method",
            ..
        })
    ));
    assert!(matches!(
        g.when(add_route("GET", "no-slash", "m1")),
        Err(CommandError::Invalid { field: "path", .. })
    ));
}

#[test]
fn deleting_a_script_removes_its_routes_in_the_same_write() {
    let mut events = vec![created()];
    events.extend(script("s1", "hello", ScriptKind::Endpoint));
    events.push(AppEvent::RouteAdded {
        route_id: "r1".into(),
        method: "GET".into(),
        path: "/".into(),
        script_id: "s1".into(),
        created_at: now(),
    });
    let writes = given(&events)
        .when(AppCommand::DeleteScript {
            script_id: "s1".into(),
        })
        .expect("deleted");
    assert_eq!(
        app_events(&writes),
        vec![
            AppEvent::RouteRemoved {
                route_id: "r1".into()
            },
            AppEvent::ScriptDeleted {
                script_id: "s1".into()
            }
        ]
    );
}

#[test]
fn a_secret_reaches_the_log_sealed_for_its_app_and_name() {
    let writes = given(&[created()])
        .when(AppCommand::SetSecret {
            name: "GH_TOKEN".into(),
            value: SecretText("hunter2".into()),
        })
        .expect("set");
    let [AppEvent::SecretSet { name, sealed, .. }] = &app_events(&writes)[..] else {
        panic!("unexpected {writes:?}");
    };
    assert_eq!(name, "GH_TOKEN");
    assert!(!sealed.contains("hunter2"));
    let purpose = crate::keys::secret_purpose(APP, "GH_TOKEN");
    assert_eq!(KEYS.open_text(&purpose, sealed).as_deref(), Ok("hunter2"));
    assert!(
        KEYS.open_text(&crate::keys::secret_purpose(APP, "OTHER"), sealed)
            .is_err()
    );
}

#[test]
fn bad_secrets_are_invalid_and_deleting_a_missing_one_is_not_found() {
    let given = given(&[created()]);
    for name in ["", "1A", "has space", &"A".repeat(65)] {
        let result = given.when(AppCommand::SetSecret {
            name: name.into(),
            value: SecretText("x".into()),
        });
        assert!(
            matches!(result, Err(CommandError::Invalid { field: "name", .. })),
            "{name}: {result:?}"
        );
    }
    let result = given.when(AppCommand::SetSecret {
        name: "BIG".into(),
        value: SecretText("x".repeat(MAX_SECRET_BYTES + 1)),
    });
    assert!(matches!(
        result,
        Err(CommandError::Invalid { field: "value", .. })
    ));
    let result = given.when(AppCommand::DeleteSecret {
        name: "NOPE".into(),
    });
    assert!(matches!(result, Err(CommandError::NotFound("secret"))));
}

#[test]
fn a_webhook_secret_is_sealed_and_other_triggers_take_none() {
    let mut events = vec![created()];
    events.extend(script("s1", "hook", ScriptKind::Endpoint));
    let given = given(&events);
    let writes = given
        .when(AppCommand::CreateTrigger {
            trigger_id: "t1".into(),
            script_id: "s1".into(),
            kind: TriggerKind::Webhook {
                secret: None,
                sealed_secret: None,
            },
            max_attempts: 5,
            secret: Some(SecretText("whsec_abc".into())),
        })
        .expect("created");
    let [AppEvent::TriggerCreated { kind, .. }] = &app_events(&writes)[..] else {
        panic!("unexpected {writes:?}");
    };
    let TriggerKind::Webhook {
        secret: None,
        sealed_secret: Some(sealed),
    } = kind
    else {
        panic!("unexpected {kind:?}");
    };
    let purpose = crate::keys::webhook_purpose(APP, "t1");
    assert_eq!(KEYS.open_text(&purpose, sealed).as_deref(), Ok("whsec_abc"));

    let result = given.when(AppCommand::CreateTrigger {
        trigger_id: "t2".into(),
        script_id: "s1".into(),
        kind: TriggerKind::Event { event: "x".into() },
        max_attempts: 5,
        secret: Some(SecretText("s".into())),
    });
    assert!(matches!(
        result,
        Err(CommandError::Invalid {
            field: "secret",
            ..
        })
    ));
}

#[test]
fn an_invalid_manifest_is_refused_and_null_removes_one() {
    let mut events = vec![created()];
    events.extend(script("s1", "hello", ScriptKind::Endpoint));
    let given = given(&events);
    let result = given.when(AppCommand::UpdateScript {
        script_id: "s1".into(),
        source: None,
        sandbox: None,
        permissions: Some(Some(serde_json::json!({"kv": "yes"}))),
    });
    match result {
        Err(CommandError::Invalid { field, message }) => {
            assert_eq!(field, "permissions");
            assert!(message.contains("permissions.kv"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let writes = given
        .when(AppCommand::UpdateScript {
            script_id: "s1".into(),
            source: None,
            sandbox: None,
            permissions: Some(None),
        })
        .expect("updated");
    assert!(matches!(
        &app_events(&writes)[..],
        [AppEvent::ScriptVersionSaved {
            permissions: None,
            ..
        }]
    ));
}

fn bind(url: &str, branch: &str, path: &str) -> AppCommand {
    AppCommand::BindGit {
        url: url.into(),
        branch: branch.into(),
        path: path.into(),
        secret: Some(SecretText("push-secret".into())),
        credentials_secret: Some("GIT_TOKEN".into()),
    }
}

fn field_of(result: Result<Vec<StreamWrite>, CommandError>) -> &'static str {
    match result {
        Err(CommandError::Invalid { field, .. }) => field,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn binding_git_seals_the_webhook_secret_and_normalizes_the_path() {
    let writes = given(&[created()])
        .when(bind("file:///srv/shop.git", "main", "./app//"))
        .expect("bound");
    let [
        AppEvent::GitBound {
            url,
            branch,
            path,
            sealed_secret: Some(sealed),
            credentials_secret,
            ..
        },
    ] = &app_events(&writes)[..]
    else {
        panic!("unexpected {writes:?}");
    };
    assert_eq!(
        (url.as_str(), branch.as_str(), path.as_str()),
        ("file:///srv/shop.git", "main", "app")
    );
    assert_eq!(credentials_secret.as_deref(), Some("GIT_TOKEN"));
    assert!(!sealed.contains("push-secret"));
    let purpose = crate::keys::git_purpose(APP);
    assert_eq!(
        KEYS.open_text(&purpose, sealed).as_deref(),
        Ok("push-secret")
    );
    let root = given(&[created()])
        .when(bind("/srv/shop.git", "release/1.x", ""))
        .expect("bound");
    assert!(
        matches!(&app_events(&root)[..], [AppEvent::GitBound { path, .. }] if path == "."),
        "{root:?}"
    );
}

#[test]
fn ssh_remotes_urls_with_credentials_bad_branches_and_paths_are_invalid_naming_the_field() {
    let g = given(&[created()]);
    for url in [
        "https://github.com/a/b.git",
        "http://git.lan:3000/y",
        "file:///srv/r.git",
    ] {
        assert!(g.when(bind(url, "main", ".")).is_ok(), "{url}");
    }
    for url in [
        "https://user:token@github.com/a/b.git",
        "https://token@github.com/a/b.git",
        "https:///a/b.git",
        "http://:80/y",
        "https://github.com/a b.git",
        "ftp://x/y",
        "ssh://git@x/y",
        "git@github.com:a/b.git",
        "relative/path",
        "",
    ] {
        assert_eq!(field_of(g.when(bind(url, "main", "."))), "url", "{url}");
    }
    for branch in ["", "-x", "a..b", "a b", "x.lock", "a:b"] {
        assert_eq!(
            field_of(g.when(bind("/srv/r", branch, "."))),
            "branch",
            "{branch:?}"
        );
    }
    for path in ["/abs", "../up", "a/../../b"] {
        assert_eq!(
            field_of(g.when(bind("/srv/r", "main", path))),
            "path",
            "{path}"
        );
    }
    let mut bad_secret = bind("/srv/r", "main", ".");
    if let AppCommand::BindGit { secret, .. } = &mut bad_secret {
        *secret = Some(SecretText(String::new()));
    }
    assert_eq!(field_of(g.when(bad_secret)), "secret");
    let mut bad_credentials = bind("/srv/r", "main", ".");
    if let AppCommand::BindGit {
        credentials_secret, ..
    } = &mut bad_credentials
    {
        *credentials_secret = Some("1 not a name".into());
    }
    assert_eq!(field_of(g.when(bad_credentials)), "credentials_secret");
}

#[test]
fn deploys_are_recorded_only_for_a_bound_app_and_unbinding_needs_a_binding() {
    let unbound = given(&[created()]);
    assert_eq!(
        unbound.when(AppCommand::UnbindGit).err(),
        Some(CommandError::NotFound("git binding"))
    );
    assert_eq!(
        unbound
            .when(AppCommand::RecordGitDeploy {
                commit: Some("c1".into()),
                error: None,
            })
            .err(),
        Some(CommandError::NotFound("git binding"))
    );
    let bound = given(&[
        created(),
        AppEvent::GitBound {
            url: "/srv/r".into(),
            branch: "main".into(),
            path: ".".into(),
            sealed_secret: None,
            credentials_secret: None,
            at: now(),
        },
    ]);
    let ok = bound
        .when(AppCommand::RecordGitDeploy {
            commit: Some("c1".into()),
            error: None,
        })
        .expect("deployed");
    assert_eq!(
        app_events(&ok),
        vec![AppEvent::GitDeployed {
            commit: "c1".into(),
            at: now(),
        }]
    );
    let failed = bound
        .when(AppCommand::RecordGitDeploy {
            commit: Some("c2".into()),
            error: Some("scripts/a.rhai: syntax error".into()),
        })
        .expect("failure recorded");
    assert_eq!(
        app_events(&failed),
        vec![AppEvent::GitDeployFailed {
            commit: Some("c2".into()),
            error: "scripts/a.rhai: syntax error".into(),
            at: now(),
        }]
    );
    assert!(matches!(
        &app_events(&bound.when(AppCommand::UnbindGit).expect("unbound"))[..],
        [AppEvent::GitUnbound { .. }]
    ));
}
