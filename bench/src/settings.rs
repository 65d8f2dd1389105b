//! The command line, and the scale of a run: the full run of `PERFORMANCE.md`, or
//! `--smoke` (tiny counts, one pair, no goal check) to prove the harness still works.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "picloud-bench",
    about = "PiCloud's benchmarks: every figure against a baseline measured in the same run"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Tiny counts, one pair per figure, no goal check: proves the harness works.
    #[arg(long, global = true)]
    pub smoke: bool,
    /// Interleaved pairs (A B) per figure; at least 3 unless --smoke.
    #[arg(long, global = true)]
    pub pairs: Option<usize>,
    /// The `picloud` binary to measure; default: the one beside this binary,
    /// built first when run through `cargo run`.
    #[arg(long, global = true, env = "PICLOUD_BENCH_BINARY")]
    pub picloud: Option<PathBuf>,
    /// Where to write the JSON results.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Every figure (the default).
    All,
    /// Hot-path throughput and latency (p50, p99) against a bare axum server.
    HotPath,
    /// Script-heavy throughput against the same AST evaluated in-process.
    ScriptHeavy,
    /// CPU ticks and wake-ups of an idle node after load.
    Idle,
    /// Resident memory idle and with 100 apps x 10 scripts.
    Memory,
    /// Time from a script's PUT to the first response served from it.
    Deploy,
    /// Event appends (1 and 8 writers, batches of 100) per backend against plain INSERTs.
    Append,
    /// Start-up replay of 100k and 1M events per backend against a raw read.
    Replay,
    /// Cron lateness and async webhook throughput (SQLite; 1 and 3 nodes on PostgreSQL).
    Triggers,
    /// Load one loopback URL (`GET`) and print req/s, p50 and p99: a tiny `wrk` for
    /// profiling a running node by hand.
    Load {
        /// `http://127.0.0.1:PORT/path`
        url: String,
        #[arg(long, short = 'c', default_value_t = 1)]
        connections: usize,
        #[arg(long, short = 'd', default_value_t = 3)]
        seconds: u64,
    },
    /// Internal: the bare axum baseline server.
    #[command(hide = true)]
    BaselineServer {
        #[arg(long)]
        listen: SocketAddr,
    },
}

impl Command {
    /// The table's name for the selection.
    pub fn label(&self) -> &'static str {
        match self {
            Command::All => "all",
            Command::HotPath => "hot-path",
            Command::ScriptHeavy => "script-heavy",
            Command::Idle => "idle",
            Command::Memory => "memory",
            Command::Deploy => "deploy",
            Command::Append => "append",
            Command::Replay => "replay",
            Command::Triggers => "triggers",
            Command::Load { .. } => "load",
            Command::BaselineServer { .. } => "baseline-server",
        }
    }
}

pub struct Settings {
    pub smoke: bool,
    pub pairs: usize,
    pub picloud: PathBuf,
    pub out: PathBuf,
    /// The repository (for `ops/pg-test.sh`).
    pub repo: PathBuf,
    /// Data directories of the nodes and SQLite files; deleted on exit.
    pub scratch: tempfile::TempDir,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
}

impl Settings {
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Settings> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("the bench crate has no parent directory")?
            .to_owned();
        let pairs = match (cli.pairs, cli.smoke) {
            (Some(n), false) if n < 3 => bail!("--pairs must be at least 3 (or use --smoke)"),
            (Some(0), true) => bail!("--pairs must be at least 1"),
            (Some(n), _) => n,
            (None, true) => 1,
            (None, false) => 3,
        };
        let picloud = match &cli.picloud {
            Some(path) => path.clone(),
            None => build_picloud()?,
        };
        if !picloud.is_file() {
            bail!(
                "no picloud binary at {} (build it with `cargo build --release -p picloud`, or pass --picloud)",
                picloud.display()
            );
        }
        let out = match &cli.out {
            Some(path) => path.clone(),
            None => {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| repo.join("target"));
                let name = if cli.smoke {
                    "results-smoke.json"
                } else {
                    "results.json"
                };
                target.join("bench").join(name)
            }
        };
        let scratch = tempfile::Builder::new()
            .prefix("picloud-bench-")
            .tempdir()
            .context("creating a scratch directory")?;
        Ok(Settings {
            smoke: cli.smoke,
            pairs,
            picloud,
            out,
            repo,
            scratch,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }

    /// `full` in a real run, `smoke` with `--smoke`.
    pub fn scale<T>(&self, full: T, smoke: T) -> T {
        if self.smoke { smoke } else { full }
    }

    /// A load or in-process run's length.
    pub fn run_time(&self, full_ms: u64) -> Duration {
        Duration::from_millis(self.scale(full_ms, 300))
    }
}

/// The `picloud` binary beside this one. Run through `cargo run`, build it first with
/// the same profile, so `cargo run --release -p picloud-bench` is the one command.
fn build_picloud() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating the bench binary")?;
    let dir = me
        .parent()
        .context("the bench binary has no directory")?
        .to_owned();
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "picloud", "--bin", "picloud"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        eprintln!("picloud-bench: building picloud ({})", profile());
        let status = cmd.status().context("running cargo build")?;
        if !status.success() {
            bail!("cargo build -p picloud failed ({status})");
        }
    }
    Ok(dir.join("picloud"))
}

/// The build profile of this binary (and so of the `picloud` it measures).
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}
