//! `picloud apps`: the apps the token can see, one a line.

use clap::Args;

use super::deploy::Output;
use crate::client::{Remote, RemoteArgs};

#[derive(Args, Debug)]
pub struct AppsArgs {
    /// text (slug, name, domains) or json (the API's answer).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub async fn run(args: &AppsArgs) -> anyhow::Result<()> {
    let remote = Remote::resolve(&args.remote)?;
    let list = remote.admin("GET", "/apps", None).await?;
    if args.output == Output::Json {
        println!("{list}");
        return Ok(());
    }
    let apps = list["apps"].as_array().cloned().unwrap_or_default();
    if apps.is_empty() {
        println!("no apps");
    }
    for app in apps {
        let domains: Vec<&str> = app["domains"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .collect();
        println!(
            "{}\t{}\t{}",
            app["slug"].as_str().unwrap_or_default(),
            app["name"].as_str().unwrap_or_default(),
            domains.join(",")
        );
    }
    Ok(())
}
