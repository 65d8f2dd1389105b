//! Commands on an app and the pure decision of which events they produce.
//!
//! `decide(state, claims, command)` never touches the store: the actor loads the
//! app state and the claim streams a command needs, calls it, and appends what it
//! returns with the expected versions it names. That keeps every rule testable as
//! given/when/then.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use picloud_events::domain::{
    App, AppEvent, AppRole, ClaimEvent, ScriptKind, TriggerKind, encode, stream,
};
use picloud_events::{ExpectedVersion, Metadata, NewEvent, StoreError, StreamWrite};
use picloud_sandbox::{Overrides, RecordSetting};

use crate::keys::{MasterKey, git_purpose, secret_purpose, webhook_purpose};
use crate::routing::{RoutePattern, parse_method};
use crate::validate::{normalize_domain, validate_app_name, validate_script_name, validate_slug};

#[derive(Clone, Debug, PartialEq)]
pub enum AppCommand {
    Create {
        slug: String,
        name: Option<String>,
    },
    Rename {
        name: String,
    },
    /// The app's default `record` setting.
    SetRecord {
        record: RecordSetting,
    },
    Delete,
    AddDomain {
        domain: String,
    },
    RemoveDomain {
        domain: String,
    },
    CreateScript {
        script_id: String,
        name: String,
        kind: ScriptKind,
        source: String,
        sandbox: Overrides,
        permissions: Option<serde_json::Value>,
    },
    /// A new version; fields left `None` are carried over from the live version
    /// (`permissions: Some(None)` removes the manifest).
    UpdateScript {
        script_id: String,
        source: Option<String>,
        sandbox: Option<Overrides>,
        permissions: Option<Option<serde_json::Value>>,
    },
    DeleteScript {
        script_id: String,
    },
    Rollback {
        script_id: String,
        version: u64,
    },
    AddRoute {
        route_id: String,
        method: String,
        path: String,
        script_id: String,
    },
    RemoveRoute {
        route_id: String,
    },
    /// Add a member or change a member's role (the user was checked to exist).
    SetMember {
        user_id: String,
        role: AppRole,
    },
    RemoveMember {
        user_id: String,
    },
    /// A webhook, cron or event trigger for an endpoint script of this app.
    /// `secret` (webhooks only) is sealed before it reaches the log.
    CreateTrigger {
        trigger_id: String,
        script_id: String,
        kind: TriggerKind,
        max_attempts: u32,
        secret: Option<SecretText>,
    },
    SetTriggerEnabled {
        trigger_id: String,
        enabled: bool,
    },
    DeleteTrigger {
        trigger_id: String,
    },
    /// Create or replace a secret; the value is sealed under the master key.
    SetSecret {
        name: String,
        value: SecretText,
    },
    DeleteSecret {
        name: String,
    },
    /// Bind the app to a folder of a git repository at a branch (replacing any
    /// binding). `secret` verifies the git host's push webhooks and is sealed;
    /// `credentials_secret` names an app secret (kept for private remotes).
    BindGit {
        url: String,
        branch: String,
        path: String,
        secret: Option<SecretText>,
        credentials_secret: Option<String>,
    },
    UnbindGit,
    /// The outcome of a git deploy: `error` `None` when `commit` is now live.
    RecordGitDeploy {
        commit: Option<String>,
        error: Option<String>,
    },
}

/// A plaintext secret on its way to being sealed; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// Longest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// Most secrets one app may hold.
pub const MAX_SECRETS_PER_APP: usize = 256;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Store(String),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => CommandError::Unavailable(m),
            StoreError::VersionConflict(c) => CommandError::Conflict {
                code: "version_conflict",
                message: format!("concurrent change to {}; retry", c.stream),
            },
            other => CommandError::Store(other.to_string()),
        }
    }
}

/// The last state of one claim stream: its version and who holds the name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimState {
    pub version: u64,
    pub holder: Option<String>,
}

