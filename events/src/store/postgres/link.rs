//! The node's link: one connection, owned by one task, that both LISTENs on
//! `picloud_events` (and `picloud_leases`, freed outbox leases: the cluster's
//! dispatchers wake on it) and carries the appends without documents (grouped
//! into calls as `combine.rs` says).
//!
//! Why one connection for both: a notifying commit makes PostgreSQL signal
//! every other backend listening in the database, and the signalled backend
//! then wakes, reads the queue and forwards the notification. When the node's
//! listener was a connection of its own, every append paid that for a
//! notification the node did not need (it bumps its own watch channel after
//! each append). PostgreSQL does not signal a backend for its own
//! notifications, so appending over the listening connection saves the signal
//! and the second backend's wake-up; the notification itself still comes back
//! with the call's answer, and is ignored by its process id. Other nodes'
//! backends are still signalled, as they must be. (The backend reads its own
//! notification from the queue before it answers, work the other backend used
//! to do on the other core: sustained appends gained nothing measurable. What
//! the link does win is in BENCHMARKS.md: no ping after idling, one connection
//! fewer, no second wake-up of the node's followers per append.)
//!
//! Since one call is in flight at a time, every call goes over this one
//! connection: no pool hand-out per append, and the same backend each time, its
//! caches warm (when appends took the pool's connection idle longest, one
//! writer's visited every backend in turn: 97 µs per call inside the function
//! against 65 µs on one connection).
//!
//! The task waits on two things at once: the queue of appends and the
//! connection's socket. While idle it only reads the socket, so other nodes'
//! notifications arrive as before, and a connection that breaks is noticed at
//! once (no ping before use is needed). Notifications that arrive during a call
//! are buffered by the connection and handled after it. Appends reach the task
//! through a channel: the appender's wake-up of the task and the task's answer
//! are task switches, usually on the same runtime thread.
//!
//! Notifications are only a hint (the payload is ignored), and they are lost
//! while the connection is down, so the task bumps the watch channel after
//! every (re)connect: a follower then reads the log and finds whatever it
//! missed. A connection that breaks, or that a call may have left unsound, is
//! dropped and replaced at once; while that fails, the task retries with
//! exponential backoff, and each append that arrives meanwhile makes an attempt
//! of its own and gets the error if it fails. Nothing runs on a timer while
//! connected.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::combine::{self, Job};
use super::known::Known;
use super::{ACQUIRE_TIMEOUT, CHANNEL, LEASES_CHANNEL};
use crate::error::StoreError;
use crate::event::{Appended, EncodedEvent, StreamWrite};
use crate::store::{bump, sql};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

enum Message {
    Append(Job),
    /// Close the connection, then answer.
    Close(oneshot::Sender<()>),
}

pub(super) struct Link {
    messages: mpsc::UnboundedSender<Message>,
    task: JoinHandle<()>,
}

impl Link {
    /// Start the link's task (lazily connected: the first attempt is made at
    /// once, in the task). Must be called inside the store's tokio runtime.
    pub(super) fn spawn(
        options: PgConnectOptions,
        wake: watch::Sender<u64>,
        leases: watch::Sender<u64>,
    ) -> Link {
        let (messages, inbox) = mpsc::unbounded_channel();
        let wakes = Wakes {
            events: wake,
            leases,
        };
        let task = tokio::spawn(run(options, wakes, inbox));
        Link { messages, task }
    }

    /// `append_many` with no documents (`Store::append_projected`).
    pub(super) async fn append(
        &self,
        writes: &[StreamWrite<EncodedEvent>],
    ) -> Result<Vec<Appended>, StoreError> {
        sql::validate(writes)?;
        let (reply, answer) = oneshot::channel();
        self.messages
            .send(Message::Append(Job::new(writes.to_vec(), reply)))
            .map_err(|_| closed())?;
        answer.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Close the connection and end the task (`Store::close`).
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.messages.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
        self.task.abort();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable(
        "the append was dropped before it ran: the store is shutting down".into(),
    )
}

/// The watch channels the link bumps.
struct Wakes {
    /// New events may be readable (`Store::wakeups`).
    events: watch::Sender<u64>,
    /// Outbox leases were freed (`Store::lease_wakeups`).
    leases: watch::Sender<u64>,
}

impl Wakes {
    /// After a (re)connect: notifications may have been missed, so both.
    fn both(&self) {
        bump(&self.events);
        bump(&self.leases);
    }

