//! `picloud logs`: an app's recent runs, or (`-f`) every run and log line as it
//! happens, from the server's Server-Sent Events stream, coloured by level.
//! The app defaults to the one in `./picloud.toml`.

use std::collections::HashMap;

use anyhow::anyhow;
use clap::Args;
use serde_json::Value;

use super::{colour, paint};
use crate::client::{Remote, RemoteArgs, error_message};

pub const EXAMPLES: &str = "Examples:
  picloud logs --app demo            # the last runs
  picloud logs -f --app demo         # follow runs and log lines live
  picloud logs -f --script hello     # one script of the app in ./picloud.toml";

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The app (slug or id) [default: the app of ./picloud.toml]
    #[arg(long)]
    pub app: Option<String>,
    /// Only this script (name or id).
    #[arg(long)]
    pub script: Option<String>,
    /// Follow: stream runs and their log lines until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Without -f: how many recent runs.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `--app`, else the `app` of `./picloud.toml`.
pub fn app_or_project(app: Option<&str>) -> anyhow::Result<String> {
    if let Some(app) = app {
        return Ok(app.to_owned());
    }
    let text = std::fs::read_to_string(crate::deploy::project::MANIFEST)
        .map_err(|_| anyhow!("no app: pass --app (or run this in a project folder)"))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: {}",
            crate::deploy::project::MANIFEST,
            e.message().trim()
        )
    })?;
    table
        .get("app")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no app: pass --app"))
}

pub async fn run(args: &LogsArgs) -> anyhow::Result<()> {
    let remote = Remote::resolve(&args.remote)?;
    let app = app_or_project(args.app.as_deref())?;
    let script = match &args.script {
        Some(s) => Some(super::invoke::script_id(&remote, &app, s).await?),
        None => None,
    };
    let colour = colour();
    // Runs carry script ids; show names.
    let list = remote
        .admin("GET", &format!("/apps/{app}/scripts"), None)
        .await?;
    let names: HashMap<String, String> = list["scripts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s["name"].as_str()?.to_owned())))
        .collect();
    let run_line = |inv: &Value| run_line(inv, &names, colour);
    if !args.follow {
        let mut path = format!("/apps/{app}/invocations?limit={}", args.limit);
        if let Some(s) = &script {
            path.push_str(&format!("&script={s}"));
        }
        let list = remote.admin("GET", &path, None).await?;
        for inv in list["invocations"].as_array().into_iter().flatten() {
            println!("{}", run_line(inv));
        }
        return Ok(());
    }
    let mut path = format!("/api/v1/admin/apps/{app}/logs/stream");
    if let Some(s) = &script {
        path.push_str(&format!("?script={s}"));
    }
    let req = remote
        .request("GET", &path)?
        .header("accept", "text/event-stream");
    let mut resp = remote.send(req).await?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(anyhow!(error_message(status, &body)));
    }
    eprintln!("following {app} (Ctrl-C to stop)");
    let mut buffer = String::new();
    while let Some(chunk) = resp.chunk().await? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = if e.trim() == "invocation" {
                        "invocation"
                    } else if e.trim() == "log" {
                        "log"
                    } else if e.trim() == "dropped" {
                        "dropped"
                    } else {
                        "message"
                    };
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            let Ok(value) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            match event {
                "invocation" => println!("{}", run_line(&value)),
                "log" => println!("{}", log_line(&value["line"], colour)),
                "dropped" => {
                    return Err(anyhow!(
                        "the server dropped the stream: this client fell behind"
                    ));
                }
                _ => {}
            }
        }
    }
    Err(anyhow!("the server closed the stream"))
}

fn run_line(inv: &Value, names: &HashMap<String, String>, colour: bool) -> String {
    let script = inv["script_id"].as_str().unwrap_or_default();
    let status = inv["status"].as_str().unwrap_or_default();
    let code = match status {
        "succeeded" => "32",
        "failed" | "dead" | "killed" | "timed_out" => "31",
        _ => "33",
    };
    let mut line = format!(
        "{} {} {} {} {}ms",
        inv["started_at"].as_str().unwrap_or_default(),
        paint(colour, code, status),
        names.get(script).map_or(script, String::as_str),
        inv["trigger"].as_str().unwrap_or_default(),
        inv["duration_ms"].as_u64().unwrap_or_default(),
    );
    if let Some(e) = inv["error"].as_str() {
        line.push_str(&format!(" error: {e}"));
    }
    line
}

fn log_line(line: &Value, colour: bool) -> String {
    let level = line["level"].as_str().unwrap_or("info");
    let code = match level {
        "error" => "31",
        "warn" => "33",
        "debug" => "2",
        _ => "0",
    };
    format!(
        "  {} {}",
        paint(colour, code, &format!("{level:>5}")),
        line["message"].as_str().unwrap_or_default()
    )
}
