//! The command line: `picloud serve | config | migrate | replay | export | import`,
//! and the client commands of [`crate::cmd`] (`init | deploy | invoke | apps | login | logs |
//! events | token | user`).

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
    #[arg(long, env = "PICLOUD_LOG_FORMAT", global = true, value_parser = ["json", "pretty"])]
    pub log_format: Option<String>,
    /// Which log lines are written: a level, or a filter such as
    /// `info,picloud_events=debug` (tracing's `EnvFilter` syntax).
    #[arg(long, env = "PICLOUD_LOG", global = true, default_value = crate::logging::DEFAULT_FILTER)]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node: the invocation edge and the admin API.
    Serve(Box<ServeArgs>),
    /// Check a configuration file, or show the settings `serve` would run with.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Apply the store's migrations and exit.
    Migrate(StoreArgs),
    /// Rebuild read models from the whole event log (all, or the one named).
    Replay(ReplayArgs),
    /// Write the whole event log to a file (JSON Lines with a checksum trailer).
    Export(ExportArgs),
    /// Load an export into a new, empty store; read models rebuild on the next start.
    Import(ImportArgs),
    #[command(flatten)]
    Client(crate::cmd::ClientCommand),
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a configuration file as `serve` would read it (with the current
    /// environment), without starting: exit 0 when it is valid, 1 with the key,
    /// file and line when it is not.
    #[command(after_help = "Example:\n  picloud config check /etc/picloud/picloud.toml")]
    Check {
        /// The TOML file.
        file: std::path::PathBuf,
    },
    /// Print the settings `serve` would run with, secrets masked, and where each
    /// came from (default, file, env or flag).
    #[command(after_help = "Example:\n  picloud config show --config /etc/picloud/picloud.toml")]
    Show {
        /// The TOML file `serve` would read.
        #[arg(long, env = "PICLOUD_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The file to write (`-` for standard output). An existing file is replaced
    /// only once the export is complete.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// An export written by `picloud export`.
    pub file: std::path::PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The read model to rebuild; all of them when absent.
    #[arg(value_parser = ["catalog", "invocations", "outbox"])]
    pub projection: Option<String>,
}
