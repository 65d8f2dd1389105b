//! PiCloud's domain events: what happened to apps, scripts, routes, users and
//! invocations, and the folds that turn a stream of them into state.
//!
//! Streams:
//! - `app-<uuid>`: one app with its domains, scripts (every version) and routes;
//! - `slug-<slug>`, `domain-<host>`, `username-<name>`: uniqueness claims, appended
//!   with `NoStream`/`Exact` in the same transaction as the app or user event, so
//!   two nodes can never both win a name;
//! - `user-<uuid>`: a user, their API tokens and sessions; `instance`: one-time
//!   bootstrap; `owners`: the set of owners (guards "never without an owner");
//!   `master-key`: the check value of the key secrets are sealed under;
//! - `invocation-<uuid>`: the record of one run.
//!
//! Every type is serialised adjacently tagged (`{"type": …, "data": …}`) so the
//! variant name is the event's `type` column and the payload its `data`.

pub mod app;
pub mod claim;
pub mod codec;
pub mod invocation;
pub mod user;

pub use app::{
    App, AppEvent, AppRole, GitBinding, GitDeployError, Route, Script, ScriptKind, ScriptVersion,
    Secret, Trigger, TriggerKind,
};
pub use claim::ClaimEvent;
pub use codec::{DomainEvent, decode, decode_new, encode};
pub use invocation::{
    InvocationEvent, InvocationRecord, InvocationRequest, InvocationState, InvocationStatus,
    InvocationsProjection, OutboxProjection, QueuedRequest, RUNS_PER_EVENT,
};
pub use user::{InstanceEvent, Role, Token, TokenKind, User, UserEvent};

/// Stream names, in one place so nobody spells them twice.
pub mod stream {
    pub fn app(app_id: &str) -> String {
        format!("app-{app_id}")
    }
    pub fn slug(slug: &str) -> String {
        format!("slug-{slug}")
    }
    pub fn domain(domain: &str) -> String {
        format!("domain-{domain}")
    }
    pub fn user(user_id: &str) -> String {
        format!("user-{user_id}")
    }
    pub fn username(name: &str) -> String {
        format!("username-{name}")
    }
    pub fn invocation(invocation_id: &str) -> String {
        format!("invocation-{invocation_id}")
    }
    /// An app's recorded synchronous runs (`InvocationsRecorded`).
    pub fn runs(app_id: &str) -> String {
        format!("runs-{app_id}")
    }
    /// The ticks a cron trigger has claimed (`CronTickClaimed`), one per scheduled
    /// time: the expected version makes each tick fire once cluster-wide.
    pub fn cron(trigger_id: &str) -> String {
        format!("cron-{trigger_id}")
    }
    /// Who deploys an app's git binding now (`GitDeployLease`, the whole state in
    /// each event): one git deploy per app across the cluster.
    pub fn git_deploy(app_id: &str) -> String {
        format!("gitdeploy-{app_id}")
    }
    /// A webhook delivery's dedupe claim (`key`: a digest of its delivery id).
    pub fn webhook_delivery(trigger_id: &str, key: &str) -> String {
        format!("webhook-{trigger_id}-{key}")
    }
    pub const INSTANCE: &str = "instance";
    /// The set of owner user ids: every change to it appends here with the expected
    /// version, so concurrent demotions can never leave the instance without an owner.
    pub const OWNERS: &str = "owners";
    /// The master key's check value (`MasterKeyRegistered`).
    pub const MASTER_KEY: &str = "master-key";
}
