//! # picloud-actors
//!
//! The living part of a node: actors fed by the event log.
//!
//! - `app`: `AppActor`, one per app, commands → events with expected versions
//!   (`app/decide.rs` is the pure decision).
//! - `catalog`: the in-memory read model of apps, scripts, routes and users that
//!   the hot path and the admin API read.
//! - `keys`: the instance master key; secrets are sealed under it (XChaCha20-Poly1305).
//! - `executor`: `ExecutorSlot` actors, each owning a dedicated Rhai thread, behind
//!   one bounded queue (load shedding).
//! - `projector`: actors that keep read models following the log.
//! - `dispatcher`: runs the outbox (queued asynchronous invocations) with leases,
//!   retries with backoff, dead letters.
//! - `recorder`: the batching writer of invocation records.
//! - `services`: the node's side of the SDK's `secrets` and `kv` (catalog + key, store).
//! - `scheduler`: one task per enabled cron trigger, claiming each tick once.
//! - `node`: this node in its cluster: the registry row, heartbeat, drain states.
//! - `supervisor`: the root supervisor that restarts failed children.
//! - `runtime`: everything above started together; what the API holds.
//! - `bootstrap`: the owner user and token of a new instance.
//! - `users`: user commands (roles, passwords, tokens, sessions) and the owners invariant.
//! - `routing`, `validate`: route patterns and input rules (pure).

pub mod app;
pub mod bootstrap;
pub mod catalog;
pub mod dispatcher;
pub mod executor;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod projector;
pub mod queue;
pub mod recorder;
pub mod routing;
pub mod runtime;
pub mod scheduler;
pub mod services;
pub mod supervisor;
pub mod users;
pub mod validate;

#[cfg(test)]
mod test_support;

pub use app::{AppCommand, CommandError, CommandOutcome, SecretText};
pub use catalog::{AppEntry, Catalog};
pub use keys::{KeySource, MasterKey};
pub use runtime::{Invocation, Runtime, RuntimeConfig, RuntimeError};
pub use users::{UserCommand, UserOutcome};
