//! Projectors: actors that keep a read model following the log.
//!
//! - the catalog (in memory) follows with `follow_catalog`;
//! - store-backed projections (the `invocations` documents) follow with
//!   `picloud_events::projection::follow`, which stores each checkpoint with the
//!   writes it covers.
//!
//! Both sleep on the store's wake-up channel when idle. A projector whose loop
//! ends with an error stops with that error, and its supervisor restarts it.

use std::sync::Arc;
use std::time::Duration;

use picloud_events::projection::{self, Projection};
use picloud_events::{Selection, Store};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::{Catalog, CatalogSnapshot};

/// Events the catalog scans per read; it decodes only those of its streams.
const SCAN: usize = 10_000;
/// Name of the catalog's snapshot; bump the suffix when `CatalogSnapshot` changes
/// shape, so an old snapshot is ignored rather than misread.
pub const CATALOG_SNAPSHOT: &str = "catalog-v6";
/// Events applied between two catalog snapshots.
const SNAPSHOT_EVERY: i64 = 1000;
const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// After a wake-up, how long the catalog lets commits gather before it reads
/// them, unless a request waits for a position (`Catalog::wait_for`: a command's
/// read-your-writes, an admin request's sync with the cluster), which cuts the
/// wait short. Under load almost every commit is an invocation's, which the
/// catalog skips: reading once per commit, every node of a cluster spent a
/// query per commit on nothing. Another node's deploy still serves here within
/// a few milliseconds.
const SETTLE: Duration = Duration::from_millis(5);

/// Follow the log into the in-memory catalog until `shutdown` turns true.
pub async fn follow_catalog(
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), picloud_events::StoreError> {
    let mut wake = store.wakeups();
    let mut snapshot_at = catalog.position();
    loop {
        // Mark the wake-up seen before reading, so a commit that lands during the
        // read still wakes the wait below.
        wake.borrow_and_update();
        let position = catch_up_catalog(store.as_ref(), &catalog).await?;
        if position - snapshot_at >= SNAPSHOT_EVERY {
            // A failed snapshot only costs start-up time later.
            if let Err(e) = save_catalog_snapshot(store.as_ref(), &catalog).await {
                tracing::warn!(error = %e, "catalog snapshot failed");
            }
            snapshot_at = position;
        }
        let stopping = tokio::select! {
            changed = wake.changed() => changed.is_err(),
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        if !stopping {
            tokio::select! {
                _ = tokio::time::sleep(SETTLE) => {}
                _ = catalog.awaited.notified() => {}
            }
        }
        if stopping {
            // Snapshot on the way out (only this task applies events, so state and
            // position agree) to keep the next start-up short.
            if catalog.position() > snapshot_at
                && let Err(e) = save_catalog_snapshot(store.as_ref(), &catalog).await
            {
                tracing::warn!(error = %e, "catalog snapshot at shutdown failed");
            }
            return Ok(());
        }
    }
}

/// Apply everything the store can safely give, waiting briefly (bounded backoff)
/// while an open transaction holds events back.
pub async fn catch_up_catalog(
    store: &dyn Store,
    catalog: &Catalog,
) -> Result<i64, picloud_events::StoreError> {
    let mut backoff = Duration::from_millis(2);
    loop {
        let after = catalog.position();
        let read = store
            .read_selected(after, SCAN, &Selection::streams(Catalog::STREAMS))
            .await?;
        if read.reached > after {
            catalog.apply_all(&read.events, read.reached);
            backoff = Duration::from_millis(2);
            continue;
        }
        if read.pending {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        return Ok(catalog.position());
    }
}

/// Start the catalog from its latest snapshot, if there is a readable one.
pub async fn restore_catalog(
    store: &dyn Store,
    catalog: &Catalog,
) -> Result<(), picloud_events::StoreError> {
    let Some((position, bytes)) = store.load_snapshot(CATALOG_SNAPSHOT).await? else {
        return Ok(());
    };
    match picloud_events::snapshot::decode::<CatalogSnapshot>(&bytes) {
        Ok(Some(snapshot)) => {
            catalog.restore(position, snapshot);
            tracing::info!(position, "catalog restored from snapshot");
        }
        Ok(None) => tracing::info!("ignoring a catalog snapshot of an older format"),
        Err(e) => tracing::warn!(error = %e, "ignoring an unreadable catalog snapshot"),
    }
    Ok(())
}

/// Save the catalog as it is now (call from the task that applies events).
pub async fn save_catalog_snapshot(
    store: &dyn Store,
    catalog: &Catalog,
) -> Result<(), picloud_events::StoreError> {
    let (position, snapshot) = catalog.snapshot();
    let bytes = picloud_events::snapshot::encode(&snapshot)?;
    store.save_snapshot(CATALOG_SNAPSHOT, position, bytes).await
}

/// Asks a projector to rebuild its read model from the log, and reports when done.
/// Requests and completions are generation numbers, so a projector restarted by its
/// supervisor still sees a pending request.
#[derive(Clone)]
pub struct RebuildSignal {
    requested: watch::Sender<u64>,
    done: watch::Sender<Option<(u64, Result<RebuildReport, String>)>>,
}

/// What a rebuild did.
#[derive(Clone, Debug, PartialEq)]
pub struct RebuildReport {
    /// The log position the rebuilt model reached.
    pub position: i64,
    /// For the catalog: whether the rebuilt state equals the live state it replaced
    /// (it should, always; `false` means a fold is not deterministic).
    pub identical: Option<bool>,
}

impl Default for RebuildSignal {
    fn default() -> Self {
        RebuildSignal {
            requested: watch::channel(0).0,
            done: watch::channel(None).0,
        }
    }
}

impl RebuildSignal {
    /// Request a rebuild and wait for it (up to `timeout`).
    pub async fn rebuild(&self, timeout: Duration) -> Result<RebuildReport, String> {
        let mut generation = 0;
        self.requested.send_modify(|g| {
            *g += 1;
            generation = *g;
        });
        let mut done = self.done.subscribe();
        let wait = done.wait_for(|d| d.as_ref().is_some_and(|(g, _)| *g >= generation));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(d)) => match d.as_ref() {
                Some((_, result)) => result.clone(),
                None => Err("rebuild finished without a result".into()),
            },
            Ok(Err(_)) => Err("the projector is gone".into()),
            Err(_) => Err("the rebuild is still running".into()),
        }
    }

    fn finish(&self, generation: u64, result: Result<RebuildReport, String>) {
        self.done.send_replace(Some((generation, result)));
    }
}

