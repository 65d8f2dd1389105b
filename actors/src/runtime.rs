//! The node runtime: the store, the catalog, the sandbox, the executor slots, the
//! recorder and the actors, started together under one supervisor. The API holds
//! an `Arc<Runtime>` and nothing else.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use picloud_events::domain::codec::encode;
use picloud_events::domain::{
    InvocationEvent, InvocationRecord, InvocationRequest, InvocationState, InvocationStatus,
    InvocationsProjection, OutboxProjection, stream,
};
use picloud_events::projection::Projection;
use picloud_events::{ExpectedVersion, Metadata, NodeState, Store, StoreError, StreamWrite};
use picloud_sandbox::{
    Answers, Ceilings, Host, HttpClient, HttpPolicy, LimitSettings, Limits, Outcome, RecordSetting,
    RunInput, RunResult, Sandbox, ScriptSource,
};
use ractor::{Actor, ActorRef};
use tokio::sync::{Mutex, broadcast, watch};
use tokio::task::JoinHandle;

use crate::app::{self, AppActor, AppActorArgs, AppCommand, AppMsg, CommandError, CommandOutcome};
use crate::catalog::{AppEntry, Catalog};
use crate::dispatcher::Dispatcher;
use crate::executor::{Executor, ExecutorSlot, SlotArgs, SubmitError};
use crate::keys::MasterKey;
use crate::projector::{
    Projector, ProjectorArgs, ReadModel, RebuildReport, RebuildSignal, catch_up_catalog,
    restore_catalog,
};
use crate::recorder::Recorder;
use crate::supervisor::{ChildSpec, NodeSupervisor, SupervisorMsg};
use crate::users::{self, UserCommand, UserOutcome};

/// How long a command may take before the caller gives up waiting.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How far (in events) the catalog may trail the log and still be ready.
const READY_LAG: i64 = 10_000;
/// Finished runs a live log listener may fall behind by before it is dropped.
const LIVE_BUFFER: usize = 1024;
/// How long a writer waits for the catalog to show its own write.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Executor slots (threads evaluating scripts).
    pub slots: usize,
    /// Runs that may wait for a slot before the edge answers 503.
    pub queue: usize,
    /// The ceilings the node starts with (a reload may change them: the live ones
    /// are [`Runtime::limit_settings`]).
    pub ceilings: Ceilings,
    /// The limits of a script without overrides, as the node starts.
    pub defaults: Limits,
    pub node_id: String,
    /// Delay before the second attempt of a failed asynchronous invocation; each
    /// later attempt waits twice as long (plus up to 25% jitter), up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// What scripts' outbound HTTP may reach (`PICLOUD_HTTP_ALLOW_*`).
    pub http: HttpPolicy,
    /// The key secrets are sealed under (checked against the store at start).
    pub master_key: Arc<MasterKey>,
    /// Where the key came from, for the mismatch error.
    pub master_key_source: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let slots = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        RuntimeConfig {
            slots,
            queue: slots * 64,
            ceilings: Ceilings::DEFAULT,
            defaults: Limits::DEFAULT,
            node_id: format!("node-{}", uuid::Uuid::new_v4().simple()),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
            http: HttpPolicy::default(),
            master_key: Arc::default(),
            master_key_source: "a random key".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("actor system: {0}")]
    Actors(String),
    #[error("{0}")]
    Http(String),
    #[error("{0}")]
    Key(#[from] crate::keys::KeyError),
}

/// The read models a node keeps, by name.
pub const PROJECTIONS: [&str; 3] = ["catalog", "invocations", "outbox"];
/// How long a rebuild request waits for the projector.
const REBUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// One rebuild signal per projector.
#[derive(Clone, Default)]
pub struct Rebuilds {
    pub catalog: RebuildSignal,
    pub invocations: RebuildSignal,
    pub outbox: RebuildSignal,
}

/// A read model's progress.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionStatus {
    pub name: &'static str,
    pub checkpoint: i64,
    pub lag: i64,
}

/// What `enqueue_once` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    pub invocation_id: String,
    /// The key was already claimed: `invocation_id` is the first request's.
    pub duplicate: bool,
}

/// A finished run and how it was recorded.
#[derive(Debug)]
pub struct Invocation {
    pub id: String,
    pub result: RunResult,
}

pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub sandbox: Arc<Sandbox>,
    pub executor: Executor,
    pub recorder: Recorder,
    pub config: RuntimeConfig,
    /// Checkpoint of the `invocations` read model.
    pub invocations_checkpoint: watch::Receiver<i64>,
    /// Checkpoint of the `outbox` read model (the dispatcher wakes on it).
    pub outbox_checkpoint: watch::Receiver<i64>,
    /// Every run this node finishes (and every attempt of an asynchronous one), for
    /// live log streams. Sent only while someone listens; a slow listener lags
    /// and is dropped by its stream, never slowing a run.
    pub live: broadcast::Sender<Arc<InvocationRecord>>,
    /// Counters `GET /metrics` renders.
    pub metrics: Arc<crate::metrics::Metrics>,
    pub rebuilds: Rebuilds,
    /// The sandbox defaults and ceilings in force; swapped whole on a reload.
    limits: ArcSwap<LimitSettings>,
    /// Scripts' outbound HTTP client (shared with the host), kept to swap its
    /// allow lists on a reload.
    http: HttpClient,
    /// This node in the cluster registry: its state (`up`, `draining`, `gone`)
    /// and heartbeat.
    pub membership: Arc<crate::node::Membership>,
    /// `true` while the dispatcher has no run in flight and claims nothing (it
    /// is not running, or it stopped claiming to drain and its runs ended).
    pub(crate) outbox_idle: watch::Sender<bool>,
    /// The deliveries this node runs at once (claimed rows and requests run
    /// where they were accepted).
    pub(crate) in_flight: crate::dispatcher::InFlight,
    /// This runtime, for the tasks it spawns.
    me: std::sync::OnceLock<Weak<Runtime>>,
    supervisor: ActorRef<SupervisorMsg>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Runtime {
    /// Start everything; returns once the catalog has caught up with the log.
    pub async fn start(
        store: Arc<dyn Store>,
        config: RuntimeConfig,
    ) -> Result<Arc<Runtime>, RuntimeError> {
        config
            .master_key
            .verify(store.as_ref(), &config.master_key_source)
            .await?;
        let catalog = Arc::new(Catalog::new());
        restore_catalog(store.as_ref(), &catalog).await?;
        catch_up_catalog(store.as_ref(), &catalog).await?;

        let (supervisor, supervisor_task) = Actor::spawn(None, NodeSupervisor, ())
            .await
            .map_err(|e| RuntimeError::Actors(e.to_string()))?;

        let sandbox = Arc::new(Sandbox::new());
        // Scripts' requests run on this runtime; slot threads wait for them.
        let http = HttpClient::new(config.http.clone(), tokio::runtime::Handle::current())
            .map_err(RuntimeError::Http)?;
        let queue = Arc::new(crate::queue::OutboxQueue::new(
            tokio::runtime::Handle::current(),
        ));
        let host = Host::default()
            .with_http(http.clone())
            .with_queue(queue.clone())
            .with_secrets(Arc::new(crate::services::CatalogSecrets::new(
                catalog.clone(),
                config.master_key.clone(),
            )))
            .with_kv(Arc::new(crate::services::StoreKv::new(
                store.clone(),
                tokio::runtime::Handle::current(),
            )));
        let (executor, slot_queue) =
            Executor::new(sandbox.clone(), host, config.slots, config.queue);
        for index in 0..executor.slots {
            let queue = slot_queue.clone();
            let spec: ChildSpec = Arc::new(move |parent| {
                let args = SlotArgs {
                    index,
                    queue: queue.clone(),
                };
                Box::pin(async move {
                    let (actor, _) = Actor::spawn_linked(None, ExecutorSlot, args, parent).await?;
                    Ok(actor.get_cell())
                })
            });
            start_child(&supervisor, format!("slot-{index}"), spec).await?;
        }

        let rebuilds = Rebuilds::default();
        let catalog_spec: ChildSpec = {
            let catalog_rebuild = rebuilds.catalog.clone();
            let store = store.clone();
            let catalog = catalog.clone();
            Arc::new(move |parent| {
                let args = ProjectorArgs {
                    store: store.clone(),
                    model: ReadModel::Catalog(catalog.clone()),
                    rebuild: catalog_rebuild.clone(),
                };
                Box::pin(async move {
                    let (actor, _) = Actor::spawn_linked(None, Projector, args, parent).await?;
                    Ok(actor.get_cell())
                })
            })
        };
        start_child(&supervisor, "projector-catalog".into(), catalog_spec).await?;

        let invocations_checkpoint = start_stored_projector(
            &supervisor,
            &store,
            Arc::new(InvocationsProjection),
            rebuilds.invocations.clone(),
        )
        .await?;
        let outbox_checkpoint = start_stored_projector(
            &supervisor,
            &store,
            Arc::new(OutboxProjection),
            rebuilds.outbox.clone(),
        )
        .await?;

        let (recorder, recorder_task) = Recorder::start(store.clone());
        let supervisor_join = tokio::spawn(async move {
            let _ = supervisor_task.await;
        });

        let executor_slots = executor.slots;
        let membership = Arc::new(crate::node::Membership::new(
            store.clone(),
            executor.stats.clone(),
            &config.node_id,
            executor.slots,
        ));
        let limits = ArcSwap::from_pointee(LimitSettings {
            defaults: config.defaults,
            ceilings: config.ceilings,
        });
        let runtime = Arc::new(Runtime {
            store,
            catalog,
            sandbox,
            executor,
            recorder,
            config,
            invocations_checkpoint,
            outbox_checkpoint,
            live: broadcast::channel(LIVE_BUFFER).0,
            metrics: Arc::default(),
            rebuilds,
            limits,
            http,
            membership,
            outbox_idle: watch::channel(true).0,
            in_flight: crate::dispatcher::InFlight::new(executor_slots),
            me: std::sync::OnceLock::new(),
            supervisor,
            tasks: Mutex::new(vec![recorder_task, supervisor_join]),
        });
        queue.attach(Arc::downgrade(&runtime));
        let _ = runtime.me.set(Arc::downgrade(&runtime));
        runtime.membership.register().await;
        let dispatcher_spec: ChildSpec = {
            let runtime = Arc::downgrade(&runtime);
            Arc::new(move |parent| {
                let runtime = runtime.clone();
                Box::pin(async move {
                    let (actor, _) = Actor::spawn_linked(None, Dispatcher, runtime, parent).await?;
                    Ok(actor.get_cell())
                })
            })
        };
        start_child(&runtime.supervisor, "dispatcher".into(), dispatcher_spec).await?;
        start_child(
            &runtime.supervisor,
            "scheduler".into(),
            crate::scheduler::spec(&runtime),
        )
        .await?;
        Ok(runtime)
    }

    /// The asynchronous invocation `id` folded from its stream: `Ok(None)` when
    /// there is no such invocation, `Err(..)` from the store. A synchronous run
    /// is `Some(Err(app_id))`: it exists but cannot be re-driven. (Its record is
    /// in its app's `runs-` stream and its `invocations` document; logs from
    /// before that give it an `invocation-` stream of its own.)
    pub async fn load_invocation(
        &self,
        id: &str,
    ) -> Result<Option<Result<InvocationState, String>>, StoreError> {
        let events = self
            .store
            .read_stream(&stream::invocation(id), 1, 10_000)
            .await?;
        if events.is_empty() {
            let doc = self
                .store
                .get_doc(InvocationsProjection::COLLECTION, id)
                .await?;
            return Ok(doc.map(|d| Err(d.app.unwrap_or_default())));
        }
        Ok(Some(InvocationState::fold(&events).ok_or_else(|| {
            events
                .first()
                .and_then(|e| e.metadata.app.clone())
                .unwrap_or_default()
        })))
    }

    /// Queue a dead asynchronous invocation again (attempts count from zero).
    pub async fn redrive(
        &self,
        state: &InvocationState,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let mut metadata = metadata.clone();
        metadata.app = Some(state.request.app_id.clone());
        self.store
            .append(
                &stream::invocation(&state.request.id),
                ExpectedVersion::Exact(state.version),
                vec![encode(
                    &InvocationEvent::InvocationRedriven { at: Utc::now() },
                    &metadata,
                )],
            )
            .await?;
        Ok(())
    }

    /// Queue an invocation once per `dedupe` key (a webhook delivery id, a cron
    /// tick): the key is claimed in the same transaction, and a second request
    /// with the same key answers the first one's invocation id instead.
    pub async fn enqueue_once(
        &self,
        request: InvocationRequest,
        metadata: &Metadata,
        dedupe: &str,
    ) -> Result<Enqueued, StoreError> {
        let claim = StreamWrite {
            stream: dedupe.to_owned(),
            expected: ExpectedVersion::NoStream,
            events: vec![picloud_events::NewEvent::new(
                "DeliveryClaimed",
                serde_json::json!({ "invocation_id": request.id }),
                Metadata {
                    app: Some(request.app_id.clone()),
                    ..metadata.clone()
                },
            )],
        };
        let id = request.id.clone();
        match self.enqueue(request, metadata, vec![claim]).await {
            Ok(_) => Ok(Enqueued {
                invocation_id: id,
                duplicate: false,
            }),
            Err(StoreError::VersionConflict(c)) if c.stream == dedupe => {
                let first = self.store.read_stream(dedupe, 1, 1).await?;
                let invocation_id = first
                    .first()
                    .and_then(|e| e.data["invocation_id"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                Ok(Enqueued {
                    invocation_id,
                    duplicate: true,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Count a finished run and hand it to the live log streams (sent only when
    /// someone listens).
    pub fn publish(&self, record: &InvocationRecord) {
        self.metrics.record(record);
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::new(record.clone()));
        }
    }

    /// The write that queues `request`: `InvocationRequested` on a new stream.
    pub fn request_write(request: InvocationRequest, metadata: &Metadata) -> StreamWrite {
        let mut metadata = metadata.clone();
        metadata.app = Some(request.app_id.clone());
        metadata.depth = (request.depth > 0).then_some(request.depth);
        StreamWrite {
            stream: stream::invocation(&request.id),
            expected: ExpectedVersion::NoStream,
            events: vec![encode(
                &InvocationEvent::InvocationRequested(request),
                &metadata,
            )],
        }
    }

    /// Queue an asynchronous invocation: `InvocationRequested` on its own stream,
    /// in one transaction with `with` (the cause's own writes, e.g. a webhook's
    /// dedupe claim). When this node has a delivery permit free it runs the
    /// request itself at once: the request carries a lease to this node (its
    /// outbox row is written leased, so no dispatcher claims it), and neither a
    /// claim nor a read of the stream is needed. Otherwise the dispatcher of
    /// some node runs it from the outbox.
    pub async fn enqueue(
        &self,
        mut request: InvocationRequest,
        metadata: &Metadata,
        with: Vec<StreamWrite>,
    ) -> Result<i64, StoreError> {
        let here = match self.me.get().and_then(Weak::upgrade) {
            Some(me) if self.membership.state() == NodeState::Up => {
                self.in_flight.start_local().map(|running| (me, running))
            }
            _ => None,
        };
        if here.is_some() {
            let span = crate::dispatcher::lease_span(self);
            request.lease = Some(picloud_events::DeliveryLease {
                node: self.config.node_id.clone(),
                until: Utc::now().timestamp_micros() + span.as_micros() as i64,
            });
        }
        let local = here.map(|(me, running)| (me, running, request.clone()));
        let mut writes = vec![Runtime::request_write(request, metadata)];
        writes.extend(with);
        let appended = self.store.append_many(writes).await?;
        if let (Some((me, running, request)), Some(first)) = (local, appended.first()) {
            self.in_flight.accepted_at(first.last_position);
            crate::dispatcher::run_accepted(me, request, first.last_version, running);
        }
        Ok(appended.iter().map(|a| a.last_position).max().unwrap_or(0))
    }

    /// Send a command to the app's actor (spawned on demand) and wait until the
    /// catalog shows its effect.
    pub async fn command(
        &self,
        app_id: &str,
        command: AppCommand,
        metadata: Metadata,
    ) -> Result<CommandOutcome, CommandError> {
        let actor = self.app_actor(app_id).await?;
        let call = actor
            .call(
                |reply| AppMsg::Command {
                    command,
                    metadata,
                    reply,
                },
                Some(COMMAND_TIMEOUT),
            )
            .await
            .map_err(|e| CommandError::Unavailable(format!("app actor: {e}")))?;
        let outcome = match call {
            ractor::rpc::CallResult::Success(result) => result?,
            ractor::rpc::CallResult::Timeout => {
                return Err(CommandError::Unavailable("command timed out".into()));
            }
            ractor::rpc::CallResult::SenderError => {
                return Err(CommandError::Unavailable("app actor stopped".into()));
            }
        };
        self.read_your_writes(outcome.position).await;
        Ok(outcome)
    }

    /// Wait until the catalog shows the write at `position` (bounded; a lagging
    /// catalog is logged, not an error: the write itself succeeded).
    async fn read_your_writes(&self, position: i64) {
        if position > 0 && !self.catalog.wait_for(position, READ_YOUR_WRITES).await {
            tracing::warn!(position, "catalog lagging behind a write");
        }
    }

    /// Let the catalog catch up with every write committed so far, on any node
    /// (bounded; a lagging catalog is logged, not an error). On PostgreSQL an
    /// admin request may follow a write made through another node a moment ago
    /// (Caddy spreads requests): without this it could find the catalog a few
    /// milliseconds behind (an app just created answering 404). One query of the
    /// head position; a single SQLite node's own writes are already visible.
    pub async fn sync_with_cluster(&self) {
        if self.store.backend() != picloud_events::Backend::Postgres {
            return;
        }
        if let Ok(head) = self.store.head_position().await {
            self.read_your_writes(head).await;
        }
    }

    /// Every read model with its checkpoint and how far it trails the log.
    pub async fn projections(&self) -> Result<Vec<ProjectionStatus>, StoreError> {
        let head = self.store.head_position().await?;
        let checkpoints = [
            self.catalog.position(),
            *self.invocations_checkpoint.borrow(),
            *self.outbox_checkpoint.borrow(),
        ];
        Ok(PROJECTIONS
            .iter()
            .zip(checkpoints)
            .map(|(name, checkpoint)| ProjectionStatus {
                name,
                checkpoint,
                lag: (head - checkpoint).max(0),
            })
            .collect())
    }

    /// Rebuild a read model from the whole log (`None`: no such projection).
    pub async fn rebuild(&self, name: &str) -> Option<Result<RebuildReport, String>> {
        let signal = match name {
            "catalog" => &self.rebuilds.catalog,
            "invocations" => &self.rebuilds.invocations,
            "outbox" => &self.rebuilds.outbox,
            _ => return None,
        };
        Some(signal.rebuild(REBUILD_TIMEOUT).await)
    }

    /// Run a user command and wait until the catalog shows its effect.
    pub async fn user_command(
        &self,
        user_id: &str,
        command: UserCommand,
        metadata: Metadata,
    ) -> Result<UserOutcome, CommandError> {
        let catalog = self.catalog.clone();
        let fallback = move || catalog.active_owner_ids();
        let outcome =
            users::execute(self.store.as_ref(), user_id, &command, &metadata, &fallback).await?;
        self.read_your_writes(outcome.position).await;
        Ok(outcome)
    }

    async fn app_actor(&self, app_id: &str) -> Result<ActorRef<AppMsg>, CommandError> {
        let name = app::actor_name(app_id);
        for _ in 0..3 {
            if let Some(cell) = ractor::registry::where_is(name.clone()) {
                return Ok(cell.into());
            }
            let args = AppActorArgs {
                app_id: app_id.to_owned(),
                store: self.store.clone(),
                keys: self.config.master_key.clone(),
            };
            match Actor::spawn_linked(
                Some(name.clone()),
                AppActor,
                args,
                self.supervisor.get_cell(),
            )
            .await
            {
                Ok((actor, _)) => return Ok(actor),
                // Another request spawned it first: use that one.
                Err(ractor::SpawnErr::ActorAlreadyRegistered(_)) => continue,
                Err(e) => {
                    return Err(CommandError::Unavailable(format!(
                        "spawning app actor: {e}"
                    )));
                }
            }
        }
        Err(CommandError::Unavailable(
            "could not reach the app actor".into(),
        ))
    }

    /// The limits a script version runs with: the node's defaults, its overrides,
    /// and never above the current ceilings (which may have been lowered since it
    /// was saved).
    pub fn limits_for(&self, overrides: &picloud_sandbox::Overrides) -> Limits {
        self.limits.load().limits_for(overrides)
    }

    /// The sandbox defaults and ceilings in force.
    pub fn limit_settings(&self) -> LimitSettings {
        **self.limits.load()
    }

    /// Replaces the sandbox defaults and ceilings: runs that start afterwards and
    /// overrides saved afterwards are held to them (a run in progress keeps its own).
    pub fn set_limit_settings(&self, settings: LimitSettings) {
        self.limits.store(Arc::new(settings));
    }

    /// What scripts' outbound HTTP may reach now.
    pub fn http_policy(&self) -> Arc<HttpPolicy> {
        self.http.policy()
    }

    /// Replaces the outbound HTTP allow lists (`PICLOUD_HTTP_ALLOW_*`); `Err`
    /// (the old lists stay) only if the new client cannot be built.
    pub fn set_http_allow(&self, policy: &HttpPolicy) -> Result<(), String> {
        self.http
            .set_allow(policy.allow_private, policy.allow_cidrs.clone())
    }

    /// Run the live version of a script on an executor slot and record the run.
    /// `None` when the script does not exist in this app.
    pub async fn invoke(
        &self,
        app: &AppEntry,
        script_id: &str,
        input: RunInput,
        trigger: &str,
        metadata: Metadata,
    ) -> Result<Option<Invocation>, SubmitError> {
        let run = self
            .run(app, script_id, input, trigger, metadata.request_id.clone())
            .await?;
        let Some((invocation, record)) = run else {
            return Ok(None);
        };
        self.publish(&record);
        self.recorder.record(record, metadata).await;
        Ok(Some(invocation))
    }

    /// Run the live version of a script on an executor slot; the caller records
    /// it. `None` when the script does not exist in this app (or has no version).
    /// An empty `input.invocation_id` gets a new id.
    pub async fn run(
        &self,
        app: &AppEntry,
        script_id: &str,
        mut input: RunInput,
        trigger: &str,
        request_id: Option<String>,
    ) -> Result<Option<(Invocation, InvocationRecord)>, SubmitError> {
        let Some(script) = app.app.scripts.get(script_id) else {
            return Ok(None);
        };
        let Some(live) = script.live() else {
            return Ok(None);
        };
        if input.invocation_id.is_empty() {
            input.invocation_id = uuid::Uuid::now_v7().to_string();
        }
        let id = input.invocation_id.clone();
        input.app_id = app.app.id.clone();
        input.app_slug = app.app.slug.clone();
        let source = ScriptSource {
            id: script.id.clone(),
            version: live.version,
            name: script.name.clone(),
            source: live.source.clone(),
            // A manifest is checked when saved; one that no longer parses (saved
            // before the check existed) grants nothing rather than everything.
            permissions: live.permissions.as_ref().map(|manifest| {
                Arc::new(picloud_sandbox::Permissions::parse(manifest).unwrap_or_default())
            }),
        };
        let limits = self.limits_for(&live.sandbox);
        let answers = match live.sandbox.record.unwrap_or(app.app.record) {
            RecordSetting::Full => Answers::Record,
            RecordSetting::Off => Answers::Perform,
        };
        let started_at = Utc::now();
        let mut result = self
            .executor
            .run(source, app.modules.clone(), limits, input, answers)
            .await?;
        let ended_at = Utc::now();
        let (status, response_status, error) = summarize(&result.outcome);
        let record = InvocationRecord {
            id: id.clone(),
            app_id: app.app.id.clone(),
            script_id: script.id.clone(),
            script_version: live.version,
            trigger: trigger.to_owned(),
            status,
            started_at,
            ended_at,
            duration_ms: result.duration.as_secs_f64() * 1000.0,
            response_status: Some(response_status),
            logs: result.logs.clone(),
            logs_truncated: result.logs_truncated,
            error,
            request_id,
            attempt: 0,
            recording: result.recording.take(),
        };
        Ok(Some((Invocation { id, result }, record)))
    }

    /// Ready: the node is `up` (not draining), the store answers, and every read
    /// model has caught up with the log. The catalog caught up fully before the
    /// node started serving; the stored read models follow from their
    /// checkpoints. A busy log keeps them all a few events behind (invocation
    /// records keep coming), so "caught up" means within `READY_LAG` events, and
    /// a health check does not flap under load.
    pub async fn is_ready(&self) -> bool {
        if self.membership.state() != NodeState::Up || self.store.ping().await.is_err() {
            return false;
        }
        match self.projections().await {
            Ok(projections) => projections.iter().all(|p| p.lag <= READY_LAG),
            Err(_) => false,
        }
    }

    /// Start draining (SIGTERM): the registry shows `draining`, `/readyz` answers
    /// 503, and the dispatcher claims no more outbox work (its runs go on).
    pub async fn begin_drain(&self) {
        self.membership.set(NodeState::Draining).await;
    }

    /// Resolves once the dispatcher has no run in flight (after `begin_drain`).
    pub async fn outbox_drained(&self) {
        let mut idle = self.outbox_idle.subscribe();
        let _ = idle.wait_for(|idle| *idle).await;
    }

    /// Leave the cluster: free the outbox leases this node still holds (the runs
    /// the drain did not finish: other nodes claim them at once) and mark it
    /// `gone`.
    pub async fn leave(&self) {
        // The rows of the requests it accepted to run itself are written leased
        // to it: let them exist first, so they are freed too.
        crate::dispatcher::row_written(self).await;
        match self.store.release_leases(&self.config.node_id).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "handed back unfinished outbox deliveries"),
            Err(e) => {
                tracing::warn!(error = %e, "could not hand back this node's leases; they run when they expire")
            }
        }
        self.membership.set(NodeState::Gone).await;
        // What still runs was handed back: stop it rather than wait for it (its
        // outcome is not recorded, see the dispatcher).
        self.executor.abandon_runs();
    }

    /// Stop the actors, let queued runs finish, flush the recorder.
    pub async fn shutdown(&self) {
        // Children first (projectors write their last snapshot), then the root.
        self.supervisor
            .stop_children_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await;
        let _ = self
            .supervisor
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5)))
            .await;
        self.recorder.stop();
        if let Err(e) =
            crate::projector::save_catalog_snapshot(self.store.as_ref(), &self.catalog).await
        {
            tracing::warn!(error = %e, "catalog snapshot at shutdown failed");
        }
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock().await);
        for task in tasks {
            // Bounded: a store that hangs must not hold the process forever.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Start a projector for a stored read model; answers its checkpoint channel.
async fn start_stored_projector(
    supervisor: &ActorRef<SupervisorMsg>,
    store: &Arc<dyn Store>,
    projection: Arc<dyn Projection>,
    rebuild: RebuildSignal,
) -> Result<watch::Receiver<i64>, RuntimeError> {
    let (progress, checkpoint) = watch::channel(0);
    let name = format!("projector-{}", projection.name());
    let store = store.clone();
    let spec: ChildSpec = Arc::new(move |parent| {
        let args = ProjectorArgs {
            store: store.clone(),
            rebuild: rebuild.clone(),
            model: ReadModel::Stored {
                projection: projection.clone(),
                progress: progress.clone(),
            },
        };
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(None, Projector, args, parent).await?;
            Ok(actor.get_cell())
        })
    });
    start_child(supervisor, name, spec).await?;
    Ok(checkpoint)
}

async fn start_child(
    supervisor: &ActorRef<SupervisorMsg>,
    name: String,
    spec: ChildSpec,
) -> Result<(), RuntimeError> {
    let answer = supervisor
        .call(
            |reply| SupervisorMsg::Start {
                name: name.clone(),
                spec,
                reply,
            },
            Some(Duration::from_secs(10)),
        )
        .await
        .map_err(|e| RuntimeError::Actors(e.to_string()))?;
    match answer {
        ractor::rpc::CallResult::Success(Ok(())) => Ok(()),
        ractor::rpc::CallResult::Success(Err(e)) => {
            Err(RuntimeError::Actors(format!("starting {name}: {e}")))
        }
        _ => Err(RuntimeError::Actors(format!("starting {name}: no answer"))),
    }
}

/// Status, HTTP status and error detail of an outcome, as recorded.
pub fn summarize(outcome: &Outcome) -> (InvocationStatus, u16, Option<serde_json::Value>) {
    match outcome {
        Outcome::Response(r) => (InvocationStatus::Succeeded, r.status, None),
        Outcome::ScriptError {
            message,
            line,
            position,
        } => (
            InvocationStatus::Failed,
            500,
            Some(
                serde_json::json!({"code": "script_error", "error": message, "line": line, "position": position}),
            ),
        ),
        Outcome::LimitExceeded { limit } => (
            InvocationStatus::Killed,
            507,
            Some(
                serde_json::json!({"code": "limit_exceeded", "limit": limit, "error": format!("sandbox limit exceeded: {limit}")}),
            ),
        ),
        Outcome::Timeout => (
            InvocationStatus::TimedOut,
            504,
            Some(
                serde_json::json!({"code": "timeout", "error": "the script ran past its time limit"}),
            ),
        ),
    }
}
