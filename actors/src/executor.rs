//! Executor slots: N dedicated OS threads that evaluate Rhai (blocking CPU work that
//! must never run on the async reactor), behind one bounded queue.
//!
//! A run that arrives while the node has no other run in flight, no slot busy and
//! nothing queued executes inline instead, on the requester's runtime thread
//! inside `tokio::task::block_in_place` (which hands that thread's other tasks to
//! another thread first): at low load this saves the two cross-thread wake-ups of
//! the slot hand-off. Only on a thread declared with
//! `picloud_sandbox::mark_slot_stack` (the binary's runtime threads have slot-sized
//! stacks) of a multi-threaded runtime; everywhere else, and whenever another run
//! is in flight, the run goes through the queue. At most one run is inline at a
//! time, so at most `slots + 1` scripts run at once.
//!
//! Each slot is an `ExecutorSlot` actor that owns its thread: the thread reports its
//! own end to the actor, which then stops with an error so its supervisor restarts
//! it. When the queue is full `submit` refuses at once (`Overloaded`): the edge sheds
//! load with a 503 rather than letting latency grow without bound. Dropping the
//! `Executor` closes the queue; slots finish what is queued and their threads end.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use flume::{Receiver, Sender, TrySendError};

use picloud_sandbox::{
    Answers, Host, Limits, ModuleSource, RunInput, RunResult, SLOT_STACK_SIZE, Sandbox,
    ScriptSource,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

/// One run waiting for a slot.
pub struct Job {
    pub script: ScriptSource,
    pub modules: Arc<dyn ModuleSource>,
    pub limits: Limits,
    pub input: RunInput,
    /// Whether the run's answers from outside are made, recorded or replayed.
    pub answers: Answers,
    pub reply: oneshot::Sender<RunResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("all executor slots are busy and the queue is full")]
    Overloaded,
    #[error("the executor is shutting down")]
    ShuttingDown,
}

/// Counters the metrics and `/api/v1/admin/nodes` read.
#[derive(Default)]
pub struct SlotStats {
    /// Slot threads running a script (an inline run is not counted here).
    pub busy: AtomicUsize,
    pub queued: AtomicUsize,
    /// Runs executed inline since start.
    pub inline: AtomicU64,
    /// Runs asked of `Executor::run` and not answered yet, inline or queued.
    in_flight: AtomicUsize,
}

#[derive(Clone)]
pub struct Executor {
    queue: Sender<Job>,
    pub slots: usize,
    pub stats: Arc<SlotStats>,
    /// For inline runs.
    runner: Arc<Runner>,
}

/// What evaluates a run, inline or on a slot: the sandbox and the node's
/// services lent to every run (outbound HTTP, kv, …).
struct Runner {
    sandbox: Arc<Sandbox>,
    host: Host,
    /// Raised when the node leaves with runs still going (the drain deadline
    /// passed): every run stops at its next check.
    abandon: AtomicBool,
}

impl Runner {
    fn run(
        &self,
        script: &ScriptSource,
        modules: &dyn ModuleSource,
        limits: &Limits,
        input: RunInput,
        answers: Answers,
    ) -> RunResult {
        self.sandbox.run_answered(
            script,
            modules,
            limits,
            input,
            Some(&self.abandon),
            &self.host,
            answers,
        )
    }
}

impl SlotStats {
    /// Runs asked of the executor and not answered yet (the registry's `in_flight`).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// One run counted in `SlotStats::in_flight` until dropped.
struct InFlight<'a>(&'a SlotStats);

