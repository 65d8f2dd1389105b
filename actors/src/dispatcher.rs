//! The `Dispatcher`: one per node, it runs the asynchronous invocations of the
//! outbox (the `deliveries` rows the `outbox` projection keeps).
//!
//! It sleeps until the outbox projection moves (something was queued, retried or
//! finished), a run of its own ends (a slot is free), or the earliest row falls
//! due: never on a polling timer. Awake, it leases as many due rows as it has free
//! permits (`IN_FLIGHT_PER_SLOT` per executor slot; PostgreSQL `FOR UPDATE SKIP
//! LOCKED`, so nodes never share a row while a lease holds), and for each one
//! reads the invocation's stream, runs the script on an executor slot, and appends
//! the outcome expecting the version it claimed: `InvocationCompleted`,
//! `InvocationAttemptFailed` with the next attempt
//! time (exponential backoff with jitter), or `InvocationDead` after the last
//! allowed attempt. A node that dies leaves its leases to expire; another node (or
//! this one after a restart) claims the rows again, so delivery is at least once.
//! If two nodes both ran a delivery, the expected version lets one record it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use picloud_events::domain::codec::encode;
use picloud_events::domain::{
    InvocationEvent, InvocationRecord, InvocationRequest, InvocationState, InvocationStatus,
    QueuedRequest, stream,
};
use picloud_events::{Delivery, ExpectedVersion, Metadata, NodeState, StoreError};
use picloud_sandbox::{HttpRequest, RunInput};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::executor::SubmitError;
use crate::metrics::OutboxStage;
use crate::runtime::Runtime;

/// How long a claimed row stays leased beyond the longest it can take to run.
const LEASE_MARGIN: Duration = Duration::from_secs(60);
/// Deliveries in flight per executor slot. A delivery spends most of its time in
/// store round trips (read its stream, append its outcome: ~1 and ~2–4 ms under
/// load, against ~0.3 ms of run, per `picloud_outbox_stage_seconds_total`), not on
/// the slot. With one per slot the slots sat idle; with four, a node's throughput
/// was bound by that latency; with sixteen more outcome appends share each of the
/// link's calls (group commit): completed deliveries/s, PostgreSQL one node 1,364 →
/// 2,667, three nodes 1,030 → 1,635, SQLite 1,127 → 1,418 (BENCHMARKS.md). The
/// executor's queue (64 per slot) orders the runs.
const IN_FLIGHT_PER_SLOT: usize = 16;
/// How long a row waits when every slot is busy.
const OVERLOADED_DELAY: Duration = Duration::from_millis(250);
/// After a store error, try again after this long.
const ERROR_DELAY: Duration = Duration::from_secs(1);
/// Events of one invocation stream read at most (a request, its attempts, redrives).
const STREAM_LIMIT: usize = 10_000;
/// How long the dispatcher waits at start (and a leaving node before it hands
/// back its leases) for the outbox projection to write the rows of requests
/// this node accepted to run itself.
pub(crate) const CATCH_UP_WAIT: Duration = Duration::from_secs(30);

pub struct Dispatcher;

pub enum DispatcherMsg {
    /// The loop ended: `Some(error)` makes the supervisor restart it.
    Ended(Option<String>),
}

pub struct DispatcherState {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The deliveries a node runs at once: the rows its dispatcher claims and the
/// requests it accepted and runs at once (`Runtime::enqueue`), under one bound
/// (`IN_FLIGHT_PER_SLOT` per executor slot).
pub struct InFlight {
    permits: Arc<Semaphore>,
    capacity: usize,
    /// Notified whenever a delivery ends (a permit is back).
    finished: Arc<Notify>,
    /// Requests are run where they are accepted only once the dispatcher has
    /// taken back what this node's previous run held (see `dispatch_loop`).
    open: AtomicBool,
    /// The log position of the last request this node accepted to run itself:
    /// its outbox row (leased to this node) exists once the outbox projection
    /// has passed it.
    last_local: AtomicI64,
}

/// A delivery's hold on its permit; dropping it wakes the dispatcher.
pub struct Running {
    _permit: OwnedSemaphorePermit,
    finished: Arc<Notify>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.finished.notify_one();
    }
}

