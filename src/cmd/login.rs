//! `picloud login`: check a server URL and token, then keep them in the per-user
//! config file (mode 0600) for every later command.

use std::io::{BufRead, IsTerminal};

use anyhow::anyhow;
use clap::Args;

use crate::client::{Remote, RemoteArgs, UserConfig};
use crate::deploy::AdminApi;

pub const EXAMPLES: &str = "Examples:
  picloud login --url http://127.0.0.1:8080 --token \"$(cat picloud-data/bootstrap-token)\"
  echo \"$TOKEN\" | picloud login --url https://picloud.example.com   # token from stdin";

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub async fn run(args: &LoginArgs) -> anyhow::Result<()> {
    let saved = UserConfig::load()?;
    let url = args
        .remote
        .url
        .clone()
        .or(saved.url)
        .ok_or_else(|| anyhow!("no server: pass --url or set PICLOUD_URL"))?;
    let token = match &args.remote.token {
        Some(t) => t.clone(),
        None => {
            if std::io::stdin().is_terminal() {
                eprint!("token: ");
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    if token.is_empty() {
        return Err(anyhow!(
            "no token: pass --token, set PICLOUD_TOKEN, or give it on standard input"
        ));
    }
    let remote = Remote::new(&url, Some(&token))?;
    // 401 or no answer fails; 403 (a token without apps:read) is still a valid token.
    match remote.call("GET", "/apps", None).await {
        Ok(_) => {}
        Err(e) if e.status == Some(403) => {}
        Err(e) => return Err(e.into()),
    }
    let path = UserConfig {
        url: Some(remote.url.clone()),
        token: Some(token),
    }
    .save()?;
    println!("logged in to {}; saved in {}", remote.url, path.display());
    Ok(())
}
