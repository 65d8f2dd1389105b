//! The batching invocation writer: runs are recorded off the request path.
//!
//! Handlers hand a finished run's record over a bounded channel and return; one
//! task appends whatever has gathered (up to `MAX_BATCH` records, or after
//! `LINGER` once the first record of a batch arrived) in a single transaction of
//! `InvocationCompleted` events, with their `invocations` documents. A crash can
//! lose at most the records not yet flushed, never any user state. When the
//! channel is full the handler waits for room: under a load the store cannot
//! record, requests slow down rather than runs going unrecorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use picloud_events::domain::{
    InvocationEvent, InvocationRecord, InvocationsProjection, encode, stream,
};
use picloud_events::readmodel::Doc;
use picloud_events::{ExpectedVersion, Metadata, Store, StreamWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const MAX_BATCH: usize = 512;
const LINGER: Duration = Duration::from_millis(5);
/// Records queued at most (a few batches): bounds the memory and the delay of
/// a backlog; past it, handlers wait.
const CHANNEL: usize = 8_192;

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<(InvocationRecord, Metadata)>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    /// Records lost: refused by the store after retries, or sent after the writer stopped.
    pub dropped: Arc<AtomicU64>,
    pub written: Arc<AtomicU64>,
}

impl Recorder {
    /// Start the writer task. It ends after `stop` (flushing what is pending) or
    /// once every `Recorder` clone is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Recorder, JoinHandle<()>) {
        Recorder::with_capacity(store, CHANNEL)
    }

    /// `start` with a queue of `capacity` records.
    pub fn with_capacity(store: Arc<dyn Store>, capacity: usize) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let written = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_loop(
            store,
            rx,
            stopped,
            written.clone(),
            dropped.clone(),
        ));
        (
            Recorder {
                tx,
                stop: Arc::new(stop),
                dropped,
                written,
            },
            task,
        )
    }

    /// Flush what is pending and end the writer task.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Queue a record; waits while the queue is full (the record is queued even
    /// if the caller is dropped while it waits). A record the writer no longer
    /// takes (it has stopped) is counted in `dropped`.
    pub async fn record(&self, record: InvocationRecord, metadata: Metadata) {
        let item = match self.tx.try_send((record, metadata)) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(item)) => item,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        // The wait is its own task: a handler dropped meanwhile (its client went
        // away) does not take the record with it.
        let (tx, dropped) = (self.tx.clone(), self.dropped.clone());
        let wait = tokio::spawn(async move {
            if tx.send(item).await.is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        });
        let _ = wait.await;
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(InvocationRecord, Metadata)>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    written: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut in_flight: Option<JoinHandle<()>> = None;
    loop {
        let stopping = tokio::select! {
            item = rx.recv() => match item {
                Some(item) => {
                    batch.push(item);
                    false
                }
                None => break,
            },
            _ = stopped.wait_for(|stop| *stop) => true,
        };
        if stopping {
            // Stop accepting, then flush whatever is already queued.
            rx.close();
        }
        let first = if batch.is_empty() {
            rx.recv().await
        } else {
            batch.pop()
        };
        let Some(first) = first else {
            break;
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        let count = batch.len() as u64;
        let mut docs = Vec::with_capacity(batch.len());
        let writes: Vec<StreamWrite> = batch
            .drain(..)
            .map(|(record, mut metadata)| {
                docs.push(InvocationsProjection::run_doc(&record));
                metadata.app = Some(record.app_id.clone());
                StreamWrite {
                    stream: stream::invocation(&record.id),
                    expected: ExpectedVersion::Any,
                    events: vec![encode(
                        &InvocationEvent::InvocationCompleted(record),
                        &metadata,
                    )],
                }
            })
            .collect();
        // One flush in flight: the next batch gathers and encodes meanwhile, and
        // batches still commit in the order they were taken.
        if let Some(previous) = in_flight.take() {
            let _ = previous.await;
        }
        let (store, written, dropped) = (store.clone(), written.clone(), dropped.clone());
        in_flight = Some(tokio::spawn(async move {
            let counter = if flush(store.as_ref(), &writes, &docs).await {
                &written
            } else {
                &dropped
            };
            counter.fetch_add(count, Ordering::Relaxed);
        }));
    }
    if let Some(last) = in_flight {
        let _ = last.await;
    }
}

/// Append one batch with its documents (so the `invocations` projector need not
/// read these records back), retrying a few times with backoff if the store is down.
async fn flush(store: &dyn Store, writes: &[StreamWrite], docs: &[Doc]) -> bool {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match store
            .append_projected(writes, InvocationsProjection::NAME, docs)
            .await
        {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(attempt, error = %e, records = writes.len(), "recording invocations failed");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    tracing::error!(
        records = writes.len(),
        "dropping invocation records after retries"
    );
    false
}

#[cfg(test)]
mod tests {
    use picloud_events::domain::InvocationStatus;
    use picloud_events::store::sqlite::SqliteStore;

    use super::*;

    fn run(i: usize) -> InvocationRecord {
        crate::test_support::record(
            &format!("run-{i}"),
            "app-1",
            0.1,
            InvocationStatus::Succeeded,
        )
    }

    /// A queue far smaller than the load: handlers wait for room, and every
    /// record lands, each with its document, none dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_makes_handlers_wait_and_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("events.db"))
                .await
                .expect("open"),
        );
        let (recorder, task) = Recorder::with_capacity(store.clone(), 4);
        let handlers: Vec<_> = (0..8)
            .map(|h| {
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    for i in 0..250 {
                        recorder
                            .record(run(h * 1000 + i), Metadata::default())
                            .await;
                    }
                })
            })
            .collect();
        for handler in handlers {
            handler.await.expect("handler");
        }
        recorder.stop();
        task.await.expect("writer");
        assert_eq!(recorder.written.load(Ordering::Relaxed), 2000);
        assert_eq!(recorder.dropped.load(Ordering::Relaxed), 0);
        let head = store.head_position().await.expect("head");
        assert_eq!(head, 2000, "one event per run");
        let doc = store
            .get_doc(InvocationsProjection::COLLECTION, "run-7249")
            .await
            .expect("get_doc")
            .expect("the run's document went in with its event");
        assert_eq!(doc.body["status"], "succeeded");
        assert_eq!(doc.app.as_deref(), Some("app-1"));

        // Once the writer has stopped, a record is counted as lost.
        recorder.record(run(9999), Metadata::default()).await;
        assert_eq!(recorder.dropped.load(Ordering::Relaxed), 1);
    }
}
