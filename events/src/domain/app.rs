//! The app aggregate: its events and the fold that builds its state.
//!
//! One stream per app (`app-<uuid>`) holds the app, its domains, its scripts with
//! every saved version, and its routes, so a single expected version guards every
//! invariant that spans them (a route must target a live script of the same app).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use picloud_sandbox::{Overrides, RecordSetting};
use serde::{Deserialize, Serialize};

use super::codec::DomainEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScriptKind {
    Endpoint,
    Module,
}

/// A member's role in one app (instance owners and admins need none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppRole {
    Viewer,
    Developer,
    Admin,
}

impl AppRole {
    pub fn parse(text: &str) -> Option<AppRole> {
        match text {
            "viewer" => Some(AppRole::Viewer),
            "developer" => Some(AppRole::Developer),
            "admin" => Some(AppRole::Admin),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            AppRole::Viewer => "viewer",
            AppRole::Developer => "developer",
            AppRole::Admin => "admin",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AppEvent {
    AppCreated {
        app_id: String,
        slug: String,
        name: String,
        created_at: DateTime<Utc>,
    },
    AppRenamed {
        name: String,
    },
    AppDeleted {
        deleted_at: DateTime<Utc>,
    },
    /// Whether the app's runs record their answers from the outside world, for
    /// scripts whose `sandbox.record` is unset.
    AppRecordSet {
        record: RecordSetting,
    },
    DomainAdded {
        domain: String,
    },
    DomainRemoved {
        domain: String,
    },
    ScriptCreated {
        script_id: String,
        name: String,
        kind: ScriptKind,
        created_at: DateTime<Utc>,
    },
    /// A new immutable version; it becomes the live one.
    ScriptVersionSaved {
        script_id: String,
        version: u64,
        source: String,
        #[serde(default)]
        sandbox: Overrides,
        #[serde(default)]
        permissions: Option<serde_json::Value>,
        saved_at: DateTime<Utc>,
    },
    /// An older version becomes live again (rollback); history is untouched.
    ScriptLiveVersionSet {
        script_id: String,
        version: u64,
        at: DateTime<Utc>,
    },
    ScriptDeleted {
        script_id: String,
    },
    RouteAdded {
        route_id: String,
        method: String,
        path: String,
        script_id: String,
        created_at: DateTime<Utc>,
    },
    RouteRemoved {
        route_id: String,
    },
    /// A user becomes a member of the app, or an existing member's role changes.
    MemberSet {
        user_id: String,
        role: AppRole,
        at: DateTime<Utc>,
    },
    MemberRemoved {
        user_id: String,
        at: DateTime<Utc>,
    },
    /// A webhook, cron or event trigger that runs `script_id` asynchronously.
    TriggerCreated {
        trigger_id: String,
        script_id: String,
        kind: TriggerKind,
        max_attempts: u32,
        created_at: DateTime<Utc>,
    },
    TriggerEnabledSet {
        trigger_id: String,
        enabled: bool,
    },
    TriggerDeleted {
        trigger_id: String,
    },
    /// A secret is created or replaced. `sealed` is the value sealed under the
    /// instance master key (the log never holds a secret's plaintext).
    SecretSet {
        name: String,
        sealed: String,
        at: DateTime<Utc>,
    },
    SecretDeleted {
        name: String,
        at: DateTime<Utc>,
    },
    /// The app is bound to a folder of a git repository at a branch (git sync);
    /// a new binding replaces the old one. `sealed_secret` verifies the git host's
    /// push webhooks (sealed under the master key); `credentials_secret` names an
    /// app secret holding credentials for the remote (kept, not yet used).
    GitBound {
        url: String,
        branch: String,
        path: String,
        #[serde(default)]
        sealed_secret: Option<String>,
        #[serde(default)]
        credentials_secret: Option<String>,
        at: DateTime<Utc>,
    },
    GitUnbound {
        at: DateTime<Utc>,
    },
    /// The branch's commit `commit` was deployed: it is live.
    GitDeployed {
        commit: String,
        at: DateTime<Utc>,
    },
    /// Deploying the branch failed (`commit` when the repository could be read);
    /// what was live stays live.
    GitDeployFailed {
        #[serde(default)]
        commit: Option<String>,
        error: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AppEvent {}

/// What fires a trigger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// `POST /hooks/{id}`; with a secret, deliveries must be signed (Standard
    /// Webhooks or GitHub's `X-Hub-Signature-256`). The secret is kept sealed
    /// under the master key (`sealed_secret`); `secret` is read only from logs
    /// written before secrets were sealed and is never written any more.
    Webhook {
        #[serde(default)]
        secret: Option<String>,
        #[serde(default)]
        sealed_secret: Option<String>,
    },
    /// A 6-field schedule (seconds first) in an IANA zone.
    Cron { schedule: String, timezone: String },
    /// `events::emit(name, …)` from a script of the same app.
    Event { event: String },
}

impl TriggerKind {
    /// Whether deliveries must be signed (a webhook with a secret).
    pub fn signed(&self) -> bool {
        matches!(
            self,
            TriggerKind::Webhook { secret, sealed_secret } if secret.is_some() || sealed_secret.is_some()
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            TriggerKind::Webhook { .. } => "webhook",
            TriggerKind::Cron { .. } => "cron",
            TriggerKind::Event { .. } => "event",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    pub script_id: String,
    pub kind: TriggerKind,
    pub max_attempts: u32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// The git repository an app is bound to, and what of it is live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GitBinding {
    pub url: String,
    pub branch: String,
    pub path: String,
    pub sealed_secret: Option<String>,
    pub credentials_secret: Option<String>,
    pub bound_at: DateTime<Utc>,
    /// The commit last deployed under this binding.
    pub live_commit: Option<String>,
    pub deployed_at: Option<DateTime<Utc>>,
    /// The last failed deploy, cleared by a successful one.
    pub last_error: Option<GitDeployError>,
}

/// A failed git deploy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GitDeployError {
    pub commit: Option<String>,
    pub error: String,
    pub at: DateTime<Utc>,
}

/// An app secret: its sealed value and when it was set. Only names and times
/// leave the node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub sealed: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptVersion {
    pub version: u64,
    pub source: Arc<str>,
    #[serde(with = "super::codec::json_text")]
    pub sandbox: Overrides,
    #[serde(with = "super::codec::json_text")]
    pub permissions: Option<serde_json::Value>,
    pub saved_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Script {
    pub id: String,
    pub name: String,
    pub kind: ScriptKind,
    pub live_version: u64,
    pub versions: BTreeMap<u64, ScriptVersion>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Script {
    pub fn live(&self) -> Option<&ScriptVersion> {
        self.versions.get(&self.live_version)
    }
    pub fn latest_version(&self) -> u64 {
        self.versions.keys().next_back().copied().unwrap_or(0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub id: String,
    pub method: String,
    pub path: String,
    pub script_id: String,
    /// Creation order within the app: the tie-breaker of route matching.
    pub seq: u64,
    pub created_at: DateTime<Utc>,
}

/// State of one app folded from its stream (serialisable for catalog snapshots).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub deleted: bool,
    pub domains: BTreeSet<String>,
    pub scripts: BTreeMap<String, Script>,
    pub routes: BTreeMap<String, Route>,
    pub next_route_seq: u64,
    /// Members by user id.
    pub members: BTreeMap<String, AppRole>,
    /// Triggers by id.
    pub triggers: BTreeMap<String, Trigger>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, Secret>,
    /// The git repository the app is bound to (git sync).
    #[serde(default)]
    pub git: Option<GitBinding>,
    /// The app's default `record` setting (a script's `sandbox.record` wins).
    #[serde(default)]
    pub record: RecordSetting,
    /// Version of the app stream this state reflects.
    pub version: u64,
}

impl App {
    /// Fold a whole stream; `None` until an `AppCreated` is seen.
    pub fn fold<'a>(events: impl IntoIterator<Item = (u64, &'a AppEvent)>) -> Option<App> {
        let mut app: Option<App> = None;
        for (version, event) in events {
            App::apply(&mut app, version, event);
        }
        app
    }

    /// Apply one event at stream version `version`.
    pub fn apply(state: &mut Option<App>, version: u64, event: &AppEvent) {
        if let AppEvent::AppCreated {
            app_id,
            slug,
            name,
            created_at,
        } = event
        {
            *state = Some(App {
                id: app_id.clone(),
                slug: slug.clone(),
                name: name.clone(),
                created_at: *created_at,
                deleted: false,
                domains: BTreeSet::new(),
                scripts: BTreeMap::new(),
                routes: BTreeMap::new(),
                next_route_seq: 1,
                members: BTreeMap::new(),
                triggers: BTreeMap::new(),
                secrets: BTreeMap::new(),
                git: None,
                record: RecordSetting::Off,
                version,
            });
            return;
        }
        let Some(app) = state.as_mut() else {
            return;
        };
        app.version = version;
        match event {
            AppEvent::AppCreated { .. } => {}
            AppEvent::AppRenamed { name } => app.name = name.clone(),
            AppEvent::AppRecordSet { record } => app.record = *record,
            AppEvent::AppDeleted { .. } => {
                app.deleted = true;
                app.domains.clear();
                app.routes.clear();
                app.scripts.clear();
                app.members.clear();
                app.triggers.clear();
                app.secrets.clear();
                app.git = None;
            }
            AppEvent::DomainAdded { domain } => {
                app.domains.insert(domain.clone());
            }
            AppEvent::DomainRemoved { domain } => {
                app.domains.remove(domain);
            }
            AppEvent::ScriptCreated {
                script_id,
                name,
                kind,
                created_at,
            } => {
                app.scripts.insert(
                    script_id.clone(),
                    Script {
                        id: script_id.clone(),
                        name: name.clone(),
                        kind: *kind,
                        live_version: 0,
                        versions: BTreeMap::new(),
                        created_at: *created_at,
                        updated_at: *created_at,
                    },
                );
            }
            AppEvent::ScriptVersionSaved {
                script_id,
                version,
                source,
                sandbox,
                permissions,
                saved_at,
            } => {
                if let Some(script) = app.scripts.get_mut(script_id) {
                    script.versions.insert(
                        *version,
                        ScriptVersion {
                            version: *version,
                            source: Arc::from(source.as_str()),
                            sandbox: sandbox.clone(),
                            permissions: permissions.clone(),
                            saved_at: *saved_at,
                        },
                    );
                    script.live_version = *version;
                    script.updated_at = *saved_at;
                }
            }
            AppEvent::ScriptLiveVersionSet {
                script_id,
                version,
                at,
            } => {
                if let Some(script) = app.scripts.get_mut(script_id) {
                    script.live_version = *version;
                    script.updated_at = *at;
                }
            }
            AppEvent::ScriptDeleted { script_id } => {
                app.scripts.remove(script_id);
                // A trigger cannot outlive its script.
                app.triggers.retain(|_, t| t.script_id != *script_id);
            }
            AppEvent::RouteAdded {
                route_id,
                method,
                path,
                script_id,
                created_at,
            } => {
                app.routes.insert(
                    route_id.clone(),
                    Route {
                        id: route_id.clone(),
                        method: method.clone(),
                        path: path.clone(),
                        script_id: script_id.clone(),
                        seq: app.next_route_seq,
                        created_at: *created_at,
                    },
                );
                app.next_route_seq += 1;
            }
            AppEvent::RouteRemoved { route_id } => {
                app.routes.remove(route_id);
            }
            AppEvent::MemberSet { user_id, role, .. } => {
                app.members.insert(user_id.clone(), *role);
            }
            AppEvent::MemberRemoved { user_id, .. } => {
                app.members.remove(user_id);
            }
            AppEvent::TriggerCreated {
                trigger_id,
                script_id,
                kind,
                max_attempts,
                created_at,
            } => {
                app.triggers.insert(
                    trigger_id.clone(),
                    Trigger {
                        id: trigger_id.clone(),
                        script_id: script_id.clone(),
                        kind: kind.clone(),
                        max_attempts: *max_attempts,
                        enabled: true,
                        created_at: *created_at,
                    },
                );
            }
            AppEvent::TriggerEnabledSet {
                trigger_id,
                enabled,
            } => {
                if let Some(t) = app.triggers.get_mut(trigger_id) {
                    t.enabled = *enabled;
                }
            }
            AppEvent::TriggerDeleted { trigger_id } => {
                app.triggers.remove(trigger_id);
            }
            AppEvent::SecretSet { name, sealed, at } => {
                let created_at = app.secrets.get(name).map_or(*at, |s| s.created_at);
                app.secrets.insert(
                    name.clone(),
                    Secret {
                        sealed: sealed.clone(),
                        created_at,
                        updated_at: *at,
                    },
                );
            }
            AppEvent::SecretDeleted { name, .. } => {
                app.secrets.remove(name);
            }
            AppEvent::GitBound {
                url,
                branch,
                path,
                sealed_secret,
                credentials_secret,
                at,
            } => {
                app.git = Some(GitBinding {
                    url: url.clone(),
                    branch: branch.clone(),
                    path: path.clone(),
                    sealed_secret: sealed_secret.clone(),
                    credentials_secret: credentials_secret.clone(),
                    bound_at: *at,
                    live_commit: None,
                    deployed_at: None,
                    last_error: None,
                });
            }
            AppEvent::GitUnbound { .. } => app.git = None,
            AppEvent::GitDeployed { commit, at } => {
                if let Some(git) = app.git.as_mut() {
                    git.live_commit = Some(commit.clone());
                    git.deployed_at = Some(*at);
                    git.last_error = None;
                }
            }
            AppEvent::GitDeployFailed { commit, error, at } => {
                if let Some(git) = app.git.as_mut() {
                    git.last_error = Some(GitDeployError {
                        commit: commit.clone(),
                        error: error.clone(),
                        at: *at,
                    });
                }
            }
        }
    }

    pub fn script_by_name(&self, name: &str) -> Option<&Script> {
        self.scripts.values().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    fn created() -> AppEvent {
        AppEvent::AppCreated {
            app_id: "a1".into(),
            slug: "demo".into(),
            name: "Demo".into(),
            created_at: t(),
        }
    }

    fn saved(version: u64, source: &str) -> AppEvent {
        AppEvent::ScriptVersionSaved {
            script_id: "s1".into(),
            version,
            source: source.into(),
            sandbox: Overrides::default(),
            permissions: None,
            saved_at: t(),
        }
    }

    #[test]
    fn new_versions_become_live_and_rollback_keeps_history() {
        let events = [
            created(),
            AppEvent::ScriptCreated {
                script_id: "s1".into(),
                name: "hello".into(),
                kind: ScriptKind::Endpoint,
                created_at: t(),
            },
            saved(1, "\"one\""),
            saved(2, "\"two\""),
            AppEvent::ScriptLiveVersionSet {
                script_id: "s1".into(),
                version: 1,
                at: t(),
            },
        ];
        let app = App::fold(events.iter().enumerate().map(|(i, e)| (i as u64 + 1, e)));
        let app = app.expect("app folded");
        let script = &app.scripts["s1"];
        assert_eq!(script.live_version, 1);
        assert_eq!(script.latest_version(), 2);
        assert_eq!(script.live().map(|v| &*v.source), Some("\"one\""));
        assert_eq!(app.version, 5);
    }

    #[test]
    fn events_before_creation_are_ignored_and_delete_clears_everything() {
        let mut state = None;
        App::apply(&mut state, 1, &AppEvent::AppRenamed { name: "x".into() });
        assert!(state.is_none());
        App::apply(&mut state, 1, &created());
        App::apply(
            &mut state,
            2,
            &AppEvent::DomainAdded {
                domain: "a.example.com".into(),
            },
        );
        App::apply(&mut state, 3, &AppEvent::AppDeleted { deleted_at: t() });
        let app = state.expect("app exists");
        assert!(app.deleted);
        assert!(app.domains.is_empty());
    }

    #[test]
    fn a_git_binding_records_deploys_and_failures_and_goes_with_unbinding() {
        let bound = AppEvent::GitBound {
            url: "file:///srv/shop.git".into(),
            branch: "main".into(),
            path: ".".into(),
            sealed_secret: Some("sealed".into()),
            credentials_secret: None,
            at: t(),
        };
        let events = [
            created(),
            bound.clone(),
            AppEvent::GitDeployFailed {
                commit: Some("c1".into()),
                error: "broken".into(),
                at: t(),
            },
        ];
        let app = App::fold(events.iter().enumerate().map(|(i, e)| (i as u64 + 1, e)))
            .expect("app folded");
        let git = app.git.clone().expect("bound");
        assert_eq!(git.live_commit, None);
        assert_eq!(git.last_error.map(|e| e.error), Some("broken".into()));
        let mut state = Some(app);
        App::apply(
            &mut state,
            4,
            &AppEvent::GitDeployed {
                commit: "c2".into(),
                at: t(),
            },
        );
        let git = state.as_ref().and_then(|a| a.git.clone()).expect("bound");
        assert_eq!(git.live_commit.as_deref(), Some("c2"));
        assert_eq!(git.last_error, None, "a success clears the last error");
        App::apply(&mut state, 5, &AppEvent::GitUnbound { at: t() });
        assert_eq!(state.and_then(|a| a.git), None);
    }

    #[test]
    fn app_state_round_trips_through_a_postcard_snapshot() {
        let mut events = vec![created()];
        events.push(AppEvent::ScriptCreated {
            script_id: "s1".into(),
            name: "hello".into(),
            kind: ScriptKind::Endpoint,
            created_at: t(),
        });
        events.push(AppEvent::ScriptVersionSaved {
            script_id: "s1".into(),
            version: 1,
            source: "1".into(),
            sandbox: Overrides {
                max_operations: Some(5),
                ..Overrides::default()
            },
            permissions: Some(serde_json::json!({"kv": true})),
            saved_at: t(),
        });
        let app = App::fold(events.iter().enumerate().map(|(i, e)| (i as u64 + 1, e)));
        let bytes = crate::snapshot::encode(&app).expect("encode");
        let back: Option<Option<App>> = crate::snapshot::decode(&bytes).expect("decode");
        assert_eq!(back, Some(app));
    }

    #[test]
    fn events_round_trip_through_the_codec() {
        use crate::domain::codec::{decode, encode};
        use crate::event::{Metadata, RecordedEvent};
        let new = encode(&saved(3, "1 + 1"), &Metadata::default());
        assert_eq!(new.event_type, "ScriptVersionSaved");
        let recorded = RecordedEvent {
            position: 1,
            stream: "app-a1".into(),
            version: 1,
            event_type: new.event_type.clone(),
            data: new.data.clone(),
            metadata: new.metadata.clone(),
            recorded_at: t(),
        };
        assert_eq!(decode::<AppEvent>(&recorded), Some(saved(3, "1 + 1")));
    }
}
