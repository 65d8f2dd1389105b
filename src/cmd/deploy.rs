//! `picloud deploy DIR`: read the folder, plan against the server, show the plan,
//! confirm, apply, and say what was done.
//!
//! Confirmation: on a terminal the command asks; without one it needs `--yes`
//! (or `--dry-run`), else it refuses with exit status 2 (bad usage) before
//! changing anything. A plan with no changes needs no confirmation.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::{Exit, colour, paint};
use crate::client::{Remote, RemoteArgs};
use crate::deploy::{self, Plan, Project};

/// PEM certificates to trust for https remotes, besides the built-in roots.
const GIT_CA_FILE: &str = "PICLOUD_GIT_CA_FILE";
/// Credentials for https remotes: a token, or `user:password`.
const GIT_CREDENTIALS: &str = "PICLOUD_GIT_CREDENTIALS";

pub const EXAMPLES: &str = "Examples:
  picloud deploy myapp --dry-run        # show the plan only
  picloud deploy myapp --yes            # apply without asking
  picloud deploy . --dry-run --exit-code   # in CI: exit 3 when the server differs
  picloud deploy . --prune --yes        # also remove what the folder no longer has
  picloud deploy . --app shop-staging --yes   # the same folder as another app
  picloud deploy . --yes --verify       # then check the server matches the folder
  picloud deploy --git file:///srv/repos/shop.git --branch main --path app --yes
  PICLOUD_GIT_CREDENTIALS=$TOKEN picloud deploy --git https://git.example.com/me/shop.git --yes";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The project folder (with picloud.toml) [default: .]
    #[arg(conflicts_with = "git")]
    pub dir: Option<PathBuf>,
    /// Deploy a folder of a git repository instead: an https:// or http:// URL
    /// (credentials from PICLOUD_GIT_CREDENTIALS, a token or user:password; extra
    /// trusted certificates from PICLOUD_GIT_CA_FILE), a file:// URL or a path.
    #[arg(long, value_name = "URL")]
    pub git: Option<String>,
    /// With --git: the branch [default: the repository's HEAD]
    #[arg(long, requires = "git")]
    pub branch: Option<String>,
    /// After applying, read the server again and fail unless it matches the folder.
    #[arg(long, conflicts_with = "dry_run")]
    pub verify: bool,
    /// Deploy to this app instead of picloud.toml's `app` (e.g. a staging copy).
    #[arg(long, value_name = "SLUG")]
    pub app: Option<String>,
    /// With --git: the project folder inside the repository [default: its root]
    #[arg(long, requires = "git", value_name = "DIR")]
    pub path: Option<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: exit with status 3 when there are changes.
    #[arg(long, requires = "dry_run")]
    pub exit_code: bool,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also remove what is on the server but not in the folder.
    #[arg(long)]
    pub prune: bool,
    /// How to print the plan and the result.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub async fn run(args: &DeployArgs) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let (mut project, checkout) = match &args.git {
        None => {
            let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
            (Project::load(&dir, &env)?, None)
        }
        Some(url) => {
            let (project, checkout) = from_git(args, url).await?;
            eprintln!(
                "{}{} at {}: {}",
                deploy::git::redact(url),
                args.branch
                    .as_deref()
                    .map(|b| format!(" {b}"))
                    .unwrap_or_default(),
                &checkout.commit[..checkout.commit.len().min(12)],
                checkout.summary
            );
            (project, Some(checkout))
        }
    };
    if let Some(app) = &args.app {
        picloud_actors::validate::validate_slug(app).map_err(|e| anyhow!("--app: {}", e.reason))?;
        project.slug = app.clone();
    }
    let remote = Remote::resolve(&args.remote)?;
    let current = deploy::fetch_state(&remote, &project.slug).await?;
    let plan = deploy::plan(&project, current.as_ref(), args.prune)?;
    let json = args.output == Output::Json;
    if !json {
        print_plan(&plan, colour());
    }
    if plan.is_empty() || args.dry_run {
        if json {
            println!("{}", report(&plan, false, &[], checkout.as_ref()));
        }
        if args.verify {
            verify(&remote, &project, args.prune, json).await?;
        }
        if args.dry_run && args.exit_code && !plan.is_empty() {
            return Err(Exit {
                code: 3,
                message: None,
            }
            .into());
        }
        return Ok(());
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Exit {
                code: 2,
                message: Some(
                    "deploy: standard input is not a terminal; pass --yes to apply (or --dry-run to only plan)"
                        .into(),
                ),
            }
            .into());
        }
        if !confirm(&plan)? {
            eprintln!("nothing changed");
            return Ok(());
        }
    }
    match deploy::apply(&remote, &plan, current.as_ref()).await {
        Ok(applied) => {
            if json {
                println!("{}", report(&plan, true, &applied, checkout.as_ref()));
            } else {
                println!(
                    "applied {} change{} to {}",
                    applied.len(),
                    if applied.len() == 1 { "" } else { "s" },
                    plan.app
                );
            }
            if args.verify {
                verify(&remote, &project, args.prune, json).await?;
            }
            Ok(())
        }
        Err(e) => {
            if json {
                println!("{}", report(&plan, false, &e.applied, checkout.as_ref()));
            } else if !e.applied.is_empty() {
                println!("applied before the failure:");
                for line in &e.applied {
                    println!("  {line}");
                }
            }
            Err(anyhow!("{e}"))
        }
    }
}

