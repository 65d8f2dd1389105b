//! `picloud token create|list|revoke`: API tokens (one's own, or with
//! `--user` another user's, as the API allows).

use clap::{Args, Subcommand};
use serde_json::json;

use super::deploy::Output;
use crate::client::{Remote, RemoteArgs};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  picloud token create ci --scope scripts:write --scope apps:read
  picloud token list
  picloud token revoke 0190f6c2-…")]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token; its value is printed once.
    Create {
        /// A name to recognise it by.
        name: String,
        /// A scope (repeatable): admin, apps:read, apps:write, scripts:write,
        /// logs:read, secrets:write, users:manage.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// When it stops working (RFC 3339).
        #[arg(long)]
        expires_at: Option<String>,
        /// Mint it for this user id (admins and owners).
        #[arg(long)]
        user: Option<String>,
    },
    /// List tokens (never their values).
    List {
        /// Another user's tokens (user id).
        #[arg(long)]
        user: Option<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

pub async fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let remote = Remote::resolve(&args.remote)?;
    match &args.command {
        TokenCommand::Create {
            name,
            scopes,
            expires_at,
            user,
        } => {
            let mut body = json!({ "name": name, "scopes": scopes });
            if let Some(at) = expires_at {
                body["expires_at"] = json!(at);
            }
            if let Some(u) = user {
                body["user_id"] = json!(u);
            }
            let created = remote.admin("POST", "/tokens", Some(body)).await?;
            eprintln!(
                "token {} created; its value is shown once:",
                created["id"].as_str().unwrap_or_default()
            );
            println!("{}", created["token"].as_str().unwrap_or_default());
        }
        TokenCommand::List { user, output } => {
            let path = match user {
                Some(u) => format!("/tokens?user_id={u}"),
                None => "/tokens".to_owned(),
            };
            let list = remote.admin("GET", &path, None).await?;
            if *output == Output::Json {
                println!("{list}");
                return Ok(());
            }
            for t in list["tokens"].as_array().into_iter().flatten() {
                let scopes: Vec<&str> = t["scopes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str())
                    .collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    t["id"].as_str().unwrap_or_default(),
                    t["name"].as_str().unwrap_or_default(),
                    scopes.join(","),
                    if t["revoked"] == true {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        TokenCommand::Revoke { id } => {
            remote
                .admin("DELETE", &format!("/tokens/{id}"), None)
                .await?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
