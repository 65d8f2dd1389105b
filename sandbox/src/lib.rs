//! PiCloud's script sandbox: runs one Rhai script version to an [`Outcome`] within
//! [`Limits`], and nothing of the host is reachable from the script.
//!
//! The host (the executor-slot actors) keeps one [`Sandbox`] per node behind an `Arc`
//! and calls [`Sandbox::run`] on threads with [`SLOT_STACK_SIZE`] stacks: its
//! dedicated slots, or a runtime thread declared with [`mark_slot_stack`].
//! The API calls [`Sandbox::compile`] and [`parse_overrides`] when a script is saved.
//!
//! # Layout
//!
//! - `sandbox.rs` — [`Sandbox`]: engine and AST caches, `compile`, `run`, `evict`.
//! - `limits.rs` — [`Limits`], per-script [`Overrides`], admin [`Ceilings`] (env vars).
//! - `engine.rs` — one locked-down engine per limits profile (no `eval`, no `sleep`,
//!   no file modules; `print`/`debug` captured).
//! - `run_state.rs` — per-run state reached by the shared engines' callbacks:
//!   deadline, cancel flag, captured log, modules; `log_buffer.rs` caps the log.
//! - `cache.rs` — compiled ASTs per script version; `resolver.rs` — `import` of the
//!   app's module scripts ([`ModuleSource`]).
//! - `ctx.rs` — [`RunInput`] and the `ctx` constant; `response.rs` — the script's
//!   value as a [`Response`]; `error.rs` — Rhai errors as outcomes.
//! - `data_guard.rs` — catches maps grown by index past `max_map_size`.
//! - `json_value.rs` — JSON ⇄ Rhai values, depth-bounded.
//! - `host.rs` — [`Host`]: the services the node lends to a run (outbound HTTP),
//!   installed per run beside the run state.
//! - `answers.rs` — the one passage of every answer from outside ([`Answers`]):
//!   perform the call, record its answer ([`Recording`]), or replay it.
//! - `sdk.rs`, `sdk/{json,log,time,crypto,http}.rs` — the script SDK modules; `http`
//!   calls through `picloud-net`, which guards against SSRF.
//!
//! # Example
//!
//! ```
//! use picloud_sandbox::{Limits, NoModules, Outcome, RunInput, Sandbox, ScriptSource};
//!
//! let sandbox = Sandbox::new();
//! let script = ScriptSource {
//!     id: "s1".into(),
//!     version: 1,
//!     name: "hello".into(),
//!     source: r#"#{ hello: ctx.params.name }"#.into(),
//!     permissions: None,
//! };
//! let input = RunInput {
//!     app_id: "a1".into(),
//!     app_slug: "demo".into(),
//!     invocation_id: "i1".into(),
//!     request: None,
//!     params: [("name".to_string(), "pi".to_string())].into(),
//!     event: serde_json::json!({ "kind": "async" }),
//! };
//! let result = sandbox.run(&script, &NoModules, &Limits::DEFAULT, input, None);
//! let Outcome::Response(response) = result.outcome else { panic!() };
//! assert_eq!(response.body, r#"{"hello":"pi"}"#);
//! ```

mod answers;
mod cache;
mod ctx;
mod data_guard;
mod engine;
mod error;
mod host;
mod json_value;
mod limits;
mod log_buffer;
mod outcome;
mod permissions;
mod resolver;
mod response;
mod run_state;
mod sandbox;
mod script;
mod sdk;

pub use answers::{Answer, Answers, MAX_RECORDING_BYTES, Recording, Reply};
pub use ctx::{HttpRequest, RunInput};
pub use host::{Caller, Host, Kv, Queue, Secrets};
pub use limits::{
    CEILING_ENV_PREFIX, Ceilings, DEFAULT_ENV_PREFIX, EnvOverlay, KNOB_NAMES, LimitSettings,
    Limits, OverrideError, Overrides, RecordSetting, parse_overrides,
};
pub use outcome::{CompileError, LogLevel, LogLine, Outcome, Response, RunResult};
pub use permissions::{Permissions, PermissionsError, valid_secret_name};
pub use picloud_net::{HttpClient, HttpLimits, HttpPolicy};
pub use sandbox::Sandbox;
pub use script::{ModuleSource, NoModules, ScriptSource};

/// Stack size for any thread that calls [`Sandbox::run`]. Tests prove that scripts at
/// the ceilings of `max_call_levels` and `max_expr_depth` fit in it, in debug builds
/// too. Only touched pages are backed by memory, so a large reservation is cheap.
pub const SLOT_STACK_SIZE: usize = 64 * 1024 * 1024;

thread_local! {
    static ON_SLOT_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Declare that the current thread was built with a stack of at least
/// [`SLOT_STACK_SIZE`], so a run may execute on it (see [`on_slot_stack`]). Call
/// it first thing on such a thread, for example from a runtime's
/// `on_thread_start` when its `thread_stack_size` is `SLOT_STACK_SIZE`.
pub fn mark_slot_stack() {
    ON_SLOT_STACK.with(|on| on.set(true));
}

/// Whether the current thread was declared with [`mark_slot_stack`]: a thread
/// that was not may be too small for a script at the recursion ceilings.
pub fn on_slot_stack() -> bool {
    ON_SLOT_STACK.with(std::cell::Cell::get)
}