/// `--verify`: plan again against what the server now has; nothing may be left.
/// (Without `--prune` what the folder lacks is not a difference.)
async fn verify(remote: &Remote, project: &Project, prune: bool, json: bool) -> anyhow::Result<()> {
    let current = deploy::fetch_state(remote, &project.slug).await?;
    let left = deploy::plan(project, current.as_ref(), prune)?;
    match left.changes.first() {
        None => {
            if !json {
                println!("verified: {} matches the folder", project.slug);
            }
            Ok(())
        }
        Some(first) => Err(anyhow!(
            "verify: {} still differs from the folder ({} change{}, first: {})",
            project.slug,
            left.changes.len(),
            if left.changes.len() == 1 { "" } else { "s" },
            first.line()
        )),
    }
}

/// The project in a folder of a git repository (fetched first when the URL is
/// http(s): trusting the extra certificates of `PICLOUD_GIT_CA_FILE`, with the
/// credentials of `PICLOUD_GIT_CREDENTIALS` or the URL's own).
async fn from_git(
    args: &DeployArgs,
    url: &str,
) -> anyhow::Result<(Project, deploy::git::Checkout)> {
    let env = |name: &str| std::env::var(name).ok();
    let roots = match env(GIT_CA_FILE) {
        Some(file) => Some(
            deploy::git::http::read_roots(std::path::Path::new(&file))
                .map_err(|e| anyhow!("{GIT_CA_FILE}: {e}"))?,
        ),
        None => None,
    };
    let http = deploy::git::GitHttp::new(tokio::runtime::Handle::current(), roots.as_deref())
        .map_err(|e| anyhow!("{GIT_CA_FILE}: {e}"))?
        .with_credentials(
            env(GIT_CREDENTIALS).map(|value| deploy::git::Credentials::parse(&value)),
        );
    let (url, branch, path) = (url.to_owned(), args.branch.clone(), args.path.clone());
    // Messages name files inside the repository, not the temporary copy.
    let shown = format!(
        "{}:{}",
        deploy::git::redact(&url),
        path.as_deref().unwrap_or("")
    );
    tokio::task::spawn_blocking(move || {
        deploy::git::load_project(
            &url,
            branch.as_deref(),
            path.as_deref(),
            Some(&http),
            &env,
            &shown,
        )
        .map_err(|e| anyhow!("{}", e.message))
    })
    .await
    .map_err(|e| anyhow!("reading the repository: {e}"))?
}

fn report(
    plan: &Plan,
    applied: bool,
    done: &[String],
    checkout: Option<&deploy::git::Checkout>,
) -> serde_json::Value {
    let mut report = json!({
        "app": plan.app,
        "changes": plan.changes,
        "kept": plan.kept,
        "applied": applied,
        "done": done,
    });
    if let Some(c) = checkout {
        report["commit"] = json!(c.commit);
    }
    report
}

fn confirm(plan: &Plan) -> anyhow::Result<bool> {
    eprint!(
        "apply {} change{} to {}? [y/N] ",
        plan.changes.len(),
        if plan.changes.len() == 1 { "" } else { "s" },
        plan.app
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// The plan as lines, `+` green, `~` yellow, `-` red, with scripts' diffs indented.
pub fn print_plan(plan: &Plan, colour: bool) {
    if plan.is_empty() {
        println!("no changes");
    }
    for change in &plan.changes {
        let code = match change.op {
            deploy::Op::Add => "32",
            deploy::Op::Change => "33",
            deploy::Op::Remove => "31",
        };
        println!("{}", paint(colour, code, &change.line()));
        if let Some(diff) = &change.diff {
            for line in diff.lines() {
                let code = match line.chars().next() {
                    Some('+') => "32",
                    Some('-') => "31",
                    Some('@') => "36",
                    _ => "2",
                };
                println!("    {}", paint(colour, code, line));
            }
        }
    }
    if !plan.kept.is_empty() {
        println!(
            "kept (on the server, not in the folder; --prune removes): {}",
            plan.kept.join(", ")
        );
    }
}
