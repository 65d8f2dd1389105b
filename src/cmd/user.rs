//! `picloud user create|list|update|delete`: instance users (owners and admins).
//! A user is named by id or username.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::deploy::Output;
use crate::client::{Remote, RemoteArgs};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  picloud user create mel --role member --password 'a fine passphrase'
  picloud user list
  picloud user update mel --role admin
  picloud user update mel --disabled true
  picloud user delete mel")]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Make a user.
    Create {
        username: String,
        /// owner, admin or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// A password for dashboard login (none: tokens only).
        #[arg(long)]
        password: Option<String>,
    },
    /// List users.
    List {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Change a user's role, password or whether it is disabled.
    Update {
        /// Id or username.
        user: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        disabled: Option<bool>,
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete a user.
    Delete {
        /// Id or username.
        user: String,
    },
}

pub async fn run(args: &UserArgs) -> anyhow::Result<()> {
    let remote = Remote::resolve(&args.remote)?;
    match &args.command {
        UserCommand::Create {
            username,
            role,
            password,
        } => {
            let mut body = json!({ "username": username, "role": role });
            if let Some(p) = password {
                body["password"] = json!(p);
            }
            let u = remote.admin("POST", "/users", Some(body)).await?;
            println!("{}", u["id"].as_str().unwrap_or_default());
        }
        UserCommand::List { output } => {
            let list = remote.admin("GET", "/users", None).await?;
            if *output == Output::Json {
                println!("{list}");
                return Ok(());
            }
            for u in list["users"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}{}",
                    u["id"].as_str().unwrap_or_default(),
                    u["username"].as_str().unwrap_or_default(),
                    u["role"].as_str().unwrap_or_default(),
                    if u["disabled"] == true {
                        "\tdisabled"
                    } else {
                        ""
                    }
                );
            }
        }
        UserCommand::Update {
            user,
            role,
            disabled,
            password,
        } => {
            let id = user_id(&remote, user).await?;
            let mut body = json!({});
            if let Some(r) = role {
                body["role"] = json!(r);
            }
            if let Some(d) = disabled {
                body["disabled"] = json!(d);
            }
            if let Some(p) = password {
                body["password"] = json!(p);
            }
            if body.as_object().is_some_and(|o| o.is_empty()) {
                return Err(anyhow!(
                    "nothing to change: give --role, --disabled or --password"
                ));
            }
            remote
                .admin("PATCH", &format!("/users/{id}"), Some(body))
                .await?;
            println!("user {user} updated");
        }
        UserCommand::Delete { user } => {
            let id = user_id(&remote, user).await?;
            remote
                .admin("DELETE", &format!("/users/{id}"), None)
                .await?;
            println!("user {user} deleted");
        }
    }
    Ok(())
}

async fn user_id(remote: &Remote, user: &str) -> anyhow::Result<String> {
    let list = remote.admin("GET", "/users", None).await?;
    list["users"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["id"] == user || u["username"] == user)
        .and_then(|u: &Value| u["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow!("no user {user:?}"))
}
