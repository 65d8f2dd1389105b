//! Per-run state that engine callbacks reach through thread-locals.
//!
//! Engines are cached and shared by every executor thread, so their callbacks
//! (`on_progress`, `print`, `log::*`, the module resolver) cannot hold anything of one
//! run. A run executes start to finish on one thread, so each thread holds the state
//! of the run it is executing: [`RunGuard`] installs it and takes it back out (also on
//! unwind). The cancel flag is borrowed from the caller, so it sits in a scoped
//! thread-local, the one safe way to reach a borrow from a `'static` callback.
//!
//! `on_progress` also guards the thread's stack. Rhai bounds call depth and
//! expression depth separately, but their product at the ceilings (256 calls, each
//! deep in a 256-level expression) needs far more stack than any thread should have
//! (about 1 GiB in a debug build). So a run that has used [`STACK_BUDGET`] bytes of
//! stack below its entry point is stopped as if it had hit `max_call_levels`.
//! Every expression Rhai evaluates passes through `on_progress`, so evaluation
//! cannot recurse past the budget by more than one step.
//!
//! A stop is sticky. Some built-in functions swallow their callbacks' errors (`sort`
//! with a comparator falls back to comparing types), so the error that stops a run
//! may never reach the top. Once `on_progress` has stopped a run it stops every later
//! operation of it too, and the run's outcome is the stop ([`stopped`]), whatever value
//! the script returned. The operation budget (`max_operations`) is enforced here for
//! the same reason instead of by Rhai.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rhai::{Dynamic, Module, ParseError, Shared};

use crate::cache::Compiled;
use crate::host::RunHost;
use crate::log_buffer::LogBuffer;
use crate::outcome::LogLevel;

/// `on_progress` looks at the clock and the cancel flag once per this many operations:
/// often enough to stop within milliseconds, rarely enough to cost nothing measurable.
const CHECK_EVERY: u64 = 64;

/// Stack a run may use below the frame of `Sandbox::run`. The rest of
/// [`SLOT_STACK_SIZE`](crate::SLOT_STACK_SIZE) is headroom for the caller's frames and
/// for the (bounded) work Rhai does between two `on_progress` calls.
pub(crate) const STACK_BUDGET: usize = crate::SLOT_STACK_SIZE / 4 * 3;

thread_local! {
    static RUN: RefCell<Option<RunState>> = const { RefCell::new(None) };
    /// Stack address at the entry of the run on this thread (0: no run).
    static STACK_BASE: Cell<usize> = const { Cell::new(0) };
    /// Why the run on this thread was stopped, once it has been.
    static STOPPED: Cell<Option<Stop>> = const { Cell::new(None) };
}

scoped_tls::scoped_thread_local!(static CANCEL: AtomicBool);

/// A flag that is never raised, for runs without a cancel flag.
static NEVER: AtomicBool = AtomicBool::new(false);

/// The state of the run executing on this thread.
pub(crate) struct RunState {
    pub(crate) deadline: Instant,
    pub(crate) log: LogBuffer,
    /// Module scripts this run may import, looked up and compiled when it started.
    pub(crate) modules: HashMap<String, Result<Arc<Compiled>, ParseError>>,
    /// Modules being evaluated, outermost first: an import of one of these is a cycle.
    pub(crate) importing: Vec<String>,
    /// Modules evaluated by this run: a module is evaluated at most once per run.
    pub(crate) loaded: HashMap<String, Shared<Module>>,
    /// The node's services and this run's use of them (`host.rs`).
    pub(crate) host: RunHost,
}

impl RunState {
    pub(crate) fn new(deadline: Instant, max_log_bytes: usize) -> RunState {
        RunState {
            deadline,
            log: LogBuffer::new(max_log_bytes),
            modules: HashMap::new(),
            importing: Vec::new(),
            loaded: HashMap::new(),
            host: RunHost::default(),
        }
    }
}

/// Installs a [`RunState`] on this thread for the guard's lifetime. Whatever was there
/// before (a run that started a nested run) is put back afterwards.
pub(crate) struct RunGuard {
    previous: Option<RunState>,
    previous_base: usize,
    previous_stopped: Option<Stop>,
    finished: bool,
}

impl RunGuard {
    pub(crate) fn enter(state: RunState) -> RunGuard {
        let previous = RUN.with(|run| run.borrow_mut().replace(state));
        let previous_base = STACK_BASE.replace(stack_address());
        let previous_stopped = STOPPED.replace(None);
        RunGuard {
            previous,
            previous_base,
            previous_stopped,
            finished: false,
        }
    }

    /// Ends the run and hands back its state.
    pub(crate) fn finish(mut self) -> Option<RunState> {
        self.finished = true;
        STACK_BASE.set(self.previous_base);
        STOPPED.set(self.previous_stopped);
        let previous = self.previous.take();
        RUN.with(|run| std::mem::replace(&mut *run.borrow_mut(), previous))
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.finished {
            STACK_BASE.set(self.previous_base);
            STOPPED.set(self.previous_stopped);
            let previous = self.previous.take();
            // try_borrow_mut: never panic while unwinding.
            RUN.with(|run| {
                if let Ok(mut run) = run.try_borrow_mut() {
                    *run = previous;
                }
            });
        }
    }
}

