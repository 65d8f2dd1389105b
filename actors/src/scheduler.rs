//! The cron `Scheduler`: one per node. It keeps one task per enabled cron trigger
//! of the catalog (a trigger actor in all but name: it owns its schedule and sleeps
//! until its next tick) and restarts a task when its trigger changes.
//!
//! A tick is claimed by appending `CronTickClaimed` to the trigger's `cron-<id>`
//! stream at the version the task read, in one transaction with the tick's
//! `InvocationRequested`: on several nodes exactly one append wins, so every tick
//! fires once cluster-wide. The last claimed tick is the task's memory: after
//! downtime `Schedule::catch_up` fires the latest missed tick once (not once per
//! missed window) and then follows the schedule. Nothing polls: each task sleeps
//! until its next tick, and the scheduler sleeps until the catalog changes.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use picloud_cron::Schedule;
use picloud_events::domain::{InvocationRequest, Trigger, TriggerKind, stream};
use picloud_events::{ExpectedVersion, Metadata, NewEvent, StoreError, StreamWrite};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::runtime::Runtime;

/// After a store error, a trigger task tries again after this long.
const ERROR_DELAY: Duration = Duration::from_secs(1);

pub struct Scheduler;

pub enum SchedulerMsg {
    Ended,
}

pub struct SchedulerState {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Actor for Scheduler {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = Weak<Runtime>;

    async fn pre_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        runtime: Weak<Runtime>,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            schedule_loop(runtime, stopped).await;
            let _ = myself.cast(SchedulerMsg::Ended);
        });
        Ok(SchedulerState { stop, task })
    }

    async fn handle(
        &self,
        myself: ActorRef<SchedulerMsg>,
        _message: SchedulerMsg,
        _state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop(None);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), &mut state.task)
            .await
            .is_err()
        {
            state.task.abort();
        }
        Ok(())
    }
}

/// A running trigger task and what it was started with.
struct Running {
    config: Trigger,
    task: JoinHandle<()>,
}

async fn schedule_loop(runtime: Weak<Runtime>, mut stopped: watch::Receiver<bool>) {
    let Some(mut changes) = runtime.upgrade().map(|rt| rt.catalog.changes()) else {
        return;
    };
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut seen: Vec<(String, u64)> = Vec::new();
    loop {
        if *stopped.borrow() {
            break;
        }
        changes.borrow_and_update();
        {
            let Some(rt) = runtime.upgrade() else { break };
            // Most catalog moves are invocation records: only look at the triggers
            // when some app changed.
            let versions: Vec<(String, u64)> = rt
                .catalog
                .apps()
                .iter()
                .map(|e| (e.app.id.clone(), e.app.version))
                .collect();
            if versions != seen {
                seen = versions;
                reconcile(&rt, &runtime, &mut running);
            }
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = stopped.changed() => {}
        }
    }
    for (_, r) in running.drain() {
        r.task.abort();
    }
}

/// Start a task per enabled cron trigger, stop the tasks of triggers that are gone,
/// disabled or changed.
fn reconcile(rt: &Runtime, runtime: &Weak<Runtime>, running: &mut HashMap<String, Running>) {
    let mut wanted: HashMap<String, (String, Trigger)> = HashMap::new();
    for entry in rt.catalog.apps() {
        for t in entry.app.triggers.values() {
            if t.enabled && matches!(t.kind, TriggerKind::Cron { .. }) {
                wanted.insert(t.id.clone(), (entry.app.id.clone(), t.clone()));
            }
        }
    }
    running.retain(|id, r| {
        let keep = wanted.get(id).is_some_and(|(_, t)| *t == r.config);
        if !keep {
            r.task.abort();
        }
        keep
    });
    for (id, (app_id, trigger)) in wanted {
        if running.contains_key(&id) {
            continue;
        }
        let TriggerKind::Cron { schedule, timezone } = &trigger.kind else {
            continue;
        };
        let schedule = match Schedule::parse(schedule, timezone) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(trigger = %id, error = %e, "cron trigger with an invalid schedule");
                continue;
            }
        };
        let task = tokio::spawn(run_trigger(
            runtime.clone(),
            app_id,
            trigger.clone(),
            schedule,
        ));
        running.insert(
            id,
            Running {
                config: trigger,
                task,
            },
        );
    }
}

