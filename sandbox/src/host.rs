//! The host interface: what the node lends to one run.
//!
//! [`Host`] holds the services SDK modules call out to: outbound HTTP, the outbox
//! (events and deferred invokes), secrets and kv. The executor builds one per node and
//! passes it to [`Sandbox::run_with_host`](crate::Sandbox::run_with_host); the run
//! installs it in its thread-local state together with what the run knows of itself
//! ([`RunHost`]: app, script, per-run counters), so SDK functions reach it the way the
//! log and the deadline are reached (`run_state.rs`).
//!
//! Every answer a service gives a script passes through
//! [`answers::pass`](crate::answers), which makes the call, records its answer, or
//! answers it from a recording (a replay): one SDK module, three ways to meet the
//! world.
//!
//! Adding a service: an `Option<…>` field on [`Host`] (a trait object or a cheap
//! clonable client, never a storage type), per-run counters on [`RunHost`], and an
//! SDK module that calls [`with_run_host`] and hands each answer through
//! `answers::pass`. A missing service is not a panic: the SDK
//! function throws [`unavailable`], a catchable script error (this is what unit tests
//! and `Sandbox::run` without a host get).

use std::sync::Arc;
use std::time::Duration;

use picloud_net::HttpClient;
use rhai::EvalAltResult;

use crate::permissions::Permissions;
use crate::run_state;

/// Services the node provides to scripts. Cheap to clone (shared clients inside).
/// The default provides none.
#[derive(Clone, Default)]
pub struct Host {
    /// Outbound HTTP for `http::*`, guarded against SSRF.
    pub http: Option<HttpClient>,
    /// The outbox, for `events::emit` and `invoke::later`.
    pub queue: Option<Arc<dyn Queue>>,
    /// The app's secrets, for `secrets::get`.
    pub secrets: Option<Arc<dyn Secrets>>,
    /// The app's key-value store, for `kv::*`.
    pub kv: Option<Arc<dyn Kv>>,
}

/// Opens an app's secrets for its scripts. Called from a slot thread.
pub trait Secrets: Send + Sync {
    /// The plaintext of `name` in app `app_id`; `Ok(None)` if there is no such
    /// secret. `Err` is a message for the script that never contains a value.
    fn get(&self, app_id: &str, name: &str) -> Result<Option<String>, String>;
}

/// One app's key-value store. Called from a slot thread (an implementation may
/// block on its store, for at most `wait`: what is left of the run's wall-clock
/// budget). `Err` is a message for the script.
pub trait Kv: Send + Sync {
    fn get(
        &self,
        app_id: &str,
        key: &str,
        wait: Duration,
    ) -> Result<Option<serde_json::Value>, String>;
    fn set(
        &self,
        app_id: &str,
        key: &str,
        value: serde_json::Value,
        wait: Duration,
    ) -> Result<(), String>;
    /// Whether the key existed.
    fn delete(&self, app_id: &str, key: &str, wait: Duration) -> Result<bool, String>;
    /// Keys starting with `prefix`, in byte order, at most `limit`.
    fn list(
        &self,
        app_id: &str,
        prefix: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<String>, String>;
    /// Add `by` to the integer at `key` (a missing key counts as 0) atomically;
    /// answers the new value.
    fn incr(&self, app_id: &str, key: &str, by: i64, wait: Duration) -> Result<i64, String>;
}

/// Who is queueing work from a script (the run that calls `events::emit` or
/// `invoke::later`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    pub app_id: String,
    pub script_id: String,
    pub invocation_id: String,
    /// Asynchronous hops that led to this run (0 for a request or a cron tick).
    pub depth: u32,
}

/// Queues asynchronous invocations for scripts. Called from a slot thread (never
/// from the async runtime): an implementation may block on its store.
pub trait Queue: Send + Sync {
    /// Queue one invocation for every enabled subscriber of `name` in the caller's
    /// app; answers how many were queued. `Err` is a message for the script.
    fn emit(&self, from: &Caller, name: &str, payload: serde_json::Value) -> Result<i64, String>;
    /// Queue the caller's app's endpoint script named `script`; answers the
    /// invocation id.
    fn later(
        &self,
        from: &Caller,
        script: &str,
        payload: serde_json::Value,
    ) -> Result<String, String>;
}

impl Host {
    /// A host whose scripts may make outbound HTTP calls through `client`.
    pub fn with_http(mut self, client: HttpClient) -> Host {
        self.http = Some(client);
        self
    }

    /// A host whose scripts may queue work through `queue`.
    pub fn with_queue(mut self, queue: Arc<dyn Queue>) -> Host {
        self.queue = Some(queue);
        self
    }

    /// A host whose scripts read their app's secrets through `secrets`.
    pub fn with_secrets(mut self, secrets: Arc<dyn Secrets>) -> Host {
        self.secrets = Some(secrets);
        self
    }

    /// A host whose scripts keep state through `kv`.
    pub fn with_kv(mut self, kv: Arc<dyn Kv>) -> Host {
        self.kv = Some(kv);
        self
    }
}

/// The host as one run sees it: the services, who is calling, and counters that
/// bound what one invocation may do.
#[derive(Default)]
pub(crate) struct RunHost {
    pub(crate) services: Host,
    pub(crate) app_slug: String,
    pub(crate) script_id: String,
    /// `http::*` calls made so far by this run.
    pub(crate) http_calls: u32,
    /// The run as a queueing caller (app id, invocation id, depth).
    pub(crate) caller: Caller,
    /// `events::emit` and `invoke::later` calls made so far by this run.
    pub(crate) queued: u32,
    /// The script's permissions manifest; `None`: the app's defaults (everything).
    pub(crate) permissions: Option<Arc<Permissions>>,
    /// Secret values `secrets::get` handed to this run: masked in its captured log
    /// and its error message when it ends.
    pub(crate) revealed: Vec<String>,
    /// What the run records of its answers, or replays them from (`answers.rs`);
    /// `None`: calls are just made.
    pub(crate) tape: Option<crate::answers::Tape>,
}

impl RunHost {
    /// `Err(permission_denied)` unless the manifest (if any) grants `what`.
    pub(crate) fn permit(
        &self,
        module: &str,
        granted: impl FnOnce(&Permissions) -> bool,
        what: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        match &self.permissions {
            Some(p) if !granted(p) => Err(format!(
                "{module}: permission_denied: {what} is not in this script's permissions"
            )
            .into()),
            _ => Ok(()),
        }
    }
}

/// Runs `f` with the host of the run on this thread. Outside a run (which SDK
/// functions never are) it reports the service as unavailable.
pub(crate) fn with_run_host<R>(
    service: &str,
    f: impl FnOnce(&mut RunHost) -> Result<R, Box<EvalAltResult>>,
) -> Result<R, Box<EvalAltResult>> {
    run_state::with_state(|state| f(&mut state.host)).unwrap_or_else(|| Err(unavailable(service)))
}

/// The error of an SDK function whose service this host does not provide.
pub(crate) fn unavailable(service: &str) -> Box<EvalAltResult> {
    format!("{service}: not available on this host").into()
}
