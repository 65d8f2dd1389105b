//! `picloud invoke APP/PATH` calls an endpoint as any client would (no token is
//! sent); `picloud invoke --app APP --script NAME` runs a script through the admin
//! API with a JSON payload. The answer's body goes to standard output; a status of
//! 400 or more also fails the command (exit 1).

use std::io::Write;

use anyhow::anyhow;
use clap::Args;
use serde_json::{Value, json};

use crate::client::{Remote, RemoteArgs};
use crate::deploy::AdminApi;

pub const EXAMPLES: &str = "Examples:
  picloud invoke demo/hello/world
  picloud invoke demo/orders -X POST -d '{\"id\": 7}' -H 'content-type: application/json'
  picloud invoke --app demo --script hello -d '{\"n\": 1}'";

#[derive(Args, Debug)]
pub struct InvokeArgs {
    /// APP/PATH of an endpoint, e.g. demo/hello/world.
    #[arg(required_unless_present = "script", conflicts_with = "script")]
    pub target: Option<String>,
    /// Run this script (name or id) through the admin API instead.
    #[arg(long, requires = "app")]
    pub script: Option<String>,
    /// The app of --script (slug or id).
    #[arg(long)]
    pub app: Option<String>,
    /// The HTTP method for APP/PATH.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// The request body (for --script: the JSON payload).
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// A request header `name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Print the status line and headers too.
    #[arg(long, short = 'i')]
    pub include: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub async fn run(args: &InvokeArgs) -> anyhow::Result<()> {
    let (remote, req) = match (&args.target, &args.script, &args.app) {
        (Some(target), _, _) => {
            let remote = Remote::resolve_anonymous(&args.remote)?.without_token();
            let path = format!("/{}", target.trim_start_matches('/'));
            let mut req = remote.request(&args.method, &path)?;
            for h in &args.headers {
                let (k, v) = h
                    .split_once(':')
                    .ok_or_else(|| anyhow!("--header {h:?}: expected `name: value`"))?;
                req = req.header(k.trim(), v.trim());
            }
            if let Some(body) = &args.data {
                req = req.body(body.clone());
            }
            (remote, req)
        }
        (None, Some(script), Some(app)) => {
            let remote = Remote::resolve(&args.remote)?;
            let id = script_id(&remote, app, script).await?;
            let payload: Value = match &args.data {
                None => Value::Null,
                Some(d) => serde_json::from_str(d)
                    .map_err(|e| anyhow!("--data must be JSON with --script: {e}"))?,
            };
            let req = remote
                .request("POST", &format!("/api/v1/admin/scripts/{id}/invoke"))?
                .header("content-type", "application/json")
                .body(json!({ "payload": payload }).to_string());
            (remote, req)
        }
        _ => return Err(anyhow!("give APP/PATH, or --app and --script")),
    };
    let resp = remote.send(req).await?;
    let status = resp.status();
    let mut head = String::new();
    if args.include {
        head.push_str(&format!("HTTP {status}\n"));
        for (k, v) in resp.headers() {
            head.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
        }
        head.push('\n');
    }
    let body = resp.bytes().await?;
    let mut out = std::io::stdout().lock();
    out.write_all(head.as_bytes())?;
    out.write_all(&body)?;
    if !body.ends_with(b"\n") && !body.is_empty() {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if status.as_u16() == 401 && args.script.is_some() {
        return Err(anyhow!("the server refused the token (401)"));
    }
    if status.as_u16() >= 400 {
        return Err(anyhow!("the server answered {status}"));
    }
    Ok(())
}

/// A script's id from its name (or id) in `app`.
pub async fn script_id(remote: &Remote, app: &str, script: &str) -> anyhow::Result<String> {
    let list = remote
        .call("GET", &format!("/apps/{app}/scripts"), None)
        .await?;
    list["scripts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == script || s["id"] == script)
        .and_then(|s| s["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow!("app {app} has no script {script:?}"))
}
