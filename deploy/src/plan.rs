//! The plan: a pure function from the desired state (a [`Project`]) and the
//! server's state ([`ServerState`]) to an ordered list of changes.
//!
//! Matching rules (the admin API keeps no name on routes or triggers):
//! - scripts by name; a script's kind cannot change (the API has no way to);
//! - routes by (method, normalised path); a different script is a replacement;
//! - triggers by (kind, script, what fires them: schedule + zone, event name, or
//!   whether a webhook is signed); a trigger of the folder and one of the server
//!   with the same kind and script that match nothing else are paired and shown
//!   as one change (`~ cron nightly: schedule "…" → "…"`), applied as a new
//!   trigger and the old one deleted (a webhook's URL changes with it).
//!
//! The order of [`Plan::changes`] is the order they are applied in, chosen so that
//! no route or trigger ever points at a script that is not there: the app and its
//! domains, modules, endpoints, trigger switches, route removals and
//! replacements, new routes, trigger removals, replacements and additions, then
//! (with `--prune`) scripts and domains the folder no longer has.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::diff;
use super::project::{DesiredTrigger, Project, TriggerSpec};

/// An app as the server has it.
#[derive(Clone, Debug, Default)]
pub struct ServerState {
    pub app_id: String,
    pub name: String,
    pub domains: Vec<String>,
    pub scripts: Vec<ServerScript>,
    pub routes: Vec<ServerRoute>,
    pub triggers: Vec<ServerTrigger>,
}

#[derive(Clone, Debug)]
pub struct ServerScript {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub source: String,
    pub sandbox: Value,
    pub permissions: Option<Value>,
}

#[derive(Clone, Debug)]
pub struct ServerRoute {
    pub id: String,
    pub method: String,
    pub path: String,
    pub script_id: String,
}

#[derive(Clone, Debug)]
pub struct ServerTrigger {
    pub id: String,
    pub script_id: String,
    pub spec: TriggerSpec,
    pub max_attempts: u32,
    pub enabled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Change,
    Remove,
}

impl Op {
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Change => '~',
            Op::Remove => '-',
        }
    }
}

/// One change: what the plan shows, and what applying it does.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub op: Op,
    /// `app`, `domain`, `script`, `route`, `cron`, `webhook` or `event`.
    pub kind: &'static str,
    pub name: String,
    /// Shown after the name: ` (3 lines changed)`, `: schedule "a" → "b"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// A script's unified source diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip)]
    pub action: Action,
}

impl Change {
    /// `+ script hello`, `~ script api (3 lines changed)`, `- route GET /old`.
    pub fn line(&self) -> String {
        format!(
            "{} {} {}{}",
            self.op.symbol(),
            self.kind,
            self.name,
            self.detail
        )
    }
}

/// What applying a change does through the admin API.
#[derive(Clone, Debug)]
pub enum Action {
    CreateApp {
        name: Option<String>,
    },
    RenameApp {
        name: String,
    },
    AddDomain {
        domain: String,
    },
    RemoveDomain {
        domain: String,
    },
    CreateScript {
        name: String,
        kind: String,
        source: String,
        sandbox: Value,
        permissions: Option<Value>,
    },
    UpdateScript {
        id: String,
        source: Option<String>,
        sandbox: Option<Value>,
        /// `Some(None)` removes the manifest.
        permissions: Option<Option<Value>>,
    },
    DeleteScript {
        id: String,
    },
    AddRoute {
        method: String,
        path: String,
        script: String,
    },
    RemoveRoute {
        id: String,
    },
    ReplaceRoute {
        id: String,
        method: String,
        path: String,
        script: String,
    },
    CreateTrigger {
        trigger: DesiredTrigger,
    },
    ReplaceTrigger {
        id: String,
        trigger: DesiredTrigger,
    },
    SetTriggerEnabled {
        id: String,
        enabled: bool,
    },
    DeleteTrigger {
        id: String,
    },
}

/// The changes that make the server match the folder, in apply order.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub app: String,
    pub changes: Vec<Change>,
    /// Objects on the server the folder lacks, left alone without `--prune`.
    pub kept: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// Every bucket of changes, in apply order.
