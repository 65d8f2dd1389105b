//! The batching invocation writer: runs are recorded off the request path.
//!
//! Handlers hand a finished run's record over a bounded channel and return; one
//! task appends whatever has gathered (up to `MAX_BATCH` records, or after
//! `LINGER` once the first record of a batch arrived) in a single transaction of
//! `InvocationCompleted` events. A crash can lose at most the records not yet
//! flushed, never any user state. When the channel is full a record is dropped
//! and counted rather than slowing requests down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use picloud_events::domain::{InvocationEvent, InvocationRecord, encode, stream};
use picloud_events::{ExpectedVersion, Metadata, Store, StreamWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const MAX_BATCH: usize = 512;
const LINGER: Duration = Duration::from_millis(5);
const CHANNEL: usize = 65_536;

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<(InvocationRecord, Metadata)>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    pub dropped: Arc<AtomicU64>,
    pub written: Arc<AtomicU64>,
}

impl Recorder {
    /// Start the writer task. It ends after `stop` (flushing what is pending) or
    /// once every `Recorder` clone is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let written = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_loop(store, rx, stopped, written.clone()));
        (
            Recorder {
                tx,
                stop: Arc::new(stop),
                dropped: Arc::new(AtomicU64::new(0)),
                written,
            },
            task,
        )
    }

    /// Flush what is pending and end the writer task.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn record(&self, record: InvocationRecord, metadata: Metadata) {
        if self.tx.try_send((record, metadata)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(InvocationRecord, Metadata)>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    written: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
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
        let writes: Vec<StreamWrite> = batch
            .drain(..)
            .map(|(record, mut metadata)| {
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
        if flush(store.as_ref(), writes).await {
            written.fetch_add(count, Ordering::Relaxed);
        }
    }
}

/// Append one batch, retrying a few times with backoff if the store is down.
async fn flush(store: &dyn Store, writes: Vec<StreamWrite>) -> bool {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match store.append_many(writes.clone()).await {
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
