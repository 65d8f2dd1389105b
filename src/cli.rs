//! The command line: `picloud serve | migrate | replay`.

use clap::{Parser, Subcommand};

use crate::config::{ServeArgs, StoreArgs};

#[derive(Parser, Debug)]
#[command(
    name = "picloud",
    version,
    about = "Upload a Rhai script, get an HTTP endpoint."
)]
pub struct Cli {
    /// Log format: json or pretty (default: pretty on a terminal, json otherwise).
    #[arg(long, env = "PICLOUD_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node: the invocation edge and the admin API.
    Serve(ServeArgs),
    /// Apply the store's migrations and exit.
    Migrate(StoreArgs),
    /// Rebuild read models from the whole event log (all, or the one named).
    Replay(ReplayArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The read model to rebuild; all of them when absent.
    #[arg(value_parser = ["catalog", "invocations"])]
    pub projection: Option<String>,
}