/// The last claimed tick of a trigger and its stream's version.
async fn last_tick(
    rt: &Runtime,
    trigger: &Trigger,
) -> Result<(Option<u64>, DateTime<Utc>), StoreError> {
    let name = stream::cron(&trigger.id);
    let Some(version) = rt.store.stream_version(&name).await? else {
        return Ok((None, trigger.created_at));
    };
    let last = rt
        .store
        .read_stream(&name, version, 1)
        .await?
        .first()
        .and_then(|e| e.data["scheduled_at"].as_str().map(str::to_owned))
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(trigger.created_at);
    Ok((Some(version), last))
}

async fn run_trigger(runtime: Weak<Runtime>, app_id: String, trigger: Trigger, schedule: Schedule) {
    loop {
        let next = {
            let Some(rt) = runtime.upgrade() else { return };
            match step(&rt, &app_id, &trigger, &schedule).await {
                Ok(Step::Claimed) => continue,
                Ok(Step::SleepUntil(at)) => at,
                Ok(Step::Never) => return,
                Err(e) => {
                    tracing::warn!(trigger = %trigger.id, error = %e, "cron trigger: store error; retrying");
                    Utc::now() + chrono::Duration::from_std(ERROR_DELAY).unwrap_or_default()
                }
            }
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}

enum Step {
    /// A tick was claimed (or lost to another node): look again at once.
    Claimed,
    SleepUntil(DateTime<Utc>),
    /// The schedule has no more ticks.
    Never,
}

async fn step(
    rt: &Runtime,
    app_id: &str,
    trigger: &Trigger,
    schedule: &Schedule,
) -> Result<Step, StoreError> {
    let (version, last) = last_tick(rt, trigger).await?;
    let now = Utc::now();
    let plan = schedule.catch_up(last, now);
    let Some(due) = plan.due else {
        return Ok(match plan.next {
            Some(at) => Step::SleepUntil(at),
            None => Step::Never,
        });
    };
    if plan.skipped {
        tracing::info!(trigger = %trigger.id, tick = %due, "cron trigger catching up: missed ticks fire once");
    }
    let TriggerKind::Cron { timezone, .. } = &trigger.kind else {
        return Ok(Step::Never);
    };
    let scheduled_at = due.with_timezone(&schedule.timezone()).to_rfc3339();
    let invocation_id = uuid::Uuid::now_v7().to_string();
    let metadata = Metadata {
        actor: Some("cron".into()),
        node: Some(rt.config.node_id.clone()),
        app: Some(app_id.to_owned()),
        causation_id: Some(format!("cron:{}", trigger.id)),
        ..Metadata::default()
    };
    let request = InvocationRequest {
        id: invocation_id.clone(),
        app_id: app_id.to_owned(),
        script_id: trigger.script_id.clone(),
        trigger: "cron".into(),
        trigger_id: Some(trigger.id.clone()),
        event: serde_json::json!({
            "kind": "cron",
            "trigger_id": trigger.id,
            "cron": {
                "schedule": schedule.expression(),
                "scheduled_at": scheduled_at,
                "timezone": timezone,
            },
        }),
        request: None,
        max_attempts: trigger.max_attempts,
        idempotency_key: format!("cron:{}:{}", trigger.id, due.timestamp_micros()),
        requested_at: due,
        depth: 0,
        lease: None,
    };
    let claim = StreamWrite {
        stream: stream::cron(&trigger.id),
        expected: version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact),
        events: vec![NewEvent::new(
            "CronTickClaimed",
            serde_json::json!({
                "trigger_id": trigger.id,
                "scheduled_at": due,
                "invocation_id": invocation_id,
            }),
            metadata.clone(),
        )],
    };
    match rt.enqueue(request, &metadata, vec![claim]).await {
        Ok(_) => Ok(Step::Claimed),
        // Another node claimed this tick first.
        Err(StoreError::VersionConflict(_)) => Ok(Step::Claimed),
        Err(e) => Err(e),
    }
}

/// The scheduler's handle for the runtime (the supervisor restarts it).
pub fn spec(runtime: &Arc<Runtime>) -> crate::supervisor::ChildSpec {
    let runtime = Arc::downgrade(runtime);
    Arc::new(move |parent| {
        let runtime = runtime.clone();
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(None, Scheduler, runtime, parent).await?;
            Ok(actor.get_cell())
        })
    })
}