impl InFlight {
    pub fn new(slots: usize) -> InFlight {
        let capacity = slots.max(1) * IN_FLIGHT_PER_SLOT;
        InFlight {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            finished: Arc::new(Notify::new()),
            open: AtomicBool::new(false),
            last_local: AtomicI64::new(0),
        }
    }

    fn try_start(&self) -> Option<Running> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        Some(Running {
            _permit: permit,
            finished: self.finished.clone(),
        })
    }

    /// A permit for a request this node accepts and runs at once, if a slot can
    /// take it now (and the node is taking outbox work).
    pub fn start_local(&self) -> Option<Running> {
        if !self.open.load(Ordering::Acquire) {
            return None;
        }
        self.try_start()
    }

    /// Note the log position of a request accepted to run here.
    pub fn accepted_at(&self, position: i64) {
        self.last_local.fetch_max(position, Ordering::AcqRel);
    }

    /// The log position of the last request accepted to run here.
    pub fn last_local(&self) -> i64 {
        self.last_local.load(Ordering::Acquire)
    }
}

/// How long a delivery stays leased: it may wait in the executor's queue behind
/// the others in flight (at most `IN_FLIGHT_PER_SLOT` rounds of runs), then run
/// itself. From the time-limit ceiling in force (a reload may raise it).
pub fn lease_span(rt: &Runtime) -> Duration {
    Duration::from_millis(rt.limit_settings().ceilings.0.timeout_ms)
        * (IN_FLIGHT_PER_SLOT as u32 + 1)
        + LEASE_MARGIN
}

impl Actor for Dispatcher {
    type Msg = DispatcherMsg;
    type State = DispatcherState;
    type Arguments = Weak<Runtime>;

    async fn pre_start(
        &self,
        myself: ActorRef<DispatcherMsg>,
        runtime: Weak<Runtime>,
    ) -> Result<DispatcherState, ActorProcessingErr> {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            dispatch_loop(runtime, stopped).await;
            let _ = myself.cast(DispatcherMsg::Ended(None));
        });
        Ok(DispatcherState { stop, task })
    }

    async fn handle(
        &self,
        myself: ActorRef<DispatcherMsg>,
        message: DispatcherMsg,
        _state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DispatcherMsg::Ended(Some(error)) => Err(format!("dispatcher stopped: {error}").into()),
            DispatcherMsg::Ended(None) => {
                myself.stop(None);
                Ok(())
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<DispatcherMsg>,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.stop.send(true);
        // The loop waits for its runs (each bounded by the wall-clock ceiling).
        if tokio::time::timeout(Duration::from_secs(60), &mut state.task)
            .await
            .is_err()
        {
            state.task.abort();
        }
        Ok(())
    }
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

async fn dispatch_loop(runtime: Weak<Runtime>, mut stopped: watch::Receiver<bool>) {
    let (mut progress, mut leases, mut membership, idle, permits, finished, capacity) =
        match runtime.upgrade() {
            Some(rt) => (
                rt.outbox_checkpoint.clone(),
                rt.store.lease_wakeups(),
                rt.membership.watch(),
                rt.outbox_idle.clone(),
                rt.in_flight.permits.clone(),
                rt.in_flight.finished.clone(),
                rt.in_flight.capacity,
            ),
            None => return,
        };
    // A draining node takes no new outbox work.
    if *membership.borrow() != NodeState::Up {
        return;
    }
    idle.send_replace(false);
    // What this node's previous run held when it stopped (or died) is ours again:
    // once the outbox projection has written the rows of every request it
    // accepted to run itself (leased to this node), free them. Only at the
    // node's start: a dispatcher restarted by its supervisor leaves the leases
    // of the runs still going alone.
    if let Some(rt) = runtime.upgrade()
        && !rt.in_flight.open.load(Ordering::Acquire)
    {
        let head = rt.store.head_position().await.unwrap_or(0);
        let caught_up = matches!(
            tokio::time::timeout(
                CATCH_UP_WAIT,
                progress.wait_for(|checkpoint| *checkpoint >= head),
            )
            .await,
            Ok(Ok(_))
        );
        if !caught_up {
            tracing::warn!(
                head,
                "the outbox projection is behind the log; leases of this node's previous run may wait for their end"
            );
        }
        match rt.store.release_leases(&rt.config.node_id).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deliveries = n,
                "took back the leases of this node's previous run"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not take back this node's old leases; they run when they expire")
            }
        }
        rt.in_flight.open.store(true, Ordering::Release);
    }
    loop {
        if *stopped.borrow() || *membership.borrow_and_update() != NodeState::Up {
            break;
        }
        progress.borrow_and_update();
        leases.borrow_and_update();
        let next = {
            let Some(rt) = runtime.upgrade() else { break };
            match dispatch_due(&rt).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatcher: store error; retrying");
                    Some(now_micros() + ERROR_DELAY.as_micros() as i64)
                }
            }
        };
        let sleep = next.map(|at| {
            let wait = u64::try_from(at - now_micros()).unwrap_or(0);
            tokio::time::sleep(Duration::from_micros(wait))
        });
        tokio::select! {
            changed = progress.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = finished.notified() => {}
            // Another node's leases were freed (it drained, or it died and was
            // marked gone): its rows are claimable now.
            changed = leases.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = membership.changed() => {}
            _ = async {
                match sleep {
                    Some(s) => s.await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = stopped.changed() => {}
        }
    }
    // Drain: let the runs in flight record their outcome (those started where
    // they were accepted too: a draining node accepts none).
    let _ = permits.acquire_many(capacity as u32).await;
    idle.send_replace(true);
    drop(finished);
}