#[derive(Default)]
struct Buckets {
    app: Vec<Change>,
    domains_added: Vec<Change>,
    modules: Vec<Change>,
    endpoints: Vec<Change>,
    switches: Vec<Change>,
    routes_removed: Vec<Change>,
    routes_added: Vec<Change>,
    triggers_removed: Vec<Change>,
    triggers_added: Vec<Change>,
    scripts_removed: Vec<Change>,
    domains_removed: Vec<Change>,
}

fn change(op: Op, kind: &'static str, name: impl Into<String>, action: Action) -> Change {
    Change {
        op,
        kind,
        name: name.into(),
        detail: String::new(),
        diff: None,
        action,
    }
}

/// Plan `desired` against `current` (`None`: the app does not exist yet).
pub fn plan(
    desired: &Project,
    current: Option<&ServerState>,
    prune: bool,
) -> Result<Plan, PlanError> {
    let empty = ServerState::default();
    let mut b = Buckets::default();
    let mut kept = Vec::new();
    let cur = match current {
        Some(c) => {
            if let Some(name) = &desired.name
                && *name != c.name
            {
                let mut rename = change(
                    Op::Change,
                    "app",
                    &desired.slug,
                    Action::RenameApp { name: name.clone() },
                );
                rename.detail = format!(": name {:?} → {name:?}", c.name);
                b.app.push(rename);
            }
            c
        }
        None => {
            b.app.push(change(
                Op::Add,
                "app",
                &desired.slug,
                Action::CreateApp {
                    name: desired.name.clone(),
                },
            ));
            &empty
        }
    };

    for d in &desired.domains {
        if !cur.domains.contains(d) {
            b.domains_added.push(change(
                Op::Add,
                "domain",
                d,
                Action::AddDomain { domain: d.clone() },
            ));
        }
    }
    for d in cur.domains.iter().filter(|d| !desired.domains.contains(d)) {
        removal(
            prune,
            &mut kept,
            &mut b.domains_removed,
            change(
                Op::Remove,
                "domain",
                d,
                Action::RemoveDomain { domain: d.clone() },
            ),
        );
    }

    plan_scripts(desired, cur, prune, &mut b, &mut kept)?;
    let names: HashMap<&str, &str> = cur
        .scripts
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    let name_of = |id: &str| names.get(id).copied().unwrap_or(id).to_owned();
    plan_routes(desired, cur, prune, &name_of, &mut b, &mut kept);
    plan_triggers(desired, cur, prune, &name_of, &mut b, &mut kept);

    let changes = [
        b.app,
        b.domains_added,
        b.modules,
        b.endpoints,
        b.switches,
        b.routes_removed,
        b.routes_added,
        b.triggers_removed,
        b.triggers_added,
        b.scripts_removed,
        b.domains_removed,
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(Plan {
        app: desired.slug.clone(),
        changes,
        kept,
    })
}

/// A removal goes in the plan with `--prune`, else in the list of what is kept.
fn removal(prune: bool, kept: &mut Vec<String>, bucket: &mut Vec<Change>, c: Change) {
    if prune {
        bucket.push(c);
    } else {
        kept.push(format!("{} {}", c.kind, c.name));
    }
}

fn plan_scripts(
    desired: &Project,
    cur: &ServerState,
    prune: bool,
    b: &mut Buckets,
    kept: &mut Vec<String>,
) -> Result<(), PlanError> {
    for d in desired.scripts.values() {
        let bucket = if d.kind == "module" {
            &mut b.modules
        } else {
            &mut b.endpoints
        };
        let Some(s) = cur.scripts.iter().find(|s| s.name == d.name) else {
            let mut c = change(
                Op::Add,
                "script",
                &d.name,
                Action::CreateScript {
                    name: d.name.clone(),
                    kind: d.kind.clone(),
                    source: d.source.clone(),
                    sandbox: d.sandbox.clone(),
                    permissions: d.permissions.clone(),
                },
            );
            if d.kind == "module" {
                c.detail = " (module)".into();
            }
            bucket.push(c);
            continue;
        };
        if s.kind != d.kind {
            return Err(PlanError(format!(
                "{}: the script \"{}\" is an {} on the server and a {} in the folder; \
                 a script's kind cannot change (rename the file to make a new script)",
                d.file.display(),
                d.name,
                s.kind,
                d.kind
            )));
        }
        let source_changed = s.source != d.source;
        let sandbox_changed = !same_object(&s.sandbox, &d.sandbox);
        let permissions_changed = s.permissions != d.permissions;
        if !(source_changed || sandbox_changed || permissions_changed) {
            continue;
        }
        let mut what = Vec::new();
        let mut diff_text = None;
        if source_changed {
            let (text, n) = diff::unified(&s.source, &d.source);
            what.push(format!("{n} line{} changed", if n == 1 { "" } else { "s" }));
            diff_text = Some(text);
        }
        if sandbox_changed {
            what.push("sandbox".into());
        }
        if permissions_changed {
            what.push("permissions".into());
        }
        let mut c = change(
            Op::Change,
            "script",
            &d.name,
            Action::UpdateScript {
                id: s.id.clone(),
                source: source_changed.then(|| d.source.clone()),
                sandbox: sandbox_changed.then(|| d.sandbox.clone()),
                permissions: permissions_changed.then(|| d.permissions.clone()),
            },
        );
        c.detail = format!(" ({})", what.join(", "));
        c.diff = diff_text;
        bucket.push(c);
    }
    for s in cur
        .scripts
        .iter()
        .filter(|s| !desired.scripts.contains_key(&s.name))
    {
        removal(
            prune,
            kept,
            &mut b.scripts_removed,
            change(
                Op::Remove,
                "script",
                &s.name,
                Action::DeleteScript { id: s.id.clone() },
            ),
        );
    }
    Ok(())
}

/// Sandbox overrides compare as objects, `null` and `{}` alike.
fn same_object(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| match v {
        Value::Null => Value::Object(Default::default()),
        other => other.clone(),
    };
    norm(a) == norm(b)
}

fn plan_routes(
    desired: &Project,
    cur: &ServerState,
    prune: bool,
    name_of: &dyn Fn(&str) -> String,
    b: &mut Buckets,
    kept: &mut Vec<String>,
) {
    for d in &desired.routes {
        let label = format!("{} {}", d.method, d.path);
        match cur
            .routes
            .iter()
            .find(|r| r.method == d.method && r.path == d.path)
        {
            None => b.routes_added.push(change(
                Op::Add,
                "route",
                label,
                Action::AddRoute {
                    method: d.method.clone(),
                    path: d.path.clone(),
                    script: d.script.clone(),
                },
            )),
            Some(r) if name_of(&r.script_id) != d.script => {
                let mut c = change(
                    Op::Change,
                    "route",
                    label,
                    Action::ReplaceRoute {
                        id: r.id.clone(),
                        method: d.method.clone(),
                        path: d.path.clone(),
                        script: d.script.clone(),
                    },
                );
                c.detail = format!(": script {} → {}", name_of(&r.script_id), d.script);
                b.routes_removed.push(c);
            }
            Some(_) => {}
        }
    }
    for r in cur.routes.iter().filter(|r| {
        !desired
            .routes
            .iter()
            .any(|d| d.method == r.method && d.path == r.path)
    }) {
        removal(
            prune,
            kept,
            &mut b.routes_removed,
            change(
                Op::Remove,
                "route",
                format!("{} {}", r.method, r.path),
                Action::RemoveRoute { id: r.id.clone() },
            ),
        );
    }
}

/// How a server trigger is named in a plan.
fn server_label(t: &ServerTrigger, script: &str) -> String {
    match &t.spec {
        TriggerSpec::Cron { schedule, .. } => format!("{script} \"{schedule}\""),
        TriggerSpec::Webhook { .. } => format!("{script} /hooks/{}", t.id),
        TriggerSpec::Event { event } => format!("{script} on \"{event}\""),
    }
}

/// The server's trigger `t` replaced by the folder's `d` (a trigger cannot be
/// edited in place), saying which fields differ.
fn replace_trigger(t: &ServerTrigger, d: &DesiredTrigger) -> Change {
    let mut c = change(
        Op::Change,
        d.spec.kind(),
        &d.label,
        Action::ReplaceTrigger {
            id: t.id.clone(),
            trigger: d.clone(),
        },
    );
    c.detail = format!(": {}", trigger_fields(t, d).join(", "));
    c
}

/// What differs between a server trigger and the folder's: `field "a" → "b"`.
fn trigger_fields(t: &ServerTrigger, d: &DesiredTrigger) -> Vec<String> {
    let mut out = Vec::new();
    match (&t.spec, &d.spec) {
        (
            TriggerSpec::Cron { schedule, timezone },
            TriggerSpec::Cron {
                schedule: s2,
                timezone: z2,
            },
        ) => {
            if schedule != s2 {
                out.push(format!("schedule {schedule:?} → {s2:?}"));
            }
            if timezone != z2 {
                out.push(format!("timezone {timezone:?} → {z2:?}"));
            }
        }
        (TriggerSpec::Webhook { signed }, TriggerSpec::Webhook { signed: s2 }) if signed != s2 => {
            out.push(format!("signed {signed} → {s2} (new URL)"));
        }
        (TriggerSpec::Event { event }, TriggerSpec::Event { event: e2 }) if event != e2 => {
            out.push(format!("event {event:?} → {e2:?}"));
        }
        _ => {}
    }
    if t.max_attempts != d.max_attempts {
        out.push(format!(
            "max_attempts {} → {}",
            t.max_attempts, d.max_attempts
        ));
    }
    out
}

fn plan_triggers(
    desired: &Project,
    cur: &ServerState,
    prune: bool,
    name_of: &dyn Fn(&str) -> String,
    b: &mut Buckets,
    kept: &mut Vec<String>,
) {
    let mut unmatched_server: Vec<&ServerTrigger> = cur.triggers.iter().collect();
    let mut unmatched_desired: Vec<&DesiredTrigger> = Vec::new();
    // Exact matches first: same kind, script and spec (max_attempts aside).
    for d in &desired.triggers {
        let found = unmatched_server
            .iter()
            .position(|t| name_of(&t.script_id) == d.script && t.spec == d.spec);
        match found {
            Some(i) => {
                let t = unmatched_server.remove(i);
                if t.max_attempts != d.max_attempts {
                    b.triggers_added.push(replace_trigger(t, d));
                } else if t.enabled != d.enabled {
                    let mut c = change(
                        Op::Change,
                        d.spec.kind(),
                        &d.label,
                        Action::SetTriggerEnabled {
                            id: t.id.clone(),
                            enabled: d.enabled,
                        },
                    );
                    c.detail = format!(": enabled {} → {}", t.enabled, d.enabled);
                    b.switches.push(c);
                }
            }
            None => unmatched_desired.push(d),
        }
    }
    // Then pairs of the same kind and script: one trigger changed.
    let mut by_group: BTreeMap<(&'static str, String), Vec<&ServerTrigger>> = BTreeMap::new();
    for t in &unmatched_server {
        by_group
            .entry((t.spec.kind(), name_of(&t.script_id)))
            .or_default()
            .push(t);
    }
    for d in unmatched_desired {
        let old = by_group
            .get_mut(&(d.spec.kind(), d.script.clone()))
            .and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
        match old {
            Some(t) => b.triggers_added.push(replace_trigger(t, d)),
            None => b.triggers_added.push(change(
                Op::Add,
                d.spec.kind(),
                &d.label,
                Action::CreateTrigger { trigger: d.clone() },
            )),
        }
    }
    for t in by_group.into_values().flatten() {
        removal(
            prune,
            kept,
            &mut b.triggers_removed,
            change(
                Op::Remove,
                t.spec.kind(),
                server_label(t, &name_of(&t.script_id)),
                Action::DeleteTrigger { id: t.id.clone() },
            ),
        );
    }
}

#[cfg(test)]
mod tests;
