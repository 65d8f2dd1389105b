//! Executor slots: N dedicated OS threads that evaluate Rhai (blocking CPU work that
//! must never run on the async reactor), behind one bounded queue.
//!
//! Each slot is an `ExecutorSlot` actor that owns its thread: the thread reports its
//! own end to the actor, which then stops with an error so its supervisor restarts
//! it. When the queue is full `submit` refuses at once (`Overloaded`): the edge sheds
//! load with a 503 rather than letting latency grow without bound. Dropping the
//! `Executor` closes the queue; slots finish what is queued and their threads end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flume::{Receiver, Sender, TrySendError};

use picloud_sandbox::{
    Host, Limits, ModuleSource, RunInput, RunResult, SLOT_STACK_SIZE, Sandbox, ScriptSource,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

/// One run waiting for a slot.
pub struct Job {
    pub script: ScriptSource,
    pub modules: Arc<dyn ModuleSource>,
    pub limits: Limits,
    pub input: RunInput,
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
    pub busy: AtomicUsize,
    pub queued: AtomicUsize,
}

#[derive(Clone)]
pub struct Executor {
    queue: Sender<Job>,
    pub slots: usize,
    pub stats: Arc<SlotStats>,
}

/// The receiving side, handed to the slot actors.
#[derive(Clone)]
pub struct SlotQueue {
    /// Every slot waits on the same queue; a job wakes one of them (no lock
    /// around the receiver, whose waiting holder would wake the other slot).
    queue: Receiver<Job>,
    sandbox: Arc<Sandbox>,
    /// The node's services lent to every run (outbound HTTP).
    host: Host,
    stats: Arc<SlotStats>,
}

impl Executor {
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
        (
            Executor {
                queue: tx,
                slots: slots.max(1),
                stats: stats.clone(),
            },
            SlotQueue {
                queue: rx,
                sandbox,
                host,
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

    /// Run a script on a slot and wait for its result.
    pub async fn run(
        &self,
        script: ScriptSource,
        modules: Arc<dyn ModuleSource>,
        limits: Limits,
        input: RunInput,
    ) -> Result<RunResult, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job {
            script,
            modules,
            limits,
            input,
            reply,
        })?;
        rx.await.map_err(|_| SubmitError::ShuttingDown)
    }
}

impl SlotQueue {
    /// The loop of one slot thread: take a job, run it, answer; end when the queue closes.
    fn serve(&self) {
        loop {
            let Ok(job) = self.queue.recv() else {
                return;
            };
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.busy.fetch_add(1, Ordering::Relaxed);
            let result = self.sandbox.run_with_host(
                &job.script,
                job.modules.as_ref(),
                &job.limits,
                job.input,
                None,
                &self.host,
            );
            self.stats.busy.fetch_sub(1, Ordering::Relaxed);
            // The requester may have gone away; the run still counted.
            let _ = job.reply.send(result);
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
