//! `picloud events`: the event log, a page at a time or followed (`--follow`
//! polls for new events every second).

use clap::Args;
use serde_json::Value;

use super::deploy::Output;
use crate::client::{Remote, RemoteArgs};

pub const EXAMPLES: &str = "Examples:
  picloud events --limit 20
  picloud events --stream app-0190f6c2-… --follow
  picloud events --after 1200 --output json";

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only this stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// Only this app (slug or id).
    #[arg(long)]
    pub app: Option<String>,
    /// Start after this position.
    #[arg(long, default_value_t = 0)]
    pub after: i64,
    /// At most this many events per page (1–1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Keep waiting for new events.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// text (position, time, stream, type) or json (one event a line).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub async fn run(args: &EventsArgs) -> anyhow::Result<()> {
    let remote = Remote::resolve(&args.remote)?;
    let mut after = args.after;
    loop {
        let mut path = format!("/events?after={after}&limit={}", args.limit);
        if let Some(s) = &args.stream {
            path.push_str(&format!("&stream={s}"));
        }
        if let Some(a) = &args.app {
            path.push_str(&format!("&app={a}"));
        }
        let page = remote.admin("GET", &path, None).await?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            print_event(e, args.output);
            after = after.max(e["position"].as_i64().unwrap_or(after));
        }
        let more = !page["next"].is_null();
        if more && args.follow {
            continue;
        }
        if !args.follow {
            if more {
                eprintln!("more events: picloud events --after {after}");
            }
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn print_event(e: &Value, output: Output) {
    match output {
        Output::Json => println!("{e}"),
        Output::Text => println!(
            "{}\t{}\t{}\t{}",
            e["position"],
            e["recorded_at"].as_str().unwrap_or_default(),
            e["stream"].as_str().unwrap_or_default(),
            e["type"].as_str().unwrap_or_default()
        ),
    }
}