/// Rebuild the catalog from the log into a fresh one, compare, and take it over.
pub async fn rebuild_catalog(
    store: &dyn Store,
    catalog: &Catalog,
) -> Result<RebuildReport, picloud_events::StoreError> {
    let fresh = Catalog::new();
    let mut identical = false;
    // Bring both to the same position to compare them (the log may move meanwhile).
    for _ in 0..5 {
        catch_up_catalog(store, &fresh).await?;
        catch_up_catalog(store, catalog).await?;
        if fresh.position() == catalog.position() {
            identical = fresh.snapshot() == catalog.snapshot();
            break;
        }
    }
    catalog.reload(&fresh);
    save_catalog_snapshot(store, catalog).await?;
    Ok(RebuildReport {
        position: catalog.position(),
        identical: Some(identical),
    })
}

/// Which read model a projector keeps.
#[derive(Clone)]
pub enum ReadModel {
    Catalog(Arc<Catalog>),
    Stored {
        projection: Arc<dyn Projection>,
        progress: watch::Sender<i64>,
    },
}

pub struct Projector;

pub struct ProjectorArgs {
    pub store: Arc<dyn Store>,
    pub model: ReadModel,
    pub rebuild: RebuildSignal,
}

pub enum ProjectorMsg {
    /// The follow loop ended (with the error text, if any).
    Ended(Option<String>),
}

pub struct ProjectorState {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Actor for Projector {
    type Msg = ProjectorMsg;
    type State = ProjectorState;
    type Arguments = ProjectorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ProjectorMsg>,
        args: ProjectorArgs,
    ) -> Result<ProjectorState, ActorProcessingErr> {
        let (stop, stopped) = watch::channel(false);
        let store = args.store;
        let rebuild = args.rebuild;
        let task = match args.model {
            ReadModel::Catalog(catalog) => tokio::spawn(async move {
                let mut requests = rebuild.requested.subscribe();
                let result = loop {
                    requests.borrow_and_update();
                    tokio::select! {
                        result = follow_catalog(store.clone(), catalog.clone(), stopped.clone()) => break result,
                        changed = requests.changed() => {
                            if changed.is_err() {
                                // Nobody can ask for a rebuild any more: just follow.
                                break follow_catalog(store.clone(), catalog.clone(), stopped.clone()).await;
                            }
                            let generation = *requests.borrow_and_update();
                            let result = rebuild_catalog(store.as_ref(), &catalog).await;
                            tracing::info!(ok = result.is_ok(), "catalog rebuilt from the log");
                            rebuild.finish(generation, result.map_err(|e| e.to_string()));
                        }
                    }
                };
                let _ = myself.cast(ProjectorMsg::Ended(result.err().map(|e| e.to_string())));
            }),
            ReadModel::Stored {
                projection,
                progress,
            } => tokio::spawn(async move {
                let mut requests = rebuild.requested.subscribe();
                let result = loop {
                    requests.borrow_and_update();
                    let mut stop_rx = stopped.clone();
                    let shutdown = async move {
                        let _ = stop_rx.wait_for(|stop| *stop).await;
                    };
                    tokio::select! {
                        result = projection::follow(store.clone(), projection.clone(), progress.clone(), shutdown) => break result,
                        changed = requests.changed() => {
                            if changed.is_err() {
                                let mut stop_rx = stopped.clone();
                                let shutdown = async move {
                                    let _ = stop_rx.wait_for(|stop| *stop).await;
                                };
                                break projection::follow(store.clone(), projection.clone(), progress.clone(), shutdown).await;
                            }
                            let generation = *requests.borrow_and_update();
                            let result = projection::rebuild(store.as_ref(), projection.as_ref()).await;
                            if let Ok(position) = result {
                                progress.send_replace(position);
                            }
                            tracing::info!(projection = projection.name(), ok = result.is_ok(), "projection rebuilt from the log");
                            rebuild.finish(
                                generation,
                                result
                                    .map(|position| RebuildReport { position, identical: None })
                                    .map_err(|e| e.to_string()),
                            );
                        }
                    }
                };
                let _ = myself.cast(ProjectorMsg::Ended(result.err().map(|e| e.to_string())));
            }),
        };
        Ok(ProjectorState { stop, task })
    }

    async fn handle(
        &self,
        myself: ActorRef<ProjectorMsg>,
        message: ProjectorMsg,
        _state: &mut ProjectorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProjectorMsg::Ended(Some(error)) => Err(format!("projection stopped: {error}").into()),
            ProjectorMsg::Ended(None) => {
                myself.stop(None);
                Ok(())
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ProjectorMsg>,
        state: &mut ProjectorState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.stop.send(true);
        // Let the loop finish its current batch and final snapshot, within bounds.
        if tokio::time::timeout(Duration::from_secs(5), &mut state.task)
            .await
            .is_err()
        {
            state.task.abort();
        }
        Ok(())
    }
}
