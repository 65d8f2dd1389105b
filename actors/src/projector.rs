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

use picloud_events::Store;
use picloud_events::projection::{self, Projection};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::{Catalog, CatalogSnapshot};

const BATCH: usize = 1000;
/// Name of the catalog's snapshot; bump the suffix when `CatalogSnapshot` changes
/// shape, so an old snapshot is ignored rather than misread.
pub const CATALOG_SNAPSHOT: &str = "catalog-v1";
/// Events applied between two catalog snapshots.
const SNAPSHOT_EVERY: i64 = 1000;
const MAX_BACKOFF: Duration = Duration::from_millis(100);

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
        let read = store.read_all(catalog.position(), BATCH).await?;
        if !read.events.is_empty() {
            catalog.apply_all(&read.events);
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
        let task = match args.model {
            ReadModel::Catalog(catalog) => tokio::spawn(async move {
                let result = follow_catalog(store, catalog, stopped).await;
                let _ = myself.cast(ProjectorMsg::Ended(result.err().map(|e| e.to_string())));
            }),
            ReadModel::Stored {
                projection,
                progress,
            } => tokio::spawn(async move {
                let mut stopped = stopped;
                let shutdown = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                let result = projection::follow(store, projection, progress, shutdown).await;
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
