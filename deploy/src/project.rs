//! A project folder: `picloud.toml` and `scripts/*.rhai`, read and checked into the
//! desired state of one app ([`Project`]) before anything talks to a server.
//!
//! Every `scripts/NAME.rhai` is the script `NAME`; `[scripts.NAME]` only adds
//! settings (kind, sandbox overrides, permissions). Checks made here, so that a
//! broken folder fails the plan before anything is applied: the manifest's shape
//! (unknown keys refused), each script compiles with the server's engine, routes
//! parse as the server parses them, cron schedules and zones parse, triggers and
//! routes name scripts of the folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use picloud_actors::validate;
use serde::Deserialize;
use serde_json::Value;

/// The manifest's file name inside a project folder.
pub const MANIFEST: &str = "picloud.toml";
/// The folder of scripts inside a project folder.
pub const SCRIPTS_DIR: &str = "scripts";
/// Attempts of an asynchronous trigger when the manifest names none (the server's default).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Why a project folder cannot be deployed; the message names the file (and line).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProjectError(pub String);

fn err(msg: impl Into<String>) -> ProjectError {
    ProjectError(msg.into())
}

/// `picloud.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    app: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    scripts: BTreeMap<String, ScriptSettings>,
    #[serde(default)]
    routes: Vec<RouteSpec>,
    #[serde(default)]
    triggers: Triggers,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptSettings {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    sandbox: Option<toml::Table>,
    #[serde(default)]
    permissions: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Triggers {
    #[serde(default)]
    cron: Vec<CronSpec>,
    #[serde(default)]
    webhook: Vec<WebhookSpec>,
    #[serde(default)]
    event: Vec<EventSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CronSpec {
    #[serde(default)]
    name: Option<String>,
    script: String,
    schedule: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSpec {
    #[serde(default)]
    name: Option<String>,
    script: String,
    /// The environment variable holding the signing secret at deploy time
    /// (a secret is never written in the folder).
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventSpec {
    #[serde(default)]
    name: Option<String>,
    script: String,
    event: String,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    #[serde(default = "any_method")]
    method: String,
    path: String,
    script: String,
}

fn any_method() -> String {
    "GET".into()
}

/// The desired state of one app, as a folder describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub slug: String,
    pub name: Option<String>,
    pub domains: Vec<String>,
    /// By name.
    pub scripts: BTreeMap<String, DesiredScript>,
    pub routes: Vec<DesiredRoute>,
    pub triggers: Vec<DesiredTrigger>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredScript {
    pub name: String,
    /// Relative to the project folder, for messages.
    pub file: PathBuf,
    pub kind: String,
    pub source: String,
    /// The overrides as JSON (`{}` for none).
    pub sandbox: Value,
    /// The manifest, or `None` for the app's defaults.
    pub permissions: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredRoute {
    /// Upper-case, or `*`.
    pub method: String,
    /// Normalised as the server stores it.
    pub path: String,
    pub script: String,
}

/// What fires a trigger; with the script, its identity on the server.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TriggerSpec {
    Cron { schedule: String, timezone: String },
    Webhook { signed: bool },
    Event { event: String },
}

impl TriggerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            TriggerSpec::Cron { .. } => "cron",
            TriggerSpec::Webhook { .. } => "webhook",
            TriggerSpec::Event { .. } => "event",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTrigger {
    /// The plan's label (the manifest's `name`, else one made of its fields).
    pub label: String,
    pub script: String,
    pub spec: TriggerSpec,
    pub max_attempts: u32,
    pub enabled: bool,
    /// A webhook's signing secret, read from `secret_env`.
    pub secret: Option<String>,
}

impl Project {
    /// Read and check the folder `dir`. `env` looks up environment variables
    /// (webhook secrets), so tests and the server can supply their own.
    pub fn load(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Project, ProjectError> {
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| err(format!("cannot read {}: {e}", manifest_path.display())))?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| {
                let before = &text.as_bytes()[..s.start.min(text.len())];
                before.iter().filter(|b| **b == b'\n').count() + 1
            });
            let at = line.map(|l| format!(":{l}")).unwrap_or_default();
            err(format!(
                "{}{at}: {}",
                manifest_path.display(),
                e.message().trim()
            ))
        })?;
        Project::from_manifest(dir, manifest, env)
    }

    fn from_manifest(
        dir: &Path,
        m: Manifest,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Project, ProjectError> {
        // Messages name files as the user named the folder.
        let mf = dir.join(MANIFEST).display().to_string();
        let scripts = read_scripts(dir, &mf, &m.scripts)?;
        let mut routes: Vec<DesiredRoute> = Vec::new();
        for (i, r) in m.routes.iter().enumerate() {
            let at = format!("{mf}: routes[{i}]");
            let method = match picloud_actors::routing::parse_method(&r.method) {
                Ok(picloud_actors::routing::MethodMatch::Any) => "*".to_owned(),
                Ok(picloud_actors::routing::MethodMatch::Only(m)) => m,
                Err(e) => return Err(err(format!("{at}.method: {e}"))),
            };
            let path = picloud_actors::routing::RoutePattern::parse(&r.path)
                .map_err(|e| err(format!("{at}.path: {e}")))?;
            let script = endpoint(&scripts, &r.script, &at)?;
            let route = DesiredRoute {
                method,
                path: path.as_str().to_owned(),
                script,
            };
            if routes
                .iter()
                .any(|o| o.method == route.method && o.path == route.path)
            {
                return Err(err(format!(
                    "{at}: {} {} is listed twice",
                    route.method, route.path
                )));
            }
            routes.push(route);
        }
        let mut triggers = Vec::new();
        for (i, c) in m.triggers.cron.iter().enumerate() {
            let at = format!("{mf}: triggers.cron[{i}]");
            let timezone = c.timezone.clone().unwrap_or_else(|| "UTC".into());
            picloud_cron::Schedule::parse(&c.schedule, &timezone)
                .map_err(|e| err(format!("{at}: {e}")))?;
            let script = endpoint(&scripts, &c.script, &at)?;
            triggers.push(DesiredTrigger {
                label: c
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{script} \"{}\"", c.schedule)),
                script,
                spec: TriggerSpec::Cron {
                    schedule: c.schedule.clone(),
                    timezone,
                },
                max_attempts: attempts(c.max_attempts, &at)?,
                enabled: c.enabled.unwrap_or(true),
                secret: None,
            });
        }
        for (i, w) in m.triggers.webhook.iter().enumerate() {
            let at = format!("{mf}: triggers.webhook[{i}]");
            let script = endpoint(&scripts, &w.script, &at)?;
            let secret = match &w.secret_env {
                None => None,
                Some(var) => Some(env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    err(format!(
                        "{at}.secret_env: the environment variable {var} is not set"
                    ))
                })?),
            };
            triggers.push(DesiredTrigger {
                label: w.name.clone().unwrap_or_else(|| script.clone()),
                script,
                spec: TriggerSpec::Webhook {
                    signed: secret.is_some(),
                },
                max_attempts: attempts(w.max_attempts, &at)?,
                enabled: w.enabled.unwrap_or(true),
                secret,
            });
        }
        for (i, e) in m.triggers.event.iter().enumerate() {
            let at = format!("{mf}: triggers.event[{i}]");
            let script = endpoint(&scripts, &e.script, &at)?;
            if e.event.is_empty() {
                return Err(err(format!("{at}.event: must not be empty")));
            }
            triggers.push(DesiredTrigger {
                label: e
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{script} on \"{}\"", e.event)),
                script,
                spec: TriggerSpec::Event {
                    event: e.event.clone(),
                },
                max_attempts: attempts(e.max_attempts, &at)?,
                enabled: e.enabled.unwrap_or(true),
                secret: None,
            });
        }
        validate::validate_slug(&m.app).map_err(|e| err(format!("{mf}: app: {}", e.reason)))?;
        if let Some(name) = &m.name {
            validate::validate_app_name(name).map_err(|e| err(format!("{mf}: {e}")))?;
        }
        // Domains as the server stores them (lower case, no trailing dot), so an
        // unchanged list plans no change.
        let mut domains = m
            .domains
            .iter()
            .enumerate()
            .map(|(i, d)| {
                validate::normalize_domain(d)
                    .map_err(|e| err(format!("{mf}: domains[{i}]: {}", e.reason)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        domains.sort();
        domains.dedup();
        Ok(Project {
            slug: m.app,
            name: m.name,
            domains,
            scripts,
            routes,
            triggers,
        })
    }
}

fn attempts(n: Option<u32>, at: &str) -> Result<u32, ProjectError> {
    match n {
        None => Ok(DEFAULT_MAX_ATTEMPTS),
        Some(n) if (1..=25).contains(&n) => Ok(n),
        Some(_) => Err(err(format!("{at}.max_attempts: must be between 1 and 25"))),
    }
}

/// `name` must be an endpoint script of the folder.
fn endpoint(
    scripts: &BTreeMap<String, DesiredScript>,
    name: &str,
    at: &str,
) -> Result<String, ProjectError> {
    match scripts.get(name) {
        None => Err(err(format!(
            "{at}.script: no script \"{name}\" in {SCRIPTS_DIR}/"
        ))),
        Some(s) if s.kind == "module" => Err(err(format!(
            "{at}.script: \"{name}\" is a module; only an endpoint can be routed or triggered"
        ))),
        Some(s) => Ok(s.name.clone()),
    }
}

/// Every `scripts/*.rhai`, with its settings, compiled with the server's engine.
fn read_scripts(
    dir: &Path,
    mf: &str,
    settings: &BTreeMap<String, ScriptSettings>,
) -> Result<BTreeMap<String, DesiredScript>, ProjectError> {
    let scripts_dir = dir.join(SCRIPTS_DIR);
    let entries = match std::fs::read_dir(&scripts_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(name) = settings.keys().next() {
                return Err(err(format!(
                    "{mf}: [scripts.{name}]: there is no {SCRIPTS_DIR}/ folder"
                )));
            }
            return Ok(BTreeMap::new());
        }
        Err(e) => return Err(err(format!("cannot read {}: {e}", scripts_dir.display()))),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rhai") && p.is_file())
        .collect();
    files.sort();
    let sandbox = picloud_sandbox::Sandbox::new();
    let mut scripts = BTreeMap::new();
    for path in files {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        let file = Path::new(SCRIPTS_DIR).join(format!("{name}.rhai"));
        validate::validate_script_name(&name).map_err(|e| {
            err(format!(
                "{}: the file name is not a script name: it {}",
                dir.join(&file).display(),
                e.reason
            ))
        })?;
        let source = std::fs::read_to_string(&path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        if let Err(e) = sandbox.compile(&source) {
            let at = match (e.line, e.position) {
                (Some(l), Some(p)) => format!(":{l}:{p}"),
                (Some(l), None) => format!(":{l}"),
                _ => String::new(),
            };
            return Err(err(format!(
                "{}{at}: script does not compile: {}",
                dir.join(&file).display(),
                e.message
            )));
        }
        let set = settings.get(&name);
        let kind = set
            .and_then(|s| s.kind.clone())
            .unwrap_or_else(|| "endpoint".into());
        if kind != "endpoint" && kind != "module" {
            return Err(err(format!(
                "{mf}: scripts.{name}.kind: must be \"endpoint\" or \"module\", not \"{kind}\""
            )));
        }
        let sandbox_json = match set.and_then(|s| s.sandbox.as_ref()) {
            None => Value::Object(Default::default()),
            Some(t) => {
                let v = table_json(t);
                serde_json::from_value::<picloud_sandbox::Overrides>(v.clone())
                    .map_err(|e| err(format!("{mf}: scripts.{name}.sandbox: {e}")))?;
                v
            }
        };
        let permissions = match set.and_then(|s| s.permissions.as_ref()) {
            None => None,
            Some(t) => {
                let v = table_json(t);
                picloud_sandbox::Permissions::parse(&v)
                    .map_err(|e| err(format!("{mf}: scripts.{name}.permissions: {e}")))?;
                Some(v)
            }
        };
        scripts.insert(
            name.clone(),
            DesiredScript {
                name,
                file,
                kind,
                source,
                sandbox: sandbox_json,
                permissions,
            },
        );
    }
    if let Some(name) = settings.keys().find(|n| !scripts.contains_key(*n)) {
        return Err(err(format!(
            "{mf}: [scripts.{name}]: there is no {SCRIPTS_DIR}/{name}.rhai"
        )));
    }
    Ok(scripts)
}

/// A TOML table as the JSON the admin API takes.
fn table_json(t: &toml::Table) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests;