/// The claim streams a command must read before deciding.
pub fn claims_needed(state: Option<&App>, command: &AppCommand) -> Vec<String> {
    match command {
        AppCommand::Create { slug, .. } => vec![stream::slug(slug)],
        AppCommand::AddDomain { domain } | AppCommand::RemoveDomain { domain } => {
            match normalize_domain(domain) {
                Ok(d) => vec![stream::domain(&d)],
                Err(_) => Vec::new(),
            }
        }
        AppCommand::Delete => state
            .map(|app| {
                std::iter::once(stream::slug(&app.slug))
                    .chain(app.domains.iter().map(|d| stream::domain(d)))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Everything `decide` needs besides the command.
pub struct Context<'a> {
    pub app_id: &'a str,
    pub claims: &'a HashMap<String, ClaimState>,
    pub metadata: &'a Metadata,
    pub now: DateTime<Utc>,
    /// Seals secrets before they become events.
    pub keys: &'a MasterKey,
}

/// Decide the writes for `command` against `state` (`None`: the app does not exist).
pub fn decide(
    state: Option<&App>,
    command: &AppCommand,
    cx: &Context<'_>,
) -> Result<Vec<StreamWrite>, CommandError> {
    let mut meta = cx.metadata.clone();
    meta.app = Some(cx.app_id.to_owned());
    let enc = |e: &AppEvent| encode(e, &meta);
    let claim = |name: String, owner: &str, take: bool| -> StreamWrite {
        let current = cx.claims.get(&name).cloned().unwrap_or_default();
        let event = if take {
            ClaimEvent::Claimed {
                owner: owner.to_owned(),
            }
        } else {
            ClaimEvent::Released {
                owner: owner.to_owned(),
            }
        };
        StreamWrite {
            expected: expected_after(current.version),
            events: vec![encode(&event, &meta)],
            stream: name,
        }
    };

    if let AppCommand::Create { slug, name } = command {
        if state.is_some() {
            return Err(CommandError::Conflict {
                code: "app_exists",
                message: "the app already exists".into(),
            });
        }
        validate_slug(slug).map_err(invalid)?;
        let name = name.clone().unwrap_or_else(|| slug.clone());
        validate_app_name(&name).map_err(invalid)?;
        let slug_stream = stream::slug(slug);
        if holder(cx, &slug_stream).is_some() {
            return Err(CommandError::Conflict {
                code: "slug_taken",
                message: format!("slug '{slug}' is taken"),
            });
        }
        let created = AppEvent::AppCreated {
            app_id: cx.app_id.to_owned(),
            slug: slug.clone(),
            name,
            created_at: cx.now,
        };
        return Ok(vec![
            app_write(cx.app_id, ExpectedVersion::NoStream, vec![enc(&created)]),
            claim(slug_stream, cx.app_id, true),
        ]);
    }

    let app = match state {
        Some(app) if !app.deleted => app,
        _ => return Err(CommandError::NotFound("app")),
    };
    let expected = ExpectedVersion::Exact(app.version);
    let one = |e: AppEvent| Ok(vec![app_write(cx.app_id, expected, vec![enc(&e)])]);

    match command {
        AppCommand::Create { .. } => unreachable_create(),
        AppCommand::Rename { name } => {
            validate_app_name(name).map_err(invalid)?;
            one(AppEvent::AppRenamed { name: name.clone() })
        }
        AppCommand::SetRecord { record } => one(AppEvent::AppRecordSet { record: *record }),
        AppCommand::Delete => {
            let mut writes = vec![app_write(
                cx.app_id,
                expected,
                vec![enc(&AppEvent::AppDeleted { deleted_at: cx.now })],
            )];
            writes.push(claim(stream::slug(&app.slug), cx.app_id, false));
            for domain in &app.domains {
                writes.push(claim(stream::domain(domain), cx.app_id, false));
            }
            Ok(writes)
        }
        AppCommand::AddDomain { domain } => {
            let domain = normalize_domain(domain).map_err(invalid)?;
            let name = stream::domain(&domain);
            match holder(cx, &name) {
                Some(owner) if owner == cx.app_id => Err(CommandError::Conflict {
                    code: "domain_exists",
                    message: format!("domain '{domain}' is already on this app"),
                }),
                Some(_) => Err(CommandError::Conflict {
                    code: "domain_taken",
                    message: format!("domain '{domain}' belongs to another app"),
                }),
                None => Ok(vec![
                    app_write(
                        cx.app_id,
                        expected,
                        vec![enc(&AppEvent::DomainAdded { domain })],
                    ),
                    claim(name, cx.app_id, true),
                ]),
            }
        }
        AppCommand::RemoveDomain { domain } => {
            let domain = normalize_domain(domain).map_err(invalid)?;
            if !app.domains.contains(&domain) {
                return Err(CommandError::NotFound("domain"));
            }
            let name = stream::domain(&domain);
            Ok(vec![
                app_write(
                    cx.app_id,
                    expected,
                    vec![enc(&AppEvent::DomainRemoved { domain })],
                ),
                claim(name, cx.app_id, false),
            ])
        }
        AppCommand::CreateScript {
            script_id,
            name,
            kind,
            source,
            sandbox,
            permissions,
        } => {
            validate_script_name(name).map_err(invalid)?;
            check_manifest(permissions.as_ref())?;
            if app.script_by_name(name).is_some() {
                return Err(CommandError::Conflict {
                    code: "script_exists",
                    message: format!("a script named '{name}' already exists in this app"),
                });
            }
            let events = [
                AppEvent::ScriptCreated {
                    script_id: script_id.clone(),
                    name: name.clone(),
                    kind: *kind,
                    created_at: cx.now,
                },
                AppEvent::ScriptVersionSaved {
                    script_id: script_id.clone(),
                    version: 1,
                    source: source.clone(),
                    sandbox: sandbox.clone(),
                    permissions: permissions.clone(),
                    saved_at: cx.now,
                },
            ];
            Ok(vec![app_write(
                cx.app_id,
                expected,
                events.iter().map(enc).collect(),
            )])
        }
        AppCommand::UpdateScript {
            script_id,
            source,
            sandbox,
            permissions,
        } => {
            let script = app
                .scripts
                .get(script_id)
                .ok_or(CommandError::NotFound("script"))?;
            let live = script
                .live()
                .ok_or(CommandError::NotFound("script version"))?;
            let permissions = match permissions {
                Some(given) => given.clone(),
                None => live.permissions.clone(),
            };
            check_manifest(permissions.as_ref())?;
            one(AppEvent::ScriptVersionSaved {
                script_id: script_id.clone(),
                version: script.latest_version() + 1,
                source: source.clone().unwrap_or_else(|| live.source.to_string()),
                sandbox: sandbox.clone().unwrap_or_else(|| live.sandbox.clone()),
                permissions,
                saved_at: cx.now,
            })
        }
        AppCommand::DeleteScript { script_id } => {
            if !app.scripts.contains_key(script_id) {
                return Err(CommandError::NotFound("script"));
            }
            // Routes to a deleted script go with it, in the same append.
            let mut events: Vec<NewEvent> = app
                .routes
                .values()
                .filter(|r| &r.script_id == script_id)
                .map(|r| {
                    enc(&AppEvent::RouteRemoved {
                        route_id: r.id.clone(),
                    })
                })
                .collect();
            events.push(enc(&AppEvent::ScriptDeleted {
                script_id: script_id.clone(),
            }));
            Ok(vec![app_write(cx.app_id, expected, events)])
        }
        AppCommand::Rollback { script_id, version } => {
            let script = app
                .scripts
                .get(script_id)
                .ok_or(CommandError::NotFound("script"))?;
            if !script.versions.contains_key(version) {
                return Err(CommandError::Invalid {
                    field: "version",
                    message: format!("script has no version {version}"),
                });
            }
            one(AppEvent::ScriptLiveVersionSet {
                script_id: script_id.clone(),
                version: *version,
                at: cx.now,
            })
        }
        AppCommand::AddRoute {
            route_id,
            method,
            path,
            script_id,
        } => {
            let method = parse_method(method).map_err(|e| CommandError::Invalid {
                field: "method",
                message: e.0,
            })?;
            let pattern = RoutePattern::parse(path).map_err(|e| CommandError::Invalid {
                field: "path",
                message: e.0,
            })?;
            match app.scripts.get(script_id) {
                None => {
                    return Err(CommandError::Invalid {
                        field: "script_id",
                        message: "no such script in this app".into(),
                    });
                }
                Some(s) if s.kind == ScriptKind::Module => {
                    return Err(CommandError::Invalid {
                        field: "script_id",
                        message: "a module script cannot serve a route".into(),
                    });
                }
                Some(_) => {}
            }
            let duplicate = app.routes.values().any(|r| {
                parse_method(&r.method).ok().as_ref() == Some(&method)
                    && RoutePattern::parse(&r.path)
                        .map(|p| p.shape() == pattern.shape())
                        .unwrap_or(false)
            });
            if duplicate {
                return Err(CommandError::Conflict {
                    code: "route_exists",
                    message: format!(
                        "a route for {} {} already exists",
                        crate::catalog::method_label(&method),
                        pattern.as_str()
                    ),
                });
            }
            one(AppEvent::RouteAdded {
                route_id: route_id.clone(),
                method: crate::catalog::method_label(&method).to_owned(),
                path: pattern.as_str().to_owned(),
                script_id: script_id.clone(),
                created_at: cx.now,
            })
        }
        AppCommand::CreateTrigger {
            trigger_id,
            script_id,
            kind,
            max_attempts,
            secret,
        } => {
            match app.scripts.get(script_id) {
                None => {
                    return Err(CommandError::Invalid {
                        field: "script_id",
                        message: "no such script in this app".into(),
                    });
                }
                Some(s) if s.kind == ScriptKind::Module => {
                    return Err(CommandError::Invalid {
                        field: "script_id",
                        message: "a module script cannot be triggered".into(),
                    });
                }
                Some(_) => {}
            }
            let mut kind = validate_trigger(kind)?;
            if let Some(SecretText(secret)) = secret {
                let TriggerKind::Webhook { sealed_secret, .. } = &mut kind else {
                    return Err(CommandError::Invalid {
                        field: "secret",
                        message: "only a webhook trigger has a secret".into(),
                    });
                };
                if secret.is_empty() || secret.len() > 512 {
                    return Err(CommandError::Invalid {
                        field: "secret",
                        message: "a webhook secret must be 1 to 512 bytes".into(),
                    });
                }
                *sealed_secret = Some(seal(cx, &webhook_purpose(cx.app_id, trigger_id), secret)?);
            }
            one(AppEvent::TriggerCreated {
                trigger_id: trigger_id.clone(),
                script_id: script_id.clone(),
                kind,
                max_attempts: *max_attempts,
                created_at: cx.now,
            })
        }
        AppCommand::SetTriggerEnabled {
            trigger_id,
            enabled,
        } => {
            if !app.triggers.contains_key(trigger_id) {
                return Err(CommandError::NotFound("trigger"));
            }
            one(AppEvent::TriggerEnabledSet {
                trigger_id: trigger_id.clone(),
                enabled: *enabled,
            })
        }
        AppCommand::DeleteTrigger { trigger_id } => {
            if !app.triggers.contains_key(trigger_id) {
                return Err(CommandError::NotFound("trigger"));
            }
            one(AppEvent::TriggerDeleted {
                trigger_id: trigger_id.clone(),
            })
        }
        AppCommand::SetSecret {
            name,
            value: SecretText(value),
        } => {
            validate_secret_name(name)?;
            if value.len() > MAX_SECRET_BYTES {
                return Err(CommandError::Invalid {
                    field: "value",
                    message: format!("a secret is at most {MAX_SECRET_BYTES} bytes"),
                });
            }
            if !app.secrets.contains_key(name) && app.secrets.len() >= MAX_SECRETS_PER_APP {
                return Err(CommandError::Invalid {
                    field: "name",
                    message: format!("an app holds at most {MAX_SECRETS_PER_APP} secrets"),
                });
            }
            one(AppEvent::SecretSet {
                name: name.clone(),
                sealed: seal(cx, &secret_purpose(cx.app_id, name), value)?,
                at: cx.now,
            })
        }
        AppCommand::DeleteSecret { name } => {
            validate_secret_name(name)?;
            if !app.secrets.contains_key(name) {
                return Err(CommandError::NotFound("secret"));
            }
            one(AppEvent::SecretDeleted {
                name: name.clone(),
                at: cx.now,
            })
        }
        AppCommand::BindGit {
            url,
            branch,
            path,
            secret,
            credentials_secret,
        } => {
            validate_git_url(url)?;
            validate_git_branch(branch)?;
            let path = normalize_git_path(path)?;
            if let Some(name) = credentials_secret
                && validate_secret_name(name).is_err()
            {
                return Err(CommandError::Invalid {
                    field: "credentials_secret",
                    message: "the name of an app secret: 1 to 64 of A-Z a-z 0-9 _ - . starting with a letter or _".into(),
                });
            }
            let sealed_secret = match secret {
                Some(SecretText(secret)) => {
                    if secret.is_empty() || secret.len() > 512 {
                        return Err(CommandError::Invalid {
                            field: "secret",
                            message: "a webhook secret must be 1 to 512 bytes".into(),
                        });
                    }
                    Some(seal(cx, &git_purpose(cx.app_id), secret)?)
                }
                None => None,
            };
            one(AppEvent::GitBound {
                url: url.clone(),
                branch: branch.clone(),
                path,
                sealed_secret,
                credentials_secret: credentials_secret.clone(),
                at: cx.now,
            })
        }
        AppCommand::UnbindGit => {
            if app.git.is_none() {
                return Err(CommandError::NotFound("git binding"));
            }
            one(AppEvent::GitUnbound { at: cx.now })
        }
        AppCommand::RecordGitDeploy { commit, error } => {
            if app.git.is_none() {
                return Err(CommandError::NotFound("git binding"));
            }
            match (commit, error) {
                (_, Some(error)) => one(AppEvent::GitDeployFailed {
                    commit: commit.clone(),
                    error: error.chars().take(4096).collect(),
                    at: cx.now,
                }),
                (Some(commit), None) => one(AppEvent::GitDeployed {
                    commit: commit.clone(),
                    at: cx.now,
                }),
                (None, None) => Err(CommandError::Invalid {
                    field: "commit",
                    message: "a successful deploy names its commit".into(),
                }),
            }
        }
        AppCommand::RemoveRoute { route_id } => {
            if !app.routes.contains_key(route_id) {
                return Err(CommandError::NotFound("route"));
            }
            one(AppEvent::RouteRemoved {
                route_id: route_id.clone(),
            })
        }
        AppCommand::SetMember { user_id, role } => {
            if app.members.get(user_id) == Some(role) {
                return Err(CommandError::Conflict {
                    code: "member_exists",
                    message: format!(
                        "the user is already a member with the role {}",
                        role.as_str()
                    ),
                });
            }
            one(AppEvent::MemberSet {
                user_id: user_id.clone(),
                role: *role,
                at: cx.now,
            })
        }
        AppCommand::RemoveMember { user_id } => {
            if !app.members.contains_key(user_id) {
                return Err(CommandError::NotFound("member"));
            }
            one(AppEvent::MemberRemoved {
                user_id: user_id.clone(),
                at: cx.now,
            })
        }
    }
}

fn unreachable_create() -> Result<Vec<StreamWrite>, CommandError> {
    // Handled before the app is loaded; kept total so no arm can panic.
    Err(CommandError::Conflict {
        code: "app_exists",
        message: "the app already exists".into(),
    })
}

fn app_write(app_id: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamWrite {
    StreamWrite {
        stream: stream::app(app_id),
        expected,
        events,
    }
}

fn holder<'a>(cx: &'a Context<'_>, name: &str) -> Option<&'a str> {
    cx.claims.get(name).and_then(|c| c.holder.as_deref())
}

/// Expected version for appending to a stream whose last version is `version`.
pub(crate) fn expected_after(version: u64) -> ExpectedVersion {
    if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version)
    }
}

fn invalid(e: crate::validate::ValidationError) -> CommandError {
    CommandError::Invalid {
        field: e.field,
        message: e.reason,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

fn seal(cx: &Context<'_>, purpose: &str, value: &str) -> Result<String, CommandError> {
    cx.keys
        .seal(purpose, value.as_bytes())
        .map_err(|e| CommandError::Unavailable(e.to_string()))
}

/// A secret's name: 1 to 64 of `A-Z a-z 0-9 _ - .`, starting with a letter or `_`
/// (so every environment-variable name is a valid secret name).
pub fn validate_secret_name(name: &str) -> Result<(), CommandError> {
    if picloud_sandbox::valid_secret_name(name) {
        Ok(())
    } else {
        Err(CommandError::Invalid {
            field: "name",
            message: "a secret name is 1 to 64 of A-Z a-z 0-9 _ - . starting with a letter or _"
                .into(),
        })
    }
}

/// A git remote git sync can read: an `https://` or `http://` URL without
/// credentials in it (they belong in the app secret `credentials_secret` names),
/// a `file://` URL or an absolute path on the server. ssh and anything else is
/// refused.
pub fn validate_git_url(url: &str) -> Result<(), CommandError> {
    let bad = |message: &str| {
        Err(CommandError::Invalid {
            field: "url",
            message: message.into(),
        })
    };
    if url.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_control() || c == ' ') {
        return bad(
            "a repository URL is 1 to 2048 characters without spaces or control characters",
        );
    }
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return bad(
                "credentials do not belong in the URL (it is shown by the API): put them in an app secret and name it in credentials_secret",
            );
        }
        if authority.is_empty() || authority.starts_with(':') {
            return bad("an http(s) URL needs a host");
        }
        return Ok(());
    }
    if lower.starts_with("ssh://") || lower.starts_with("git://") || url.starts_with("git@") {
        return bad(
            "ssh and git:// remotes are not supported: use an https:// URL (credentials in an app secret)",
        );
    }
    let local = url.strip_prefix("file://").unwrap_or(url);
    if url.contains("://") && !url.starts_with("file://") {
        return bad("unknown URL scheme: use https://, http://, file:// or an absolute path");
    }
    if !local.starts_with('/') {
        return bad(
            "a local repository must be an absolute path (file:///srv/repo.git or /srv/repo.git)",
        );
    }
    Ok(())
}

/// A branch name as git allows it (a simplified `git check-ref-format`).
pub fn validate_git_branch(branch: &str) -> Result<(), CommandError> {
    let ok = !branch.is_empty()
        && branch.len() <= 255
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.contains("@{")
        && !branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if ok {
        Ok(())
    } else {
        Err(CommandError::Invalid {
            field: "branch",
            message: "not a valid git branch name".into(),
        })
    }
}

/// The project folder inside the repository, relative, without `..`: `.` for
/// the root, else its components joined by `/`.
pub fn normalize_git_path(path: &str) -> Result<String, CommandError> {
    let bad = || CommandError::Invalid {
        field: "path",
        message: "a folder inside the repository: relative, without .. (\".\" for the root)".into(),
    };
    if path.len() > 1024 || path.starts_with('/') || path.contains('\\') {
        return Err(bad());
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad()),
            p if p.chars().any(char::is_control) => return Err(bad()),
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

/// A permissions manifest must parse (the message names the offending field).
fn check_manifest(manifest: Option<&serde_json::Value>) -> Result<(), CommandError> {
    match manifest {
        Some(value) => picloud_sandbox::Permissions::parse(value)
            .map(|_| ())
            .map_err(|e| CommandError::Invalid {
                field: "permissions",
                message: e.to_string(),
            }),
        None => Ok(()),
    }
}

/// A trigger's settings, checked (and a cron schedule normalised). A webhook's
/// secret arrives beside the kind, never inside it.
fn validate_trigger(kind: &TriggerKind) -> Result<TriggerKind, CommandError> {
    match kind {
        TriggerKind::Webhook { .. } => Ok(TriggerKind::Webhook {
            secret: None,
            sealed_secret: None,
        }),
        TriggerKind::Cron { schedule, timezone } => {
            let parsed = picloud_cron::Schedule::parse(schedule, timezone).map_err(|e| {
                CommandError::Invalid {
                    field: e.field(),
                    message: e.to_string(),
                }
            })?;
            Ok(TriggerKind::Cron {
                schedule: parsed.expression().to_owned(),
                timezone: timezone.clone(),
            })
        }
        TriggerKind::Event { event } => {
            let ok = !event.is_empty()
                && event.len() <= 64
                && event
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
            if !ok {
                return Err(CommandError::Invalid {
                    field: "event",
                    message: "an event name is 1 to 64 of a-z, A-Z, 0-9, _ - . :".into(),
                });
            }
            Ok(kind.clone())
        }
    }
}
