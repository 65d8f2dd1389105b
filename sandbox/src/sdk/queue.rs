//! `events::emit(name, payload)` and `invoke::later(script, payload)`: queue
//! asynchronous work through the node's outbox (the host's [`Queue`]).
//!
//! Both stay inside the caller's app. Each queued run carries the caller's depth
//! plus one in `ctx.event.depth`; past [`MAX_DEPTH`] hops the call throws, which
//! cuts emit loops (A emits what triggers A). One run may queue at most
//! [`MAX_QUEUED_PER_RUN`] times.

use rhai::plugin::*;

use crate::answers::{Keep, Recordable, pass};
use crate::host::{Queue, unavailable, with_run_host};
use crate::json_value;

/// The deepest chain of asynchronous hops a script may start.
pub const MAX_DEPTH: u32 = 8;
/// `events::emit` + `invoke::later` calls one run may make.
pub const MAX_QUEUED_PER_RUN: u32 = 100;

#[export_module]
pub mod events_functions {
    /// Queue one run of every enabled subscriber of `name` in this app; answers how
    /// many runs were queued (0 when nobody listens).
    #[rhai_fn(volatile, return_raw)]
    pub fn emit(name: &str, payload: Dynamic) -> Result<i64, Box<EvalAltResult>> {
        super::queue(
            "events::emit",
            "events",
            name,
            payload,
            |q, from, payload| q.emit(from, name, payload),
        )
    }

    #[rhai_fn(name = "emit", volatile, return_raw)]
    pub fn emit_name(name: &str) -> Result<i64, Box<EvalAltResult>> {
        emit(name, Dynamic::UNIT)
    }
}

#[export_module]
pub mod invoke_functions {
    /// Queue a run of this app's endpoint script `script`; answers its invocation id.
    #[rhai_fn(volatile, return_raw)]
    pub fn later(script: &str, payload: Dynamic) -> Result<String, Box<EvalAltResult>> {
        super::queue(
            "invoke::later",
            "invoke",
            script,
            payload,
            |q, from, payload| q.later(from, script, payload),
        )
    }

    #[rhai_fn(name = "later", volatile, return_raw)]
    pub fn later_name(script: &str) -> Result<String, Box<EvalAltResult>> {
        later(script, Dynamic::UNIT)
    }
}

/// Queues through the host; what the outbox answers (a count, an id) passes
/// through `answers::pass`, so a replay queues nothing.
fn queue<R: Recordable>(
    call: &'static str,
    module: &str,
    target: &str,
    payload: Dynamic,
    f: impl FnOnce(&dyn Queue, &crate::host::Caller, serde_json::Value) -> Result<R, String>,
) -> Result<R, Box<EvalAltResult>> {
    let payload = json_value::to_json(&payload)
        .map_err(|e| -> Box<EvalAltResult> { format!("{module}: payload: {e}").into() })?;
    let ask = || serde_json::json!({ "target": target, "payload": payload.clone() });
    pass(call, Keep::Value, ask, || enqueue(module, &payload, f))
}

fn enqueue<R>(
    module: &str,
    payload: &serde_json::Value,
    f: impl FnOnce(&dyn Queue, &crate::host::Caller, serde_json::Value) -> Result<R, String>,
) -> Result<R, Box<EvalAltResult>> {
    let (queue, caller) = with_run_host(module, |host| {
        let Some(queue) = host.services.queue.clone() else {
            return Err(unavailable(module));
        };
        if host.caller.depth >= MAX_DEPTH {
            return Err(format!(
                "{module}: depth limit reached ({MAX_DEPTH} asynchronous hops); an emit loop?"
            )
            .into());
        }
        if host.queued >= MAX_QUEUED_PER_RUN {
            return Err(format!(
                "{module}: at most {MAX_QUEUED_PER_RUN} emits and invokes per run"
            )
            .into());
        }
        host.queued += 1;
        Ok((queue, host.caller.clone()))
    })?;
    f(queue.as_ref(), &caller, payload.clone()).map_err(|e| format!("{module}: {e}").into())
}
