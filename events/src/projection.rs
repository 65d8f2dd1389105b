//! Projections: read models built from the log.
//!
//! A projection is a pure decision (`apply`: which writes one event causes); this
//! module feeds it. Each batch's writes are stored together with the position of
//! the batch's last event (the projection's checkpoint) in one transaction, so a
//! crash never applies an event twice or loses one, and a re-delivered batch is
//! a no-op.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::readmodel::RowOp;
use crate::store::{Selection, Store};

/// Events per transaction when rebuilding or following.
pub const DEFAULT_BATCH: usize = 500;
/// Backoff while `read_all` reports committed events held behind an open
/// transaction: that transaction usually commits within milliseconds.
const PENDING_BACKOFF_MIN: Duration = Duration::from_millis(2);
const PENDING_BACKOFF_MAX: Duration = Duration::from_millis(100);

pub trait Projection: Send + Sync {
    /// Unique; names the checkpoint.
    fn name(&self) -> &str;
    /// The document collections this projection owns (what `reset` clears).
    fn collections(&self) -> &[&'static str];
    /// Pure: the writes one event causes.
    fn apply(&self, event: &RecordedEvent) -> Vec<RowOp>;
    /// Events of this type need nothing from a follower: their writer put their
    /// documents in the transaction that appended them
    /// (`Store::append_projected`), or they change nothing here.
    /// Following the log, the projector leaves them out without reading them.
    /// Up to the head as it was when following started (or the model was
    /// reset) they are applied like any other event: events written before
    /// their writer projected them, or whose documents a reset cleared, all lie
    /// there, and applying one twice puts the same document again.
    fn skipped_when_following(&self) -> Option<&'static str> {
        None
    }
    /// Following the log, how long to let commits gather after a wake-up before
    /// reading them: under load a read model that may trail the log by a few
    /// milliseconds then applies them in fewer, larger batches (fewer reads and
    /// transactions, on every node of a cluster). Idle, it costs nothing: the
    /// wait starts only when something was committed.
    fn settle(&self) -> Duration {
        Duration::ZERO
    }
}

/// Events scanned per step past the replay horizon (see
/// `Projection::skipped_when_following`): few of them are read.
const FOLLOW_SCAN: usize = 4 * DEFAULT_BATCH;

/// What one step of reading and applying found.
enum Step {
    /// Applied a batch; there may be more.
    Applied,
    /// Nothing more is committed.
    CaughtUp,
    /// Committed events wait behind an open transaction.
    Pending,
}

/// Apply one batch after `checkpoint`; returns the new checkpoint. Past
/// `replay_until`, the events the projection skips when following are left out.
async fn step(
    store: &dyn Store,
    projection: &dyn Projection,
    checkpoint: i64,
    batch: usize,
    replay_until: i64,
) -> Result<(i64, Step), StoreError> {
    let (events, reached, pending) = match projection.skipped_when_following() {
        Some(event_type) if checkpoint >= replay_until => {
            let read = store
                .read_selected(
                    checkpoint,
                    FOLLOW_SCAN.max(batch),
                    &Selection::except_type(event_type),
                )
                .await?;
            (read.events, read.reached, read.pending)
        }
        _ => {
            let read = store.read_all(checkpoint, batch.max(1)).await?;
            let reached = read.events.last().map_or(checkpoint, |e| e.position);
            (read.events, reached, read.pending)
        }
    };
    if reached <= checkpoint {
        let step = if pending {
            Step::Pending
        } else {
            Step::CaughtUp
        };
        return Ok((checkpoint, step));
    }
    let ops = events.iter().flat_map(|e| projection.apply(e)).collect();
    store.apply(projection.name(), ops, reached).await?;
    Ok((reached, Step::Applied))
}

/// Apply everything after the projection's checkpoint, in batches, each batch's
/// ops and new checkpoint in one `store.apply`; returns the new checkpoint. Waits
/// (briefly, with backoff) for events held behind an open transaction.
pub async fn catch_up(
    store: &dyn Store,
    projection: &dyn Projection,
    batch: usize,
) -> Result<i64, StoreError> {
    let mut checkpoint = store.checkpoint(projection.name()).await?;
    let replay_until = store.head_position().await?;
    let mut backoff = PENDING_BACKOFF_MIN;
    loop {
        let (position, found) = step(store, projection, checkpoint, batch, replay_until).await?;
        checkpoint = position;
        match found {
            Step::Applied => backoff = PENDING_BACKOFF_MIN,
            Step::CaughtUp => return Ok(checkpoint),
            Step::Pending => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(PENDING_BACKOFF_MAX);
            }
        }
    }
}

/// Reset (clear the projection's collections and its checkpoint), then catch up.
pub async fn rebuild(store: &dyn Store, projection: &dyn Projection) -> Result<i64, StoreError> {
    store
        .reset(projection.name(), projection.collections())
        .await?;
    catch_up(store, projection, DEFAULT_BATCH).await
}

/// Follow the log until `shutdown` resolves: catch up, then sleep on the store's
/// wake-up channel and catch up again. While `read_all` says `pending` it retries
/// after a short bounded backoff (that is waiting for an open transaction, not
/// idle polling); with nothing pending it only waits for a wake-up. Each new
/// checkpoint is published on `progress`.
pub async fn follow(
    store: Arc<dyn Store>,
    projection: Arc<dyn Projection>,
    progress: watch::Sender<i64>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StoreError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut wake = store.wakeups();
    let mut checkpoint = store.checkpoint(projection.name()).await?;
    progress.send_replace(checkpoint);
    let replay_until = store.head_position().await?;
    let mut backoff = PENDING_BACKOFF_MIN;
    loop {
        // Mark the current wake-up seen before reading, so a commit that lands
        // during the read still wakes the wait below.
        wake.borrow_and_update();
        let (position, found) = step(
            store.as_ref(),
            projection.as_ref(),
            checkpoint,
            DEFAULT_BATCH,
            replay_until,
        )
        .await?;
        if position != checkpoint {
            checkpoint = position;
            progress.send_replace(checkpoint);
        }
        match found {
            Step::Applied => backoff = PENDING_BACKOFF_MIN,
            Step::Pending => {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut shutdown => return Ok(()),
                }
                backoff = (backoff * 2).min(PENDING_BACKOFF_MAX);
            }
            Step::CaughtUp => {
                backoff = PENDING_BACKOFF_MIN;
                tokio::select! {
                    changed = wake.changed() => {
                        // The store is gone: nothing more will ever arrive.
                        if changed.is_err() {
                            return Ok(());
                        }
                    }
                    _ = &mut shutdown => return Ok(()),
                }
                let settle = projection.settle();
                if !settle.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(settle) => {}
                        _ = &mut shutdown => return Ok(()),
                    }
                }
            }
        }
    }
}