    /// One notification: freed leases are signalled whoever sent them (the node
    /// frees them over its pool, not the link); events only from other backends
    /// (the node bumps its own watch after each append).
    fn note(&self, channel: &str, from_other: bool) {
        if channel == LEASES_CHANNEL {
            bump(&self.leases);
        } else if from_other {
            bump(&self.events);
        }
    }
}

/// A listening connection and its backend's process id.
struct Connected {
    listener: PgListener,
    pid: u32,
}

impl Connected {
    async fn open(pool: &PgPool) -> Result<Connected, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        // A lost connection is replaced here, by `open`, not inside `try_recv`.
        listener.eager_reconnect(false);
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut listener)
            .await?;
        // Last, so that an idle link shows `LISTEN …` in `pg_stat_activity`.
        listener.listen_all([LEASES_CHANNEL, CHANNEL]).await?;
        Ok(Connected {
            listener,
            pid: u32::try_from(pid).unwrap_or_default(),
        })
    }

    /// Take every notification buffered during a call.
    fn drain(&mut self, wakes: &Wakes) {
        while let Some(note) = self.listener.next_buffered() {
            wakes.note(note.channel(), note.process_id() != self.pid);
        }
    }
}

async fn run(options: PgConnectOptions, wakes: Wakes, mut inbox: mpsc::UnboundedReceiver<Message>) {
    // A pool of one, made only to hand PgListener its connection, and a new one
    // after a drop: a connection given back is closed, never handed out again
    // (one dropped as unsound must not come back). Lazy: the first connect
    // happens in the loop below.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(None)
        .max_lifetime(None)
        .after_release(|_, _| Box::pin(async { Ok(false) }))
        .connect_lazy_with(options);
    let mut link: Option<Connected> = None;
    // The versions this link's appends left streams at (`known.rs`).
    let mut known = Known::default();
    let mut backoff = MIN_BACKOFF;
    let mut down = false;
    // The connection was lost (logged once; the reconnect is logged too).
    let mut lost = false;
    // Appends taken from the inbox and not answered yet.
    let mut pending: Vec<Job> = Vec::new();
    // A close asked for: answered once `pending` is.
    let mut closing: Option<oneshot::Sender<()>> = None;
    loop {
        if pending.is_empty()
            && let Some(done) = closing.take()
        {
            return close(link, pool, done).await;
        }
        let conn = match &mut link {
            Some(conn) => conn,
            None => match Connected::open(&pool).await {
                Ok(conn) => {
                    if down || lost {
                        tracing::info!("the store's link to PostgreSQL is connected again");
                    }
                    backoff = MIN_BACKOFF;
                    down = false;
                    lost = false;
                    // Commits may have been lost with the last connection.
                    known.clear();
                    // Whoever waits may have missed a notification; let them look.
                    wakes.both();
                    link.insert(conn)
                }
                Err(e) => {
                    // Said once when the link goes down, then at each retry of
                    // its own (not for every append that tries meanwhile).
                    if !down || pending.is_empty() {
                        tracing::warn!(error = %e, retry_in = ?backoff, "the store's link to PostgreSQL is down");
                    }
                    down = true;
                    bump(&wakes.events);
                    let error = StoreError::from(e);
                    for job in pending.drain(..) {
                        let _ = job.reply.send(Err(error.clone()));
                    }
                    if closing.is_some() {
                        continue;
                    }
                    // Retry after the backoff, or at once for a new append.
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        message = inbox.recv() => match message {
                            Some(Message::Append(job)) => pending.push(job),
                            Some(Message::Close(done)) => return close(None, pool, done).await,
                            None => return,
                        },
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        if !pending.is_empty() {
            let served = pending.len();
            let sound = combine::serve(&mut conn.listener, &mut pending, &mut known).await;
            conn.drain(&wakes);
            if !sound {
                link = None;
                continue;
            }
            if closing.is_some() {
                continue;
            }
            // Several appenders just answered usually append again at once: let
            // them queue, so they go together in the next call instead of the
            // first of them going alone (the others then waiting a whole call).
            // A lone appender is not kept waiting for that.
            if served > 1 {
                tokio::task::yield_now().await;
            }
        }
        tokio::select! {
            biased;
            message = inbox.recv() => {
                let mut message = message;
                while let Some(next) = message.take() {
                    match next {
                        Message::Append(job) => pending.push(job),
                        // Answer what was queued before it, then close.
                        Message::Close(done) => {
                            closing = Some(done);
                            break;
                        }
                    }
                    message = inbox.try_recv().ok();
                }
                if pending.is_empty() && closing.is_none() {
                    // Every sender is gone: the store was dropped.
                    return;
                }
            }
            // Cancel-safe: a message is taken off the socket only when it is
            // returned, and notifications read during a call are buffered.
            note = conn.listener.try_recv() => match note {
                Ok(Some(note)) => wakes.note(note.channel(), note.process_id() != conn.pid),
                // `None`: the connection was lost (and not replaced: eager
                // reconnection is off). Replace it, and bump once reconnected.
                Ok(None) => {
                    tracing::warn!("the store's link to PostgreSQL was lost; reconnecting");
                    lost = true;
                    link = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the store's link to PostgreSQL failed; reconnecting");
                    lost = true;
                    link = None;
                }
            },
        }
    }
}

async fn close(link: Option<Connected>, pool: PgPool, done: oneshot::Sender<()>) {
    drop(link);
    pool.close().await;
    let _ = done.send(());
}