/// Claim and start what is due; answer when to look again (`None`: only when
/// woken).
async fn dispatch_due(rt: &Arc<Runtime>) -> Result<Option<i64>, StoreError> {
    let lease = lease_span(rt);
    loop {
        let now = now_micros();
        match rt.store.next_delivery_at().await? {
            None => return Ok(None),
            Some(at) if at > now => return Ok(Some(at)),
            Some(_) => {}
        }
        let free = rt.in_flight.permits.available_permits();
        if free == 0 {
            // A finishing run wakes the loop.
            return Ok(None);
        }
        let claiming = std::time::Instant::now();
        let claimed = rt
            .store
            .claim_deliveries(
                &rt.config.node_id,
                now,
                now + lease.as_micros() as i64,
                free,
            )
            .await?;
        rt.metrics.outbox(OutboxStage::Claim, claiming.elapsed());
        for delivery in &claimed {
            let waited = u64::try_from(now - delivery.due_at).unwrap_or(0);
            rt.metrics
                .outbox(OutboxStage::Waited, Duration::from_micros(waited));
        }
        if claimed.is_empty() {
            // Another node took them between the two queries; look again when
            // its leases end (or when woken).
            return Ok(rt.store.next_delivery_at().await?.filter(|at| *at > now));
        }
        for delivery in claimed {
            let Some(running) = rt.in_flight.try_start() else {
                // A request accepted here took the permit meanwhile: hand the
                // row back.
                rt.store
                    .postpone_delivery(&delivery.invocation_id, &rt.config.node_id, now)
                    .await?;
                continue;
            };
            let rt = rt.clone();
            tokio::spawn(async move {
                let id = delivery.invocation_id.clone();
                if let Err(e) = deliver(&rt, delivery).await {
                    tracing::warn!(invocation = %id, error = %e, "delivery not recorded; it runs again when its lease ends");
                }
                drop(running);
            });
        }
    }
}

/// `ctx.event` of an attempt: the request's event with its `idempotency_key` (the
/// same for every attempt and re-drive, for scripts that must not repeat a side
/// effect) and the attempt's number (from 1).
fn event_for(request: &InvocationRequest, attempt: u32) -> serde_json::Value {
    let mut event = request.event.clone();
    if let Some(fields) = event.as_object_mut() {
        fields.insert(
            "idempotency_key".into(),
            request.idempotency_key.clone().into(),
        );
        fields.insert("attempt".into(), attempt.into());
    }
    event
}

/// Run one claimed delivery and append its outcome.
async fn deliver(rt: &Runtime, delivery: Delivery) -> Result<(), StoreError> {
    rt.metrics.outbox_delivery();
    let stream = stream::invocation(&delivery.invocation_id);
    let mut stage = std::time::Instant::now();
    let events = rt.store.read_stream(&stream, 1, STREAM_LIMIT).await?;
    rt.metrics.outbox(OutboxStage::Read, lap(&mut stage));
    let Some(state) = InvocationState::fold(&events) else {
        tracing::warn!(invocation = %delivery.invocation_id, "outbox row without a request");
        return Ok(());
    };
    if state.version != delivery.stream_version || !state.is_pending() {
        // The row is stale (the projection is about to move it): nothing to do.
        return Ok(());
    }
    attempt(rt, &state, &stream, stage, false).await
}

