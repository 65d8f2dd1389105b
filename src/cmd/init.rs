//! `picloud init DIR`: a project folder with a commented `picloud.toml` and
//! `scripts/hello.rhai`, ready for `picloud deploy DIR`.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;

use crate::deploy::project::{MANIFEST, SCRIPTS_DIR};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The folder to make (it may exist, but not hold a picloud.toml).
    pub dir: PathBuf,
    /// The app's slug [default: the folder's name]
    #[arg(long)]
    pub app: Option<String>,
}

const HELLO: &str = r#"// GET /hello/:name → {"hello": "<name>"}
let name = ctx.params.name ?? "world";
log::info(`saying hello to ${name}`);
#{ hello: name }
"#;

fn manifest(slug: &str) -> String {
    format!(
        r#"# A PiCloud project: `picloud deploy .` makes the app on the server match
# this file and the scripts in scripts/ (every scripts/NAME.rhai is the script NAME).

app = "{slug}"                 # the app's slug: its URLs are /{slug}/…
# name = "My app"             # shown in the dashboard (default: the slug)
# domains = ["{slug}.example.com"]   # custom domains that serve the app at /

# Routes: (method or "*", path with :param and a trailing *rest) → script.
[[routes]]
method = "GET"
path = "/hello/:name"
script = "hello"

# Settings of one script; a script without a section is an endpoint with the
# platform's limits and no permissions manifest (it may use all its app may).
# [scripts.hello]
# kind = "endpoint"           # or "module" (imported by others: import "name" as m;)
# [scripts.hello.sandbox]     # per-script limits, up to the server's ceilings
# max_operations = 1000000
# timeout_ms = 2000
# [scripts.hello.permissions] # with a manifest a script may use exactly what it lists
# kv = true
# secrets = ["GH_TOKEN"]
# http = {{ allow_hosts = ["api.github.com"] }}

# Triggers. Cron: six fields, seconds first, in an IANA time zone (default UTC).
# `name` labels it in plans; a changed schedule shows as one change.
# [[triggers.cron]]
# name = "nightly"
# script = "hello"
# schedule = "0 0 3 * * *"
# timezone = "Europe/Berlin"
# max_attempts = 5

# Webhook: POST /hooks/<id>. The signing secret is read at deploy time from the
# environment variable named here; it is never written in the folder.
# [[triggers.webhook]]
# script = "hello"
# secret_env = "HELLO_WEBHOOK_SECRET"

# Event: runs when a script of the app calls events::emit("order.paid", …).
# [[triggers.event]]
# script = "hello"
# event = "order.paid"
"#
    )
}

pub fn run(args: &InitArgs) -> anyhow::Result<()> {
    let slug = match &args.app {
        Some(s) => s.clone(),
        None => default_slug(&args.dir)?,
    };
    let manifest_path = args.dir.join(MANIFEST);
    if manifest_path.exists() {
        return Err(anyhow!(
            "{} already exists; not overwriting it",
            manifest_path.display()
        ));
    }
    let scripts = args.dir.join(SCRIPTS_DIR);
    std::fs::create_dir_all(&scripts)
        .with_context(|| format!("cannot create {}", scripts.display()))?;
    let hello = scripts.join("hello.rhai");
    if !hello.exists() {
        std::fs::write(&hello, HELLO)
            .with_context(|| format!("cannot write {}", hello.display()))?;
    }
    std::fs::write(&manifest_path, manifest(&slug))
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    println!(
        "created {} and {} (app \"{slug}\")\nnext: picloud deploy {}",
        manifest_path.display(),
        hello.display(),
        args.dir.display()
    );
    Ok(())
}

/// The folder's name, lower-cased, as a DNS label.
fn default_slug(dir: &Path) -> anyhow::Result<String> {
    let base = std::path::absolute(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let slug: String = base
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug = slug.trim_matches('-').to_owned();
    if slug.is_empty() {
        return Err(anyhow!(
            "cannot make an app slug from {}; pass --app SLUG",
            dir.display()
        ));
    }
    Ok(slug)
}
