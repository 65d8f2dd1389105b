//! The batching invocation writer: runs are recorded off the request path.
//!
//! Handlers hand a finished run's record over a bounded channel and return; one
//! task appends whatever has gathered (up to `MAX_BATCH` records, or after
//! `LINGER` once the first record of a batch arrived) in a single transaction of
//! `InvocationsRecorded` events (per app, up to `RUNS_PER_EVENT` runs each), with
//! every run's `invocations` document. A crash can
//! lose at most the records not yet flushed, never any user state. When the
//! channel is full the handler waits for room: under a load the store cannot
//! record, requests slow down rather than runs going unrecorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use picloud_events::domain::{InvocationRecord, InvocationsProjection, RUNS_PER_EVENT, stream};
use picloud_events::readmodel::EncodedDoc;
use picloud_events::{EncodedEvent, ExpectedVersion, Metadata, Store, StoreError, StreamWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const MAX_BATCH: usize = 512;
/// The event type of a group of recorded runs (`InvocationEvent::InvocationsRecorded`).
const RUNS_EVENT: &str = InvocationsProjection::RUN_RECORD;
const LINGER: Duration = Duration::from_millis(5);
/// Records queued at most (a few batches): bounds the memory and the delay of
/// a backlog; past it, handlers wait.
const CHANNEL: usize = 8_192;
/// How long a batch waits for an unreachable store before it is dropped.
const UNAVAILABLE_FOR: Duration = Duration::from_secs(300);

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
        let (writes, docs) = match encode_batch(batch.drain(..)) {
            Ok(encoded) => encoded,
            Err(e) => {
                tracing::error!(error = %e, records = count, "dropping invocation records that cannot be encoded");
                dropped.fetch_add(count, Ordering::Relaxed);
                continue;
            }
        };
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

/// A batch of finished runs as the writes that record them: per app, one
/// `runs-<app>` stream write of `InvocationsRecorded` events (a new event every
/// `RUNS_PER_EVENT` runs, or when the actor or their token changes), plus each run's
/// `invocations` document. Each record is encoded to JSON once: that text is its
/// document's body and, joined with its group's, its event's `runs`.
fn encode_batch(
    batch: impl Iterator<Item = (InvocationRecord, Metadata)>,
) -> Result<(Vec<StreamWrite<EncodedEvent>>, Vec<EncodedDoc>), StoreError> {
    let mut writes: Vec<StreamWrite<EncodedEvent>> = Vec::new();
    let mut open: Vec<Group> = Vec::new();
    let mut docs = Vec::new();
    for (record, metadata) in batch {
        let json = serde_json::to_string(&record).unwrap_or_else(|_| "{}".to_owned());
        let stream = stream::runs(&record.app_id);
        let at = match writes.iter().position(|w| w.stream == stream) {
            Some(at) => at,
            None => {
                writes.push(StreamWrite {
                    stream,
                    expected: ExpectedVersion::Any,
                    events: Vec::new(),
                });
                writes.len() - 1
            }
        };
        let filling = open.iter().position(|g| {
            g.write == at
                && g.metadata.actor == metadata.actor
                && g.metadata.token == metadata.token
                && g.runs < RUNS_PER_EVENT
        });
        let group = match filling {
            Some(i) => &mut open[i],
            None => {
                // Close this app's event in progress, if any.
                if let Some(i) = open.iter().position(|g| g.write == at) {
                    let full = open.swap_remove(i);
                    writes[full.write].events.push(full.close()?);
                }
                open.push(Group::new(
                    at,
                    Metadata {
                        actor: metadata.actor,
                        token: metadata.token,
                        node: metadata.node,
                        app: Some(record.app_id.clone()),
                        ..Metadata::default()
                    },
                ));
                let last = open.len() - 1;
                &mut open[last]
            }
        };
        group.push(&json);
        docs.push(InvocationsProjection::encoded_run_doc(&record, json));
    }
    for group in open {
        writes[group.write].events.push(group.close()?);
    }
    Ok((writes, docs))
}

/// An `InvocationsRecorded` being filled: `{"runs":[` and the records so far.
struct Group {
    write: usize,
    metadata: Metadata,
    runs: usize,
    data: String,
}

impl Group {
    fn new(write: usize, metadata: Metadata) -> Group {
        let mut data = String::with_capacity(16 * 1024);
        data.push_str(r#"{"runs":["#);
        Group {
            write,
            metadata,
            runs: 0,
            data,
        }
    }

    fn push(&mut self, record_json: &str) {
        if self.runs > 0 {
            self.data.push(',');
        }
        self.data.push_str(record_json);
        self.runs += 1;
    }

    fn close(mut self) -> Result<EncodedEvent, StoreError> {
        self.data.push_str("]}");
        EncodedEvent::new(RUNS_EVENT, self.data, &self.metadata)
    }
}

/// Append one batch with its documents (so the `invocations` projector need not
/// read these records back). A store that is unreachable (restarting, failing
/// over) is waited for, with backoff, up to `UNAVAILABLE_FOR`: meanwhile the
/// queue fills and then holds requests back, rather than records being lost.
/// Any other error is retried a few times.
async fn flush(
    store: &dyn Store,
    writes: &[StreamWrite<EncodedEvent>],
    docs: &[EncodedDoc],
) -> bool {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut waiting = false;
    let mut errors = 0;
    loop {
        match store
            .append_projected(writes, InvocationsProjection::NAME, docs)
            .await
        {
            Ok(_) => return true,
            Err(StoreError::Unavailable(e)) if started.elapsed() < UNAVAILABLE_FOR => {
                if !waiting {
                    tracing::warn!(error = %e, records = writes.len(), "recording invocations: the store is unreachable; retrying");
                }
                waiting = true;
            }
            Err(e) if errors < 5 => {
                errors += 1;
                tracing::warn!(attempt = errors, error = %e, records = writes.len(), "recording invocations failed");
            }
            Err(e) => {
                tracing::error!(error = %e, records = writes.len(), "dropping invocation records after retries");
                return false;
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use picloud_events::NewEvent;
    use picloud_events::domain::{InvocationEvent, InvocationStatus, decode, decode_new};
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

    fn by(actor: &str) -> Metadata {
        Metadata {
            actor: Some(actor.into()),
            request_id: Some("req".into()),
            node: Some("node-1".into()),
            ..Metadata::default()
        }
    }

    /// Runs grouped per app, a new event when one is full or the actor
    /// changes, every run in order and with its document.
    #[test]
    fn a_batch_is_one_stream_write_per_app_of_events_of_runs() {
        let mut batch = Vec::new();
        for i in 0..(RUNS_PER_EVENT + 2) {
            batch.push((run(i), by("http")));
        }
        let mut other = run(500);
        other.app_id = "app-2".into();
        batch.insert(3, (other, by("http")));
        batch.push((run(600), by("user:u1")));
        let with_token = Metadata {
            token: Some("token:t2".into()),
            ..by("user:u1")
        };
        batch.push((run(601), with_token.clone()));
        batch.push((run(602), with_token));
        let ids: Vec<String> = batch.iter().map(|(r, _)| r.id.clone()).collect();

        let (writes, docs) = encode_batch(batch.into_iter()).expect("encode");
        assert_eq!(
            docs.iter().map(|d| d.key.clone()).collect::<Vec<_>>(),
            ids,
            "one document per run, in order"
        );
        let streams: Vec<&str> = writes.iter().map(|w| w.stream.as_str()).collect();
        assert_eq!(streams, ["runs-app-1", "runs-app-2"]);
        // Decoded as a reader would: the JSON text parsed back.
        let parsed = |event: &EncodedEvent| -> NewEvent {
            NewEvent::new(
                event.event_type.clone(),
                serde_json::from_str(&event.data).expect("data is JSON"),
                serde_json::from_str(&event.metadata).expect("metadata is JSON"),
            )
        };
        let runs_of = |event: &EncodedEvent| -> Vec<String> {
            match decode_new::<InvocationEvent>(&parsed(event)) {
                Some(InvocationEvent::InvocationsRecorded { runs }) => {
                    runs.into_iter().map(|r| r.id).collect()
                }
                other => panic!("not a group of runs: {other:?}"),
            }
        };
        type Group = (Vec<String>, Option<String>, Option<String>);
        let app1: Vec<Group> = writes[0]
            .events
            .iter()
            .map(|e| {
                let metadata = parsed(e).metadata;
                (runs_of(e), metadata.actor, metadata.token)
            })
            .collect();
        assert_eq!(
            app1.len(),
            4,
            "full at RUNS_PER_EVENT, then a new actor, then a new token"
        );
        assert_eq!(app1[0].0.len(), RUNS_PER_EVENT);
        assert_eq!(app1[0].0[0], "run-0");
        assert_eq!(app1[1].0, ["run-64", "run-65"]);
        assert_eq!(
            app1[2],
            (vec!["run-600".to_owned()], Some("user:u1".into()), None)
        );
        assert_eq!(
            app1[3],
            (
                vec!["run-601".to_owned(), "run-602".to_owned()],
                Some("user:u1".into()),
                Some("token:t2".into())
            )
        );
        assert_eq!(runs_of(&writes[1].events[0]), ["run-500"]);
        // A run's document body is its record as the event holds it.
        let data = parsed(&writes[0].events[0]).data;
        let body: serde_json::Value = serde_json::from_str(&docs[0].body).expect("JSON");
        assert_eq!(body, data["runs"][0]);
        assert_eq!(body["id"], "run-0");
        for write in &writes {
            assert_eq!(write.expected, ExpectedVersion::Any);
            for event in &write.events {
                assert_eq!(event.event_type, "InvocationsRecorded");
                let metadata = parsed(event).metadata;
                // A group's metadata names no single request (each record does).
                assert_eq!(metadata.request_id, None);
                assert_eq!(metadata.node.as_deref(), Some("node-1"));
                assert_eq!(metadata.app.as_deref(), write.stream.strip_prefix("runs-"));
                // The indexed columns follow the metadata.
                assert_eq!((&event.app, &event.actor), (&metadata.app, &metadata.actor));
            }
        }
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
        // Every run in exactly one `InvocationsRecorded`, none twice.
        let events = store.read_all(0, 10_000).await.expect("read_all").events;
        let mut ids = std::collections::HashSet::new();
        for event in &events {
            assert_eq!(event.stream, "runs-app-1");
            let Some(InvocationEvent::InvocationsRecorded { runs }) = decode(event) else {
                panic!("not a group of runs: {}", event.event_type);
            };
            assert!(!runs.is_empty() && runs.len() <= RUNS_PER_EVENT);
            for record in runs {
                assert!(ids.insert(record.id.clone()), "{} twice", record.id);
            }
        }
        assert_eq!(ids.len(), 2000);
        assert!(events.len() < 2000, "runs share events: {}", events.len());
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