/// Run, at once, a request this node accepted (`Runtime::enqueue`) — its
/// `InvocationRequested` at `version` of its stream, appended at `position` —
/// and append its outcome. No claim and no read: the request is at hand and its
/// outbox row is leased to this node. `running` is its permit.
pub fn run_accepted(rt: Arc<Runtime>, request: InvocationRequest, version: u64, running: Running) {
    rt.metrics.outbox_delivery();
    tokio::spawn(async move {
        let stream = stream::invocation(&request.id);
        let state = InvocationState {
            request,
            attempts: 0,
            status: InvocationStatus::Queued,
            version,
        };
        let stage = std::time::Instant::now();
        if let Err(e) = attempt(&rt, &state, &stream, stage, true).await {
            tracing::warn!(invocation = %state.request.id, error = %e, "delivery not recorded; it runs again when its lease ends");
        }
        drop(running);
    });
}

/// Wait until the outbox rows of the requests this node accepted to run itself
/// exist (the outbox projection passed the last; bounded), so a change to their
/// lease finds them.
pub(crate) async fn row_written(rt: &Runtime) {
    let position = rt.in_flight.last_local();
    let mut progress = rt.outbox_checkpoint.clone();
    let _ = tokio::time::timeout(
        CATCH_UP_WAIT,
        progress.wait_for(|checkpoint| *checkpoint >= position),
    )
    .await;
}