impl<'a> InFlight<'a> {
    /// Count a run; whether it is the only one in flight.
    fn enter(stats: &'a SlotStats) -> (InFlight<'a>, bool) {
        let before = stats.in_flight.fetch_add(1, Ordering::AcqRel);
        (InFlight(stats), before == 0)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The receiving side, handed to the slot actors.
#[derive(Clone)]
pub struct SlotQueue {
    /// Every slot waits on the same queue; a job wakes one of them (no lock
    /// around the receiver, whose waiting holder would wake the other slot).
    queue: Receiver<Job>,
    runner: Arc<Runner>,
    stats: Arc<SlotStats>,
}

impl Executor {
    /// Stop every run in flight, and every later one, at once (as a timeout): the
    /// node is leaving and has handed its work back.
    pub fn abandon_runs(&self) {
        self.runner.abandon.store(true, Ordering::Relaxed);
    }

    /// A queue of `capacity` jobs in front of `slots` slots (spawn the slots with
    /// `ExecutorSlot` and the returned `SlotQueue`); runs get `host`'s services.
    pub fn new(
        sandbox: Arc<Sandbox>,
        host: Host,
        slots: usize,
        capacity: usize,
    ) -> (Executor, SlotQueue) {
        let (tx, rx) = flume::bounded(capacity.max(1));
        let stats = Arc::new(SlotStats::default());
        let runner = Arc::new(Runner {
            sandbox,
            host,
            abandon: AtomicBool::new(false),
        });
        (
            Executor {
                queue: tx,
                slots: slots.max(1),
                stats: stats.clone(),
                runner: runner.clone(),
            },
            SlotQueue {
                queue: rx,
                runner,
                stats,
            },
        )
    }

    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Overloaded,
                    TrySendError::Disconnected(_) => SubmitError::ShuttingDown,
                })
            }
        }
    }

    /// Run a script, inline when the node is otherwise idle (see the module
    /// documentation), else on a slot, and wait for its result.
    pub async fn run(
        &self,
        script: ScriptSource,
        modules: Arc<dyn ModuleSource>,
        limits: Limits,
        input: RunInput,
        answers: Answers,
    ) -> Result<RunResult, SubmitError> {
        let (_in_flight, alone) = InFlight::enter(&self.stats);
        if alone && self.may_run_inline() {
            return self.run_inline(&script, modules.as_ref(), &limits, input, answers);
        }
        let (reply, rx) = oneshot::channel();
        self.submit(Job {
            script,
            modules,
            limits,
            input,
            answers,
            reply,
        })?;
        rx.await.map_err(|_| SubmitError::ShuttingDown)
    }

    /// Nothing else is running or queued, this thread's stack fits a run, and
    /// `block_in_place` may be used here.
    fn may_run_inline(&self) -> bool {
        picloud_sandbox::on_slot_stack()
            && self.stats.busy.load(Ordering::Acquire) == 0
            && self.stats.queued.load(Ordering::Acquire) == 0
            && !self.queue.is_disconnected()
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
    }

    /// The run on this thread, the runtime's other tasks moved off it first. A
    /// panic is answered like a slot lost mid-run.
    fn run_inline(
        &self,
        script: &ScriptSource,
        modules: &dyn ModuleSource,
        limits: &Limits,
        input: RunInput,
        answers: Answers,
    ) -> Result<RunResult, SubmitError> {
        self.stats.inline.fetch_add(1, Ordering::Relaxed);
        tokio::task::block_in_place(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.runner.run(script, modules, limits, input, answers)
            }))
        })
        .map_err(|_| SubmitError::ShuttingDown)
    }
}

impl SlotQueue {
    /// The loop of one slot thread: take a job, run it, answer; end when the queue closes.
    fn serve(&self) {
        batch_scheduling();
        loop {
            let Ok(job) = self.queue.recv() else {
                return;
            };
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.busy.fetch_add(1, Ordering::Relaxed);
            let result = self.runner.run(
                &job.script,
                job.modules.as_ref(),
                &job.limits,
                job.input,
                job.answers,
            );
            self.stats.busy.fetch_sub(1, Ordering::Relaxed);
            // The requester may have gone away; the run still counted.
            let _ = job.reply.send(result);
        }
    }
}

