//! # picloud
//!
//! The binary's library: configuration, the CLI, and `run`, which wires the store,
//! the runtime (actors) and the HTTP API together and serves until shutdown.
//!
//! - `config`: the typed settings (file + environment + flags) and where each came
//!   from; `reload`: SIGHUP; `logging`: the tracing layers.
//! - `cli`: the clap command line.
//! - `cmd`: the client commands; `client`: how they reach a server; `deploy`: the
//!   deploy engine they use (the `picloud-deploy` crate).

pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod logging;
pub mod reload;
/// The deploy engine (crate `picloud-deploy`).
pub use picloud_deploy as deploy;
pub mod replay;
pub mod transfer;

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use picloud_actors::{Runtime, RuntimeConfig};
use picloud_api::{ApiConfig, ApiState};

use crate::config::StoreArgs;

/// Open the store (running migrations).
pub async fn open_store(args: &StoreArgs) -> anyhow::Result<Arc<dyn picloud_events::Store>> {
    let url = args.store_url().map_err(anyhow::Error::msg)?;
    picloud_events::open(&url)
        .await
        .with_context(|| format!("opening the store {}", args.describe()))
}

/// Warns that scripts may reach every address (at start, and when a reload turns
/// it on).
pub(crate) fn warn_allow_private() {
    tracing::warn!(
        "PICLOUD_HTTP_ALLOW_PRIVATE=1: scripts may reach private, loopback and metadata \
         addresses; never use this in production"
    );
}

/// Run a node with `settings` until `shutdown` resolves; with a `reloader`, SIGHUP
/// reloads the settings meanwhile.
pub async fn serve(
    settings: config::Settings,
    reloader: Option<reload::Reloader>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let args = settings.serve.clone();
    let http = args.http_policy().map_err(anyhow::Error::msg)?;
    let git_roots = match &args.git_ca_file {
        Some(file) => Some(
            picloud_deploy::git::http::read_roots(file)
                .map_err(|e| anyhow::anyhow!("PICLOUD_GIT_CA_FILE: {e}"))?,
        ),
        None => None,
    };
    if http.allow_private {
        warn_allow_private();
    }
    if !http.allow_cidrs.is_empty() {
        let ranges: Vec<String> = http.allow_cidrs.iter().map(ToString::to_string).collect();
        tracing::info!(ranges = %ranges.join(","), "scripts' outbound HTTP may reach these ranges");
    }
    let store = open_store(&args.store).await?;
    let mut runtime_config = RuntimeConfig {
        ceilings: args.sandbox.ceilings,
        defaults: args.sandbox.defaults,
        retry_base: Duration::from_millis(args.retry_base_ms),
        retry_max: Duration::from_millis(args.retry_max_ms),
        http,
        ..RuntimeConfig::default()
    };
    if let Some(slots) = args.slots {
        runtime_config.slots = slots;
        runtime_config.queue = slots * 64;
    }
    if let Some(queue) = args.queue {
        runtime_config.queue = queue;
    }
    runtime_config.node_id = node_id(&args.store.data_dir, &runtime_config.node_id)?;
    let configured_key = args.master_key.as_ref().map(|key| key.0.as_str());
    let (master_key, key_source) =
        picloud_actors::MasterKey::load(configured_key, &args.store.data_dir)?;
    if let picloud_actors::KeySource::Generated(path) = &key_source {
        tracing::warn!(
            file = %path.display(),
            "generated a new master key for secrets; back this file up (or set \
             PICLOUD_MASTER_KEY) — secrets cannot be read without it"
        );
    }
    runtime_config.master_key = Arc::new(master_key);
    runtime_config.master_key_source = key_source.to_string();
    let node_id = runtime_config.node_id.clone();

    if let Some(token) =
        picloud_actors::bootstrap::bootstrap(store.as_ref(), args.bootstrap_token.clone(), &node_id)
            .await
            .context("bootstrapping the owner user")?
    {
        if args.bootstrap_token.is_none() {
            let file = write_token_file(&args.store.data_dir, &token)?;
            // Printed once, on purpose: this is how the operator gets in.
            println!("owner token: {token}");
            println!("(also written to {})", file.display());
            let _ = std::io::stdout().flush();
        }
        tracing::info!("bootstrapped a new instance with the owner user");
    }

    let runtime = Runtime::start(store.clone(), runtime_config)
        .await
        .context("starting the runtime")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen / PICLOUD_LISTEN: cannot bind {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        listen = %addr,
        store = %args.store.describe(),
        node = %node_id,
        slots = runtime.executor.slots,
        "picloud {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    let state = ApiState {
        runtime: runtime.clone(),
        config: Arc::new(ApiConfig {
            body_limit: args.body_limit,
            git_roots,
        }),
    };
    let advertise = args.advertise.clone().unwrap_or_else(|| addr.to_string());
    runtime.membership.join(&advertise).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(picloud_api::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    let current = Arc::new(std::sync::Mutex::new(settings));
    let hangups = reloader.map(|r| reload::spawn(r, runtime.clone(), current.clone()));
    shutdown.await;
    if let Some(hangups) = hangups {
        hangups.abort();
    }
    let drain_seconds = current
        .lock()
        .map_or(args.drain_seconds, |s| s.serve.drain_seconds);
    drain(
        &runtime,
        server,
        stop_tx,
        Duration::from_secs(drain_seconds),
    )
    .await;
    runtime.shutdown().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Leave the cluster cleanly: turn `draining` (`/readyz` 503, no new outbox
/// work), stop accepting connections, let in-flight requests and outbox runs
/// finish until `deadline`, then hand back the leases still held (other nodes
/// run those deliveries at once) and turn `gone`.
async fn drain(
    runtime: &Runtime,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_accepting: tokio::sync::oneshot::Sender<()>,
    deadline: Duration,
) {
    tracing::info!(
        deadline_s = deadline.as_secs(),
        "draining: no new outbox work; finishing in-flight requests and runs"
    );
    runtime.begin_drain().await;
    let _ = stop_accepting.send(());
    let until = tokio::time::Instant::now() + deadline;
    match tokio::time::timeout_at(until, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error"),
        Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
        Err(_) => tracing::warn!("drain deadline passed with requests in flight; stopping anyway"),
    }
    if tokio::time::timeout_at(until, runtime.outbox_drained())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed with outbox runs in flight; handing them back");
    }
    runtime.leave().await;
}

/// Write the bootstrap token to `<data-dir>/bootstrap-token` with mode 0600.
fn write_token_file(data_dir: &Path, token: &str) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("bootstrap-token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{token}")?;
    Ok(path)
}

/// The node's id, kept in the data directory (`node-id`) so a restarted node knows
/// the outbox leases its previous run held (and can take them back at once).
/// `fresh` is the id to keep when there is none yet.
fn node_id(data_dir: &Path, fresh: &str) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Ok(id.to_owned());
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(&path, format!("{fresh}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(fresh.to_owned())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