/// Run one attempt of a pending invocation and append its outcome, expecting
/// the stream at `state.version`. `accepted`: the request was accepted here and
/// its outbox row may not be written yet.
async fn attempt(
    rt: &Runtime,
    state: &InvocationState,
    stream: &str,
    mut stage: std::time::Instant,
    accepted: bool,
) -> Result<(), StoreError> {
    let request = &state.request;
    let attempt = state.attempts + 1;
    let metadata = Metadata {
        actor: Some("system".into()),
        node: Some(rt.config.node_id.clone()),
        app: Some(request.app_id.clone()),
        causation_id: Some(request.idempotency_key.clone()),
        correlation_id: Some(request.id.clone()),
        ..Metadata::default()
    };
    let input = RunInput {
        app_id: request.app_id.clone(),
        app_slug: String::new(),
        invocation_id: request.id.clone(),
        request: request.request.as_ref().map(http_request),
        params: Default::default(),
        event: event_for(request, attempt),
    };
    let entry = rt.catalog.app(&request.app_id);
    let ran = match &entry {
        Some(entry) => match rt
            .run(entry, &request.script_id, input, &request.trigger, None)
            .await
        {
            Ok(ran) => ran,
            Err(SubmitError::Overloaded | SubmitError::ShuttingDown) => {
                if accepted {
                    row_written(rt).await;
                }
                let until = now_micros() + OVERLOADED_DELAY.as_micros() as i64;
                return rt
                    .store
                    .postpone_delivery(&request.id, &rt.config.node_id, until)
                    .await;
            }
        },
        None => None,
    };
    rt.metrics.outbox(OutboxStage::Run, lap(&mut stage));
    if rt.membership.state() == NodeState::Gone {
        // The node left while this ran and handed the delivery back: another
        // node runs it; this (abandoned) attempt is not recorded.
        return Ok(());
    }
    let event = match ran {
        Some((_, mut record)) => {
            record.attempt = attempt;
            outcome(rt, record, request.max_attempts)
        }
        // The app or the script is gone: nothing to retry.
        None => InvocationEvent::InvocationDead(InvocationRecord {
            id: request.id.clone(),
            app_id: request.app_id.clone(),
            script_id: request.script_id.clone(),
            script_version: 0,
            trigger: request.trigger.clone(),
            status: InvocationStatus::Dead,
            started_at: Utc::now(),
            ended_at: Utc::now(),
            duration_ms: 0.0,
            response_status: None,
            logs: Vec::new(),
            logs_truncated: false,
            error: Some(serde_json::json!({
                "code": "script_not_found",
                "error": "the script (or its app) no longer exists",
            })),
            request_id: None,
            attempt,
            recording: None,
        }),
    };
    let appended = rt
        .store
        .append(
            stream,
            ExpectedVersion::Exact(state.version),
            vec![encode(&event, &metadata)],
        )
        .await;
    rt.metrics.outbox(OutboxStage::Record, lap(&mut stage));
    match appended {
        Ok(_) => {
            if let InvocationEvent::InvocationCompleted(record)
            | InvocationEvent::InvocationDead(record)
            | InvocationEvent::InvocationAttemptFailed { record, .. } = &event
            {
                rt.publish(record);
            }
            Ok(())
        }
        // Someone else recorded this attempt first (an expired lease ran twice).
        Err(StoreError::VersionConflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The time since `since`, which moves to now.
fn lap(since: &mut std::time::Instant) -> Duration {
    let now = std::time::Instant::now();
    let spent = now - *since;
    *since = now;
    spent
}

/// The event an attempt's record leads to.
fn outcome(rt: &Runtime, mut record: InvocationRecord, max_attempts: u32) -> InvocationEvent {
    if record.status == InvocationStatus::Succeeded {
        return InvocationEvent::InvocationCompleted(record);
    }
    if record.attempt >= max_attempts.max(1) {
        record.status = InvocationStatus::Dead;
        return InvocationEvent::InvocationDead(record);
    }
    let delay = backoff(
        record.attempt,
        rt.config.retry_base,
        rt.config.retry_max,
        jitter(),
    );
    let next_attempt_at =
        record.ended_at + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
    InvocationEvent::InvocationAttemptFailed {
        record,
        next_attempt_at,
    }
}

/// Delay after failed attempt `attempt` (from 1): `base × 2^(attempt−1)`, capped
/// at `max`, stretched by `jitter` (a fraction in `0.0..0.25`).
pub fn backoff(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let plain = base.saturating_mul(1u32 << exp).min(max);
    plain.mul_f64(1.0 + jitter.clamp(0.0, 0.25))
}

/// A fraction in `0.0..0.25` from the v4 UUID generator's randomness.
fn jitter() -> f64 {
    let r = uuid::Uuid::new_v4().as_u64_pair().0 % 1_000_000;
    r as f64 / 1_000_000.0 * 0.25
}

/// The queued request as the script sees it.
pub fn http_request(q: &QueuedRequest) -> HttpRequest {
    let body = match (&q.body, &q.body_base64) {
        (Some(text), _) => bytes::Bytes::from(text.clone().into_bytes()),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(bytes::Bytes::from)
            .unwrap_or_default(),
        (None, None) => bytes::Bytes::new(),
    };
    HttpRequest {
        method: q.method.clone(),
        path: q.path.clone(),
        query: q.query.clone(),
        headers: q.headers.clone(),
        body,
    }
}

/// A request body as the log keeps it: text when UTF-8, else base64.
pub fn queued_body(body: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(body) {
        Ok(text) => (Some(text.to_owned()), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff(1, base, max, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(2, base, max, 0.0), Duration::from_millis(200));
        assert_eq!(backoff(4, base, max, 0.0), Duration::from_millis(800));
        assert_eq!(backoff(5, base, max, 0.0), max);
        assert_eq!(backoff(60, base, max, 0.0), max, "no overflow");
        assert_eq!(backoff(2, base, max, 0.25), Duration::from_millis(250));
        assert_eq!(
            backoff(2, base, max, 9.0),
            Duration::from_millis(250),
            "jitter is clamped"
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..0.25).contains(&j), "{j}");
        }
    }

    #[test]
    fn bodies_round_trip_as_text_or_base64() {
        let (text, b64) = queued_body(b"{\"a\":1}");
        assert_eq!((text.as_deref(), b64), (Some("{\"a\":1}"), None));
        let raw = [0xffu8, 0x00, 0x10];
        let (text, b64) = queued_body(&raw);
        assert!(text.is_none());
        let q = QueuedRequest {
            body_base64: b64,
            ..QueuedRequest::default()
        };
        assert_eq!(http_request(&q).body.as_ref(), &raw);
    }
}
