//! [`Sandbox`]: compile-checks scripts and runs them to an [`Outcome`] within limits.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rhai::{Dynamic, Engine, Scope};

use crate::answers::{Answers, Tape};
use crate::cache::AstCache;
use crate::ctx::{self, RunInput};
use crate::engine::{self, Libraries};
use crate::host::{Caller, Host, RunHost};
use crate::limits::Limits;
use crate::outcome::{CompileError, Outcome, RunResult};
use crate::run_state::{self, RunGuard, RunState};
use crate::script::{ModuleSource, ScriptSource};
use crate::{error, resolver, response};

/// Most engines kept at once. Each distinct [`Limits`] gets one; past this many (only
/// reachable with many differently-tuned scripts) the cache starts over.
const MAX_ENGINES: usize = 64;

/// The script runtime of a node: shared through an `Arc` by all executor threads.
pub struct Sandbox {
    libraries: Libraries,
    engines: DashMap<Limits, Arc<Engine>>,
    scripts: AstCache,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            libraries: Libraries::new(),
            engines: DashMap::new(),
            scripts: AstCache::default(),
        }
    }

    /// Compile-checks a script at write time, under the default limits (no execution).
    pub fn compile(&self, source: &str) -> Result<(), CompileError> {
        self.compile_with_limits(source, &Limits::DEFAULT)
    }

    /// Compile-checks a script under the limits it will run with: `max_expr_depth`
    /// and the size of literals are checked while parsing.
    ///
    /// Parsing recurses once per nesting level: at the `max_expr_depth` ceiling a debug
    /// build needs more than the 2 MiB of an async runtime's worker thread, so the
    /// parse runs on a short-lived thread with a [`SLOT_STACK_SIZE`](crate::SLOT_STACK_SIZE)
    /// stack, whatever thread calls this.
    pub fn compile_with_limits(&self, source: &str, limits: &Limits) -> Result<(), CompileError> {
        let engine = self.engine(limits);
        let parse = || {
            engine
                .compile(source)
                .map(|_| ())
                .map_err(|err| error::compile_error(&err))
        };
        std::thread::scope(|scope| {
            let parser = std::thread::Builder::new()
                .name("picloud-compile".into())
                .stack_size(crate::SLOT_STACK_SIZE)
                .spawn_scoped(scope, parse)
                .map_err(|err| {
                    internal_compile_error(&format!("cannot start a compiler thread: {err}"))
                })?;
            parser
                .join()
                .unwrap_or_else(|_| Err(internal_compile_error("the compiler panicked")))
        })
    }

    /// Runs one script to completion on the calling thread, which should have a stack
    /// of at least [`SLOT_STACK_SIZE`](crate::SLOT_STACK_SIZE). Never panics, never
    /// runs past `limits.timeout_ms`; if `cancel` becomes true the run stops and is
    /// reported as [`Outcome::Timeout`]. No host services: SDK calls that need one
    /// (`http::*`) throw; see [`Sandbox::run_with_host`].
    pub fn run(
        &self,
        script: &ScriptSource,
        modules: &dyn ModuleSource,
        limits: &Limits,
        input: RunInput,
        cancel: Option<&AtomicBool>,
    ) -> RunResult {
        self.run_with_host(script, modules, limits, input, cancel, &Host::default())
    }

    /// [`Sandbox::run`] with the node's services lent to the script. Time the script
    /// spends waiting on them counts against its wall-clock limit.
    pub fn run_with_host(
        &self,
        script: &ScriptSource,
        modules: &dyn ModuleSource,
        limits: &Limits,
        input: RunInput,
        cancel: Option<&AtomicBool>,
        host: &Host,
    ) -> RunResult {
        self.run_answered(
            script,
            modules,
            limits,
            input,
            cancel,
            host,
            Answers::Perform,
        )
    }

    /// [`Sandbox::run_with_host`] whose calls to the outside world are made,
    /// recorded, or answered from a recording (a replay: no call is made, except
    /// reading a secret's current value), as `answers` says.
    #[allow(clippy::too_many_arguments)]
    pub fn run_answered(
        &self,
        script: &ScriptSource,
        modules: &dyn ModuleSource,
        limits: &Limits,
        input: RunInput,
        cancel: Option<&AtomicBool>,
        host: &Host,
        answers: Answers,
    ) -> RunResult {
        let started = Instant::now();
        let deadline = started
            .checked_add(Duration::from_millis(limits.timeout_ms))
            .unwrap_or(started + Duration::from_secs(86_400 * 365));
        let mut state = RunState::new(deadline, limits.max_log_bytes);
        state.host = RunHost {
            services: host.clone(),
            app_slug: input.app_slug.clone(),
            script_id: script.id.clone(),
            http_calls: 0,
            caller: Caller {
                app_id: input.app_id.clone(),
                script_id: script.id.clone(),
                invocation_id: input.invocation_id.clone(),
                depth: input
                    .event
                    .get("depth")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|d| u32::try_from(d).ok())
                    .unwrap_or(0),
            },
            queued: 0,
            permissions: script.permissions.clone(),
            revealed: Vec::new(),
            tape: Tape::new(answers),
        };
        let guard = RunGuard::enter(state);

        let outcome = catch_unwind(AssertUnwindSafe(|| {
            run_state::with_cancel(cancel, || self.execute(script, modules, limits, &input))
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(script = %script.id, version = script.version, panic = %what, "script run panicked");
            Outcome::script_error(format!("internal error while running the script: {what}"))
        });

        let mut outcome = outcome;
        let (logs, logs_truncated, tape) = match guard.finish() {
            Some(state) => {
                let (mut lines, truncated) = state.log.into_parts();
                mask_secrets(&state.host.revealed, &mut lines, &mut outcome);
                (lines, truncated, state.host.tape)
            }
            None => (Vec::new(), false, None),
        };
        let (recording, unanswered) = Tape::finish(tape);
        RunResult {
            outcome,
            logs,
            logs_truncated,
            duration: started.elapsed(),
            recording,
            unanswered,
        }
    }

    /// Drops cached ASTs of a script (all versions): called when a script is deleted.
    pub fn evict(&self, script_id: &str) {
        self.scripts.evict(script_id);
    }

    fn execute(
        &self,
        script: &ScriptSource,
        modules: &dyn ModuleSource,
        limits: &Limits,
        input: &RunInput,
    ) -> Outcome {
        let engine = self.engine(limits);
        let compiled = match self
            .scripts
            .get_or_compile(&engine, script, limits.max_expr_depth)
        {
            Ok(compiled) => compiled,
            Err(err) => return error::from_parse_error(&err),
        };
        if !compiled.imports.is_empty() {
            let found = resolver::prefetch(
                &compiled,
                modules,
                &self.scripts,
                &engine,
                limits.max_expr_depth,
            );
            run_state::with_state(|state| state.modules = found);
        }
        // Compiling may have used up a short deadline already.
        if run_state::stop_reason().is_some() {
            return Outcome::Timeout;
        }

        let mut scope = Scope::new();
        scope.push_constant("ctx", ctx::build(input));
        let result = engine.eval_ast_with_scope::<Dynamic>(&mut scope, &compiled.ast);
        // A stop swallowed on its way up (see `run_state.rs`) still decides the outcome.
        if let Some(stop) = run_state::stopped() {
            return error::stop_outcome(stop);
        }
        match result {
            Ok(value) => match response::from_value(&value) {
                Ok(response) => Outcome::Response(response),
                Err(message) => Outcome::script_error(message),
            },
            Err(err) => error::from_eval_error(&err, &script.name),
        }
    }

    /// The engine for a limits profile, built on first use.
    fn engine(&self, limits: &Limits) -> Arc<Engine> {
        if let Some(engine) = self.engines.get(limits) {
            return Arc::clone(&engine);
        }
        if self.engines.len() >= MAX_ENGINES {
            self.engines.clear();
        }
        let engine = self
            .engines
            .entry(*limits)
            .or_insert_with(|| Arc::new(engine::build(limits, &self.libraries)));
        Arc::clone(&engine)
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// Replaces every secret value the run read with `[secret]` in its log lines and
/// its error message, longest value first (one secret may contain another).
fn mask_secrets(revealed: &[String], logs: &mut [crate::LogLine], outcome: &mut Outcome) {
    if revealed.is_empty() {
        return;
    }
    let mut values: Vec<&str> = revealed.iter().map(String::as_str).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mask = |text: &mut String| {
        for value in &values {
            if text.contains(value) {
                *text = text.replace(value, SECRET_MASK);
            }
        }
    };
    for line in logs {
        mask(&mut line.message);
    }
    if let Outcome::ScriptError { message, .. } = outcome {
        mask(message);
    }
}

/// What a secret value reads as in a run's log and error message.
pub const SECRET_MASK: &str = "[secret]";

fn internal_compile_error(message: &str) -> CompileError {
    CompileError {
        message: format!("internal error: {message}"),
        line: None,
        position: None,
    }
}

#[cfg(test)]
mod tests;