/// An address in the current stack frame. Only compared, never dereferenced.
#[inline(never)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::ptr::from_ref(std::hint::black_box(&marker)) as usize
}

/// Bytes of stack used since the run on this thread started (0 outside a run).
fn stack_used() -> usize {
    match STACK_BASE.get() {
        0 => 0,
        base => base.abs_diff(stack_address()),
    }
}

/// Runs `f` with this run's state, or returns `None` when no run is active on this
/// thread (or the state is already borrowed further up the stack).
pub(crate) fn with_state<R>(f: impl FnOnce(&mut RunState) -> R) -> Option<R> {
    RUN.with(|run| run.try_borrow_mut().ok()?.as_mut().map(f))
}

/// Runs `f` with `cancel` visible to [`stop_reason`].
pub(crate) fn with_cancel<R>(cancel: Option<&AtomicBool>, f: impl FnOnce() -> R) -> R {
    CANCEL.set(cancel.unwrap_or(&NEVER), f)
}

/// Why a run must stop now, if it must.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Cancelled,
    DeadlinePassed,
    StackExhausted,
    OperationsExhausted,
}

impl Stop {
    const ALL: [Stop; 4] = [
        Stop::Cancelled,
        Stop::DeadlinePassed,
        Stop::StackExhausted,
        Stop::OperationsExhausted,
    ];

    /// The token `on_progress` terminates a run with, read back by `error.rs`.
    pub(crate) const fn token(self) -> &'static str {
        match self {
            Stop::Cancelled => "picloud:cancelled",
            Stop::DeadlinePassed => "picloud:deadline",
            Stop::StackExhausted => "picloud:stack",
            Stop::OperationsExhausted => "picloud:operations",
        }
    }

    /// The stop a termination token stands for.
    pub(crate) fn from_token(token: &str) -> Option<Stop> {
        Stop::ALL.into_iter().find(|stop| stop.token() == token)
    }
}

/// Why the run on this thread was stopped, if `on_progress` has stopped it.
pub(crate) fn stopped() -> Option<Stop> {
    STOPPED.get()
}

/// Checks the cancel flag and the deadline of the run on this thread.
pub(crate) fn stop_reason() -> Option<Stop> {
    if CANCEL.is_set() && CANCEL.with(|c| c.load(Ordering::Relaxed)) {
        return Some(Stop::Cancelled);
    }
    let deadline = RUN.with(|run| run.try_borrow().ok()?.as_ref().map(|s| s.deadline))?;
    (Instant::now() >= deadline).then_some(Stop::DeadlinePassed)
}

/// The engine's `on_progress` callback: a non-`()` return terminates the run with
/// `ErrorTerminated`, which scripts cannot catch. `max_operations` is the run's
/// operation budget (the engine itself has none, see the module docs).
pub(crate) fn on_progress(operations: u64, max_operations: u64) -> Option<Dynamic> {
    let stop = if let Some(stop) = STOPPED.get() {
        Some(stop)
    } else if operations > max_operations {
        Some(Stop::OperationsExhausted)
    } else if stack_used() > STACK_BUDGET {
        // Checked on every call: one deep step can use a lot of stack.
        Some(Stop::StackExhausted)
    } else if operations.is_multiple_of(CHECK_EVERY) {
        stop_reason()
    } else {
        None
    };
    stop.map(|stop| {
        STOPPED.set(Some(stop));
        Dynamic::from(stop.token())
    })
}

/// Stops the run on this thread now, as `on_progress` would: for SDK calls that
/// return after the deadline passed (or the run was cancelled) while they waited.
/// The stop is sticky and the error cannot be caught.
pub(crate) fn stop_now(stop: Stop) -> Box<rhai::EvalAltResult> {
    STOPPED.set(Some(stop));
    rhai::EvalAltResult::ErrorTerminated(Dynamic::from(stop.token()), rhai::Position::NONE).into()
}

/// What is left of the wall-clock budget of the run on this thread (zero outside
/// a run): the longest an SDK call may wait on the host.
pub(crate) fn remaining() -> std::time::Duration {
    with_state(|state| state.deadline.saturating_duration_since(Instant::now())).unwrap_or_default()
}

/// Ends the run here if its deadline passed (or it was cancelled) while an SDK
/// call waited; otherwise gives `result` back.
pub(crate) fn after_wait<T>(
    result: Result<T, Box<rhai::EvalAltResult>>,
) -> Result<T, Box<rhai::EvalAltResult>> {
    match stop_reason() {
        Some(stop) => Err(stop_now(stop)),
        None => result,
    }
}

/// Captures one log line of the run on this thread (dropped when none is active).
pub(crate) fn log(level: LogLevel, message: &str) {
    with_state(|state| state.log.push(level, message));
}
