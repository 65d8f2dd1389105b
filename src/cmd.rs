//! The commands that talk to a server or work on a project folder, one module
//! each with the same shape: an `Args` struct (clap) and `run`.

pub mod apps;
pub mod deploy;
pub mod events;
pub mod init;
pub mod invoke;
pub mod login;
pub mod logs;
pub mod token;
pub mod user;

use std::io::IsTerminal;

use clap::Subcommand;

/// The client commands, flattened into the top-level command line.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Make a project folder: picloud.toml and scripts/hello.rhai.
    #[command(after_help = "Example:\n  picloud init myapp && picloud deploy myapp")]
    Init(init::InitArgs),
    /// Make an app on a server match a project folder: plan, confirm, apply.
    #[command(after_help = deploy::EXAMPLES)]
    Deploy(deploy::DeployArgs),
    /// Call an endpoint (APP/PATH) or run a script (--app A --script S).
    #[command(after_help = invoke::EXAMPLES)]
    Invoke(invoke::InvokeArgs),
    /// List the apps the token can see.
    #[command(after_help = "Example:\n  picloud apps --url http://127.0.0.1:8080")]
    Apps(apps::AppsArgs),
    /// Check a server URL and token and keep them in the per-user config file.
    #[command(after_help = login::EXAMPLES)]
    Login(login::LoginArgs),
    /// An app's runs and log lines: recent ones, or followed live with -f.
    #[command(after_help = logs::EXAMPLES)]
    Logs(logs::LogsArgs),
    /// Browse the event log, or follow it.
    #[command(after_help = events::EXAMPLES)]
    Events(events::EventsArgs),
    /// Create, list and revoke API tokens.
    Token(token::TokenArgs),
    /// Create, list, change and delete instance users.
    User(user::UserArgs),
}

pub async fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Init(a) => init::run(&a),
        ClientCommand::Deploy(a) => deploy::run(&a).await,
        ClientCommand::Invoke(a) => invoke::run(&a).await,
        ClientCommand::Apps(a) => apps::run(&a).await,
        ClientCommand::Login(a) => login::run(&a).await,
        ClientCommand::Logs(a) => logs::run(&a).await,
        ClientCommand::Events(a) => events::run(&a).await,
        ClientCommand::Token(a) => token::run(&a).await,
        ClientCommand::User(a) => user::run(&a).await,
    }
}

/// A command's chosen exit status other than 1, with the line to print (if any):
/// 2 for bad usage found after parsing, 3 for `deploy --dry-run --exit-code`
/// when there are changes.
#[derive(Debug, thiserror::Error)]
#[error("{}", message.as_deref().unwrap_or(""))]
pub struct Exit {
    pub code: u8,
    pub message: Option<String>,
}

/// Colour on standard output: only on a terminal, and not with `NO_COLOR` set.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in the ANSI colour `code` when `on`.
pub fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}
