//! The node in its cluster: its row of the registry (`nodes`, `Store::put_node`),
//! its heartbeat, and the states it goes through (`up` → `draining` → `gone`).
//!
//! A node writes its row when it starts serving (`join`), when it starts to drain
//! and when it leaves. On PostgreSQL, where other nodes may share the store, it
//! also beats every `HEARTBEAT` (one small `UPDATE`, the only timer a cluster
//! node runs while idle) and, after each beat, marks `gone` any node silent for
//! `GONE_AFTER`, which frees that node's outbox leases so the survivors run its
//! deliveries at once (`Store::reap_nodes`). A SQLite store is one node: no
//! heartbeat, nothing to reap, and an idle node stays without wake-ups.
//!
//! A node reaps only after its own beats have succeeded for `GONE_AFTER`, so that
//! after an outage of the store (when every node's last beat is old) the first
//! node back does not declare the others gone before they could beat again.
//! Nodes compare their own clocks with the others' heartbeats: keep them in sync
//! (NTP) to well within `GONE_AFTER`.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use picloud_events::{Backend, NodeRow, NodeState, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::executor::SlotStats;

/// How often a node of a PostgreSQL cluster writes its row.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Silence after which a node counts as gone: three missed heartbeats.
pub const GONE_AFTER: Duration = Duration::from_secs(15);

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// This node's membership.
pub struct Membership {
    store: Arc<dyn Store>,
    stats: Arc<SlotStats>,
    /// The row as last written (address filled in by `join`).
    row: Mutex<NodeRow>,
    state: watch::Sender<NodeState>,
    beat: Mutex<Option<JoinHandle<()>>>,
}

impl Membership {
    pub fn new(store: Arc<dyn Store>, stats: Arc<SlotStats>, id: &str, slots: usize) -> Self {
        let now = Utc::now().timestamp_micros();
        Membership {
            store,
            stats,
            row: Mutex::new(NodeRow {
                id: id.to_owned(),
                address: String::new(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                started_at: now,
                last_seen_at: now,
                state: NodeState::Up,
                slots: i64::try_from(slots).unwrap_or(i64::MAX),
                in_flight: 0,
            }),
            state: watch::channel(NodeState::Up).0,
            beat: Mutex::new(None),
        }
    }

    pub fn state(&self) -> NodeState {
        *self.state.borrow()
    }

    /// Changes of `state` (the dispatcher stops claiming once it is not `up`).
    pub fn watch(&self) -> watch::Receiver<NodeState> {
        self.state.subscribe()
    }

    /// The row as it is now: this moment as last seen, the runs in flight.
    pub fn current(&self) -> NodeRow {
        let mut row = self
            .row
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        row.last_seen_at = Utc::now().timestamp_micros();
        row.state = self.state();
        row.in_flight = i64::try_from(self.stats.in_flight()).unwrap_or(i64::MAX);
        row
    }

    /// Write this node's row, `up`, before it serves (its address comes with
    /// `join`): the outbox rows of requests it runs where it accepts them are
    /// leased to a node the registry knows.
    pub async fn register(&self) {
        if let Err(e) = self.store.put_node(&self.current()).await {
            tracing::warn!(error = %e, "could not register this node in the cluster registry");
        }
    }

    /// Register as serving at `address`, and (PostgreSQL) start beating.
    pub async fn join(self: &Arc<Self>, address: &str) {
        self.row
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .address = address.to_owned();
        // A store that does not answer now is told by the heartbeat's retries
        // (PostgreSQL) or the next write; serving does not wait for the registry.
        if let Err(e) = self.store.put_node(&self.current()).await {
            tracing::warn!(error = %e, "could not register this node in the cluster registry");
        }
        if self.store.backend() == Backend::Postgres {
            let task = tokio::spawn(beat(Arc::downgrade(self)));
            *self
                .beat
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        }
    }

    /// Enter `state` and write the row (best effort: the store may be down).
    /// Leaving stops the heartbeat first, so a beat does not write an older state
    /// over `gone` (only a beat's statement already sent could still land later;
    /// the row then reads `gone` once it is `GONE_AFTER` old).
    pub async fn set(&self, state: NodeState) {
        if state == NodeState::Gone {
            let beat = self
                .beat
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(task) = beat {
                task.abort();
                // Wait until it is dropped: no new beat starts after this.
                let _ = task.await;
            }
        }
        self.state.send_replace(state);
        if let Err(e) = self.store.put_node(&self.current()).await {
            tracing::warn!(error = %e, state = state.as_str(), "could not write this node's state to the registry");
        }
    }

    /// Every node of the registry as it is now: this node's own row live, and a
    /// node silent for `GONE_AFTER` shown `gone` even if nobody marked it yet.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, picloud_events::StoreError> {
        let me = self.current();
        let silent_since = me.last_seen_at - micros(GONE_AFTER);
        let mut rows = self.store.nodes().await?;
        let mut found = false;
        for row in &mut rows {
            if row.id == me.id {
                *row = me.clone();
                found = true;
            } else if row.last_seen_at < silent_since {
                row.state = NodeState::Gone;
            }
        }
        if !found {
            rows.push(me);
        }
        Ok(rows)
    }
}

/// The heartbeat loop; ends when the membership is dropped (or aborted by `set`).
async fn beat(membership: Weak<Membership>) {
    let mut healthy_since: Option<Instant> = None;
    let mut failing = false;
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let Some(me) = membership.upgrade() else {
            return;
        };
        let row = me.current();
        if let Err(e) = me.store.put_node(&row).await {
            if !failing {
                tracing::warn!(error = %e, "heartbeat: cannot reach the cluster registry; retrying every {} s", HEARTBEAT.as_secs());
            }
            failing = true;
            healthy_since = None;
            continue;
        }
        if failing {
            tracing::info!("heartbeat: the cluster registry answers again");
            failing = false;
        }
        let since = *healthy_since.get_or_insert_with(Instant::now);
        if since.elapsed() < GONE_AFTER {
            continue;
        }
        match me
            .store
            .reap_nodes(row.last_seen_at - micros(GONE_AFTER))
            .await
        {
            Ok(gone) => {
                for id in gone {
                    tracing::warn!(node = %id, "a node stopped beating: marked gone, its outbox leases freed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat: reaping silent nodes failed"),
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(task) = self
            .beat
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}
