//! One git deploy per app across the cluster. The stream `gitdeploy-<app>` is a
//! register: each event (`GitDeployLease`) holds the whole state — who deploys
//! now and until when, the pushed commit it deploys, whether a push arrived
//! meanwhile, and the commit the last deploy made live — and every change is
//! appended at the version it was decided on. Two nodes deciding at once
//! conflict on that version; the loser reads again and decides again. The same
//! on SQLite and PostgreSQL, with nothing held open while a deploy runs.
//!
//! A push either starts a deploy (it took the lease), is queued behind the
//! running one (which deploys once more when it ends: the branch tip then
//! includes this push), or needs nothing (that commit is being deployed, or is
//! live). A node that dies while deploying holds the lease until it expires;
//! the next push after that deploys.

use chrono::{DateTime, Utc};
use picloud_events::domain::stream;
use picloud_events::{ExpectedVersion, Metadata, NewEvent, Store, StoreError};
use serde::{Deserialize, Serialize};

/// The event type of the register.
const LEASE_EVENT: &str = "GitDeployLease";
/// How long a deploy may hold the lease; a deploy is stopped well before
/// (`super::DEPLOY_LIMIT`), so a live holder never loses it.
pub const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Conflicting decisions in a row before giving up (each one is another
/// node's write: someone is deploying).
const ATTEMPTS: usize = 16;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployLease {
    /// The running deploy's claim (unique per deploy) and node, until `until`.
    pub claim: Option<String>,
    pub node: Option<String>,
    pub until: Option<DateTime<Utc>>,
    /// The commit the push that started the running deploy named (`after`).
    pub pushed: Option<String>,
    /// A push arrived while the deploy ran: deploy again when it ends.
    pub again: bool,
    /// The commit the last successful deploy made live, and the binding it was
    /// deployed under (its `bound_at`: a new binding starts with nothing live).
    pub live: Option<String>,
    pub live_binding: Option<DateTime<Utc>>,
}

impl DeployLease {
    fn held(&self, now: DateTime<Utc>) -> bool {
        self.claim.is_some() && self.until.is_some_and(|until| until > now)
    }
}

/// What a push leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Push {
    /// This push took the lease: deploy now, as the claim.
    Start { claim: String },
    /// A deploy runs; it deploys again when it ends.
    Queued,
    /// The pushed commit is being deployed now.
    AlreadyDeploying,
    /// The pushed commit is live.
    UpToDate,
}

/// Who writes: the node, and the metadata of its events.
pub struct Writer<'a> {
    pub store: &'a dyn Store,
    pub app_id: &'a str,
    pub node: &'a str,
    pub metadata: &'a Metadata,
}

impl Writer<'_> {
    async fn read(&self) -> Result<(Option<u64>, DeployLease), StoreError> {
        let stream = stream::git_deploy(self.app_id);
        let Some(version) = self.store.stream_version(&stream).await? else {
            return Ok((None, DeployLease::default()));
        };
        let state = self
            .store
            .read_stream(&stream, version, 1)
            .await?
            .pop()
            .and_then(|event| serde_json::from_value(event.data).ok())
            .unwrap_or_default();
        Ok((Some(version), state))
    }

    /// Appends `state` if the stream is still at `version`; `false` on a conflict.
    async fn write(&self, version: Option<u64>, state: &DeployLease) -> Result<bool, StoreError> {
        let data = serde_json::to_value(state).map_err(|e| StoreError::Database(e.to_string()))?;
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let event = NewEvent::new(LEASE_EVENT, data, self.metadata.clone());
        match self
            .store
            .append(&stream::git_deploy(self.app_id), expected, vec![event])
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::VersionConflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A push of `pushed` (its `after`, when the body names one) arrived for the
    /// binding made at `bound_at`.
    pub async fn push(
        &self,
        pushed: Option<&str>,
        bound_at: DateTime<Utc>,
    ) -> Result<Push, StoreError> {
        for _ in 0..ATTEMPTS {
            let now = Utc::now();
            let (version, state) = self.read().await?;
            let same = |commit: &Option<String>| pushed.is_some() && commit.as_deref() == pushed;
            let (next, outcome) = if state.held(now) {
                if same(&state.pushed) {
                    return Ok(Push::AlreadyDeploying);
                }
                if state.again {
                    return Ok(Push::Queued);
                }
                (
                    DeployLease {
                        again: true,
                        ..state
                    },
                    Push::Queued,
                )
            } else {
                if same(&state.live) && state.live_binding == Some(bound_at) {
                    return Ok(Push::UpToDate);
                }
                let claim = uuid::Uuid::now_v7().to_string();
                (
                    DeployLease {
                        claim: Some(claim.clone()),
                        node: Some(self.node.to_owned()),
                        until: Some(now + LEASE),
                        pushed: pushed.map(str::to_owned),
                        again: false,
                        live: state.live,
                        live_binding: state.live_binding,
                    },
                    Push::Start { claim },
                )
            };
            if self.write(version, &next).await? {
                return Ok(outcome);
            }
        }
        Err(busy())
    }

    /// The deploy of `claim` ended, making `live` (a commit, under the binding made
    /// at that time) live when it succeeded. `true` when a push arrived meanwhile:
    /// the lease is renewed, deploy again.
    pub async fn done(
        &self,
        claim: &str,
        live: Option<(String, DateTime<Utc>)>,
    ) -> Result<bool, StoreError> {
        for _ in 0..ATTEMPTS {
            let now = Utc::now();
            let (version, state) = self.read().await?;
            if state.claim.as_deref() != Some(claim) {
                // The lease expired and another deploy took it.
                return Ok(false);
            }
            let (live, live_binding) = match &live {
                Some((commit, bound_at)) => (Some(commit.clone()), Some(*bound_at)),
                None => (state.live.clone(), state.live_binding),
            };
            let next = if state.again {
                DeployLease {
                    claim: Some(claim.to_owned()),
                    node: Some(self.node.to_owned()),
                    until: Some(now + LEASE),
                    pushed: None,
                    again: false,
                    live,
                    live_binding,
                }
            } else {
                DeployLease {
                    live,
                    live_binding,
                    ..DeployLease::default()
                }
            };
            if self.write(version, &next).await? {
                return Ok(state.again);
            }
        }
        Err(busy())
    }
}

fn busy() -> StoreError {
    StoreError::Unavailable("the app's git deploy lease kept changing; try again".into())
}
