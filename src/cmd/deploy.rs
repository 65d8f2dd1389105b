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

pub const EXAMPLES: &str = "Examples:
  picloud deploy myapp --dry-run        # show the plan only
  picloud deploy myapp --yes            # apply without asking
  picloud deploy . --dry-run --exit-code   # in CI: exit 3 when the server differs
  picloud deploy . --prune --yes        # also remove what the folder no longer has";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The project folder (with picloud.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
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
    let project = Project::load(&args.dir, &env)?;
    let remote = Remote::resolve(&args.remote)?;
    let current = deploy::fetch_state(&remote, &project.slug).await?;
    let plan = deploy::plan(&project, current.as_ref(), args.prune)?;
    let json = args.output == Output::Json;
    if !json {
        print_plan(&plan, colour());
    }
    if plan.is_empty() || args.dry_run {
        if json {
            println!("{}", report(&plan, false, &[]));
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
                println!("{}", report(&plan, true, &applied));
            } else {
                println!(
                    "applied {} change{} to {}",
                    applied.len(),
                    if applied.len() == 1 { "" } else { "s" },
                    plan.app
                );
            }
            Ok(())
        }
        Err(e) => {
            if json {
                println!("{}", report(&plan, false, &e.applied));
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

fn report(plan: &Plan, applied: bool, done: &[String]) -> serde_json::Value {
    json!({
        "app": plan.app,
        "changes": plan.changes,
        "kept": plan.kept,
        "applied": applied,
        "done": done,
    })
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