/// Puts the calling slot thread under `SCHED_BATCH` (Linux): the same share of the
/// CPU at the same nice value, but a slot woken by a new job does not preempt the
/// runtime thread that queued it, which goes on with its other connections until
/// its time slice or its work ends. On the 2-core bench VM: 64 connections
/// 46,000–49,000 → 53,000–54,000 req/s, one connection unchanged. Where the policy
/// cannot be set the slot keeps the default one.
fn batch_scheduling() {
    #[cfg(target_os = "linux")]
    {
        use preempt_rt::sched::{self, Pid, Scheduler, SchedulerParams};
        if let Err(e) = sched::set_scheduler(
            Pid::current_thread(),
            Scheduler::SCHED_BATCH,
            SchedulerParams { priority: 0 },
        ) {
            tracing::debug!(error = %e, "executor slot keeps the default scheduling policy");
        }
    }
}

/// An executor slot: an actor owning one dedicated evaluation thread.
pub struct ExecutorSlot;

pub enum SlotMsg {
    /// Sent by the slot's own thread when it ends.
    ThreadEnded,
}

pub struct SlotArgs {
    pub index: usize,
    pub queue: SlotQueue,
}

pub struct SlotState {
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Actor for ExecutorSlot {
    type Msg = SlotMsg;
    type State = SlotState;
    type Arguments = SlotArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SlotMsg>,
        args: SlotArgs,
    ) -> Result<SlotState, ActorProcessingErr> {
        let queue = args.queue;
        let thread = std::thread::Builder::new()
            .name(format!("picloud-slot-{}", args.index))
            .stack_size(SLOT_STACK_SIZE)
            .spawn(move || {
                queue.serve();
                let _ = myself.cast(SlotMsg::ThreadEnded);
            })?;
        Ok(SlotState {
            thread: Some(thread),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SlotMsg>,
        message: SlotMsg,
        state: &mut SlotState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SlotMsg::ThreadEnded => {
                if let Some(thread) = state.thread.take() {
                    // The thread has returned; joining only collects a panic, if any.
                    if thread.join().is_err() {
                        return Err("executor slot thread panicked".into());
                    }
                }
                myself.stop(Some("queue closed".into()));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use picloud_sandbox::{NoModules, Outcome, SLOT_STACK_SIZE};

    use super::*;

    /// The source is its own id: compiled ASTs are cached by id and version.
    fn script(source: &str) -> ScriptSource {
        ScriptSource {
            id: source.into(),
            version: 1,
            name: "test".into(),
            source: source.into(),
            permissions: None,
        }
    }

    fn input() -> RunInput {
        RunInput {
            app_id: "a1".into(),
            app_slug: "demo".into(),
            invocation_id: "i1".into(),
            request: None,
            params: [("name".to_string(), "pi".to_string())].into(),
            event: serde_json::json!({ "kind": "async" }),
        }
    }

    fn executor() -> (Executor, SlotQueue) {
        Executor::new(Arc::new(Sandbox::new()), Host::default(), 1, 8)
    }

    /// A slot thread serving `queue` until the executor is dropped.
    fn serve(queue: SlotQueue) -> std::thread::JoinHandle<()> {
        serve_named(queue, "test-slot")
    }

    fn serve_named(queue: SlotQueue, name: &str) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name(name.into())
            .stack_size(SLOT_STACK_SIZE)
            .spawn(move || queue.serve())
            .expect("slot thread")
    }

    /// A runtime like the binary's: slot-sized stacks, threads marked.
    fn marked_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_stack_size(SLOT_STACK_SIZE)
            .on_thread_start(picloud_sandbox::mark_slot_stack)
            .build()
            .expect("runtime")
    }

    fn body(result: &RunResult) -> &[u8] {
        match &result.outcome {
            Outcome::Response(r) => &r.body,
            other => panic!("not a response: {other:?}"),
        }
    }

    async fn run(executor: &Executor, source: &str, limits: Limits) -> RunResult {
        executor
            .run(
                script(source),
                Arc::new(NoModules),
                limits,
                input(),
                Answers::Perform,
            )
            .await
            .expect("run")
    }

    #[test]
    fn a_lone_run_on_a_marked_runtime_thread_runs_inline() {
        // No slot thread serves the queue: a queued run would never answer.
        let (executor, _queue) = executor();
        let rt = marked_runtime();
        let result = rt.block_on(async {
            let task = tokio::spawn(async move {
                let result = run(&executor, "#{ hello: ctx.params.name }", Limits::DEFAULT).await;
                (result, executor.stats.clone())
            });
            tokio::time::timeout(Duration::from_secs(10), task).await
        });
        let (result, stats) = result.expect("answered inline").expect("task");
        assert_eq!(body(&result), br#"{"hello":"pi"}"#);
        assert_eq!(stats.inline.load(Ordering::Relaxed), 1);
        assert_eq!(stats.in_flight.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_run_on_an_unmarked_thread_goes_to_a_slot() {
        let (executor, queue) = executor();
        let slot = serve(queue);
        let result = run(&executor, "#{ hello: ctx.params.name }", Limits::DEFAULT).await;
        assert_eq!(body(&result), br#"{"hello":"pi"}"#);
        assert_eq!(executor.stats.inline.load(Ordering::Relaxed), 0);
        drop(executor);
        slot.join().expect("slot thread ends when the queue closes");
    }

    /// The scheduling policy (field 41 of `/proc/.../stat`) of this process's
    /// threads named `name`.
    #[cfg(target_os = "linux")]
    fn policies_of(name: &str) -> Vec<u32> {
        std::fs::read_dir("/proc/self/task")
            .expect("/proc/self/task")
            .filter_map(|task| {
                let path = task.ok()?.path();
                let comm = std::fs::read_to_string(path.join("comm")).ok()?;
                (comm.trim() == name).then_some(())?;
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().nth(41 - 3)?.parse().ok()
            })
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn slot_threads_run_under_sched_batch() {
        let (executor, queue) = executor();
        // A name no other test's thread has (`cargo test` runs tests side by side).
        let slot = serve_named(queue, "batch-slot");
        // The slot has started serving once it has answered a run.
        let result = run(&executor, "#{ hello: ctx.params.name }", Limits::DEFAULT).await;
        assert_eq!(body(&result), br#"{"hello":"pi"}"#);
        const SCHED_BATCH: u32 = 3;
        assert_eq!(policies_of("batch-slot"), vec![SCHED_BATCH]);
        drop(executor);
        slot.join().expect("slot thread ends when the queue closes");
    }

    #[test]
    fn a_run_while_another_is_in_flight_goes_to_a_slot() {
        let (executor, queue) = executor();
        let slot = serve(queue);
        let rt = marked_runtime();
        let stats = executor.stats.clone();
        rt.block_on(async {
            let slow = {
                let executor = executor.clone();
                let limits = Limits {
                    timeout_ms: 300,
                    max_operations: u64::MAX,
                    ..Limits::DEFAULT
                };
                tokio::spawn(async move { run(&executor, "loop {}", limits).await })
            };
            // The first run is inline (it was alone); the second finds it in flight.
            while stats.inline.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let second = {
                let executor = executor.clone();
                tokio::spawn(async move {
                    run(&executor, "#{ hello: ctx.params.name }", Limits::DEFAULT).await
                })
            };
            let second = second.await.expect("second run");
            assert_eq!(body(&second), br#"{"hello":"pi"}"#);
            let slow = slow.await.expect("slow run");
            assert_eq!(slow.outcome, Outcome::Timeout);
        });
        assert_eq!(stats.inline.load(Ordering::Relaxed), 1);
        drop(executor);
        slot.join().expect("slot thread ends when the queue closes");
    }
}
