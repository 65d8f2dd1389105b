//! # picloud-bench
//!
//! Measures every figure of `PERFORMANCE.md` against a baseline measured in the same
//! run, interleaved (A B A B …), and reports the median ratio, its spread and the goal:
//! a table on stdout and the same as JSON in a file. Everything it starts (PiCloud
//! nodes, the bare axum baseline, a throwaway PostgreSQL) runs on loopback and is
//! stopped before it exits. A run that errors (a non-2xx answer under load counts)
//! makes the exit status non-zero; a missed goal does not.
//!
//! # Layout
//!
//! - `settings.rs` — the command line and the scale of a run (full or `--smoke`).
//! - `report.rs` — one `Figure` per table row; the table and the JSON file.
//! - `stats.rs` — medians, percentiles and pairs of interleaved runs.
//! - `http.rs` — a keep-alive HTTP/1.1 client and the closed-loop load generator.
//! - `node.rs` — a `picloud serve` child process, its admin API and `/proc` samples.
//! - `baseline_server.rs` — the bare axum server answering the hot path's JSON.
//! - `postgres.rs` — the throwaway PostgreSQL of `ops/pg-test.sh`, one database per use.
//! - `figures.rs` + `figures/*.rs` — one file per figure group.

mod baseline_server;
mod figures;
mod http;
mod node;
mod postgres;
mod report;
mod settings;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use crate::settings::{Cli, Command, Settings};

// The same allocator as `picloud`, so that the baselines (bare axum, the in-process
// engine ceiling, plain INSERTs) and the load generator are not measured against a
// different malloc than the node.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::BaselineServer { listen }) = &cli.command {
        return match baseline_server::serve(*listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baseline server: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Two workers, like `wrk -t2`: the load generator and the in-process baselines.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("picloud-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Load {
        url,
        connections,
        seconds,
    }) = &cli.command
    {
        return match runtime.block_on(http::load_url(url, *connections, *seconds)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("picloud-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("picloud-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run the selected figures; `Ok(false)` when any of them errored.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let settings = Settings::from_cli(&cli)?;
    let selected = cli.command.unwrap_or(Command::All);
    let mut bench = figures::Bench::new(settings);
    // On Ctrl-C the figure in flight is dropped (its nodes and baselines are killed
    // on drop) and a PostgreSQL this run started is stopped before exiting.
    let rows = tokio::select! {
        rows = bench.run(&selected) => rows,
        _ = tokio::signal::ctrl_c() => {
            bench.finish();
            anyhow::bail!("interrupted; everything this run started is stopped");
        }
    };
    let report = report::Report::new(&bench.settings, &selected, rows);
    print!("{}", report.table());
    let path = report.write_json(&bench.settings.out)?;
    println!("JSON: {}", path.display());
    bench.finish();
    Ok(!report.errored())
}
