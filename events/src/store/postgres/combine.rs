//! Group commit on PostgreSQL: the appends one node makes at the same time share
//! one call of `picloud_append`, so they share its locks, its `pg_notify` and
//! its commit.
//!
//! Why: every append takes the short global lock that keeps positions and xids
//! in the same order (migration 0001), and every notifying commit takes
//! PostgreSQL's database-wide notification-queue lock. Concurrent appends
//! therefore commit one at a time, and eight writers got 0.37 of the rate of
//! eight plain `INSERT`s (BENCHMARKS.md). One call for all of them pays those
//! once.
//!
//! How: an append that finds no call of this node's in flight makes its own
//! call at once, exactly as before (no hand-off, no added latency). One that
//! arrives while a call is in flight queues its writes and waits. When the call
//! ends — or its caller goes away — whoever held the turn hands it, with every
//! queued append, to a task that sends them as one call, and so on until the
//! queue is empty. Nothing waits on a timer.
//!
//! Since at most one such call is in flight, they all go over one connection of
//! their own, the append connection, kept between calls: no pool hand-out and
//! hand-back per append, and the same backend process each time, its caches
//! warm (the pool hands out the connection idle longest, so one writer's
//! appends used to visit every backend in turn: 97 µs per call inside the
//! function against 65 µs on one connection). It is taken out of the pool when
//! first needed, pinged before use after sitting idle (as the pool does), and
//! replaced after any error that could have left it unsound.
//!
//! The appends stay independent:
//! - an append whose expected version fails gets its conflict, and the others
//!   are sent again without it (the function writes nothing when one fails);
//! - two appends to the same stream never share a call (the function checks
//!   each stream once); the later one goes in the next call;
//! - if a shared call fails for any other reason, each append is sent again on
//!   its own, so an error reaches only the append that caused it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use sqlx::postgres::PgPool;
use sqlx::{Connection, PgConnection};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::append::{self, Outcome};
use super::check_alive;
use crate::error::StoreError;
use crate::event::{Appended, EncodedEvent, StreamWrite};
use crate::store::sql;

/// The most events one shared call carries (an append larger than this still
/// goes, on its own).
const MAX_EVENTS: usize = 1_024;

type Reply = oneshot::Sender<Result<Vec<Appended>, StoreError>>;

/// One queued append.
struct Job {
    writes: Vec<StreamWrite<EncodedEvent>>,
    reply: Reply,
}

#[derive(Default)]
struct State {
    /// A call of this node's is in flight (someone holds the `Turn`).
    busy: bool,
    queue: Vec<Job>,
}

struct Inner {
    pool: PgPool,
    runtime: Handle,
    state: Mutex<State>,
    /// The append connection, between calls, and when its last call ended.
    held: Mutex<Option<(PgConnection, Instant)>>,
}

/// Lock `mutex`. Both mutexes here guard plain moves (a flag, a vector, a
/// connection): a panic cannot leave them half-changed, so a poisoned lock is
/// still sound.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The append connection: the one the last call left, pinged first if it
    /// sat idle for `PING_AFTER_IDLE`; else a new one, taken out of the pool
    /// (which opens another in its place when it needs one).
    async fn connection(&self) -> Result<PgConnection, StoreError> {
        let held = lock(&self.held).take();
        if let Some((mut conn, since)) = held
            && check_alive(&mut conn, since.elapsed()).await.is_ok()
        {
            return Ok(conn);
        }
        Ok(self.pool.acquire().await?.detach())
    }

    /// Keep `conn` for the next call if it is `sound`. A connection that is not
    /// — or one whose call was cancelled, never given back — is dropped, which
    /// closes it and so ends any session lock its backend held.
    fn give_back(&self, conn: PgConnection, sound: bool) {
        if sound {
            *lock(&self.held) = Some((conn, Instant::now()));
        }
    }

    /// One append in a call of its own, with the usual retries.
    async fn append_alone(
        &self,
        writes: &[StreamWrite<EncodedEvent>],
    ) -> Result<Vec<Appended>, StoreError> {
        let mut conn = self.connection().await?;
        let result = append::append_on(&mut conn, writes).await;
        self.give_back(conn, sound(&result));
        result
    }

    /// One call for the writes of several appends.
    async fn append_combined(
        &self,
        writes: &[&StreamWrite<EncodedEvent>],
    ) -> Result<Outcome, StoreError> {
        let mut conn = self.connection().await?;
        let result = append::append_combined(&mut conn, writes).await;
        self.give_back(conn, sound(&result));
        result
    }
}

/// Whether a connection is fit for the next call after answering `result`: a
/// success, or an answer about the data. Any other error (a lost connection, a
/// protocol error, an error of the server whose cause is unknown) drops it.
fn sound<T>(result: &Result<T, StoreError>) -> bool {
    matches!(
        result,
        Ok(_) | Err(StoreError::VersionConflict(_) | StoreError::Invalid(_))
    )
}

pub(super) struct Combiner {
    inner: Arc<Inner>,
}

impl Combiner {
    /// Must be made inside the tokio runtime the store runs on.
    pub(super) fn new(pool: PgPool) -> Result<Self, StoreError> {
        let runtime = Handle::try_current()
            .map_err(|e| StoreError::Invalid(format!("the store needs a tokio runtime: {e}")))?;
        Ok(Combiner {
            inner: Arc::new(Inner {
                pool,
                runtime,
                state: Mutex::default(),
                held: Mutex::default(),
            }),
        })
    }

    /// `append_many` with no documents (`Store::append_projected`).
    pub(super) async fn append(
        &self,
        writes: &[StreamWrite<EncodedEvent>],
    ) -> Result<Vec<Appended>, StoreError> {
        sql::validate(writes)?;
        let queued = {
            let mut state = self.inner.state();
            if state.busy {
                let (reply, answer) = oneshot::channel();
                state.queue.push(Job {
                    writes: writes.to_vec(),
                    reply,
                });
                Some(answer)
            } else {
                state.busy = true;
                None
            }
        };
        match queued {
            None => {
                // Dropped at the end, or if this future is: either way the
                // queue is handed on.
                let _turn = Turn(self.inner.clone());
                self.inner.append_alone(writes).await
            }
            Some(answer) => answer.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the append was dropped before it ran: the store is shutting down".into(),
                ))
            }),
        }
    }

    /// Close the append connection (`Store::close`).
    pub(super) async fn close(&self) {
        let held = lock(&self.inner.held).take();
        if let Some((conn, _)) = held {
            let _ = conn.close().await;
        }
    }
}

/// The right to have a call in flight. Dropping it hands the queued appends to a
/// new task (which holds the turn until they are answered), or clears `busy`.
struct Turn(Arc<Inner>);

impl Drop for Turn {
    fn drop(&mut self) {
        let jobs = {
            let mut state = self.0.state();
            if state.queue.is_empty() {
                state.busy = false;
                return;
            }
            std::mem::take(&mut state.queue)
        };
        let turn = Turn(self.0.clone());
        // If the runtime is shutting down the task is dropped unrun: the jobs'
        // callers get "dropped before it ran", and the turn passes on again.
        self.0.runtime.spawn(async move {
            run(&turn.0, jobs).await;
            // The appenders just answered usually append again at once: let
            // them queue behind this turn, so they go together in the next
            // call instead of the first of them finding the turn free and going
            // alone (the others then waiting a whole call for it).
            tokio::task::yield_now().await;
            drop(turn);
        });
    }
}

/// Answer every job: in calls of distinct streams, at most `MAX_EVENTS` each, in
/// the order they came.
async fn run(inner: &Inner, mut jobs: Vec<Job>) {
    while !jobs.is_empty() {
        let (group, rest) = next_group(jobs);
        jobs = rest;
        run_group(inner, group).await;
    }
}

/// The first job, and each later one whose streams are new to the group while
/// the group stays within `MAX_EVENTS`; then the others.
fn next_group(jobs: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut streams: HashSet<&str> = HashSet::new();
    let mut events = 0;
    let mut take = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let size: usize = job.writes.iter().map(|w| w.events.len()).sum();
        let fits = i == 0
            || (events + size <= MAX_EVENTS
                && job
                    .writes
                    .iter()
                    .all(|w| !streams.contains(w.stream.as_str())));
        if fits {
            streams.extend(job.writes.iter().map(|w| w.stream.as_str()));
            events += size;
        }
        take.push(fits);
    }
    let mut group = Vec::new();
    let mut rest = Vec::new();
    for (job, take) in jobs.into_iter().zip(take) {
        if take {
            group.push(job)
        } else {
            rest.push(job)
        }
    }
    (group, rest)
}

/// One call for the whole group; a conflict takes its job out and the rest go
/// again; any other failure sends each job on its own.
async fn run_group(inner: &Inner, mut group: Vec<Job>) {
    loop {
        if group.len() <= 1 {
            for job in group {
                alone(inner, job).await;
            }
            return;
        }
        let writes: Vec<&StreamWrite<EncodedEvent>> =
            group.iter().flat_map(|job| job.writes.iter()).collect();
        let outcome = inner.append_combined(&writes).await;
        drop(writes);
        match outcome {
            Ok(Outcome::Done(appended)) => {
                let mut appended = appended.into_iter();
                for job in group {
                    let mine = appended.by_ref().take(job.writes.len()).collect();
                    // A caller that went away no longer wants its answer.
                    let _ = job.reply.send(Ok(mine));
                }
                return;
            }
            Ok(Outcome::Conflict { index, conflict }) => {
                let mut first = 0;
                let culprit = group.iter().position(|job| {
                    first += job.writes.len();
                    index < first
                });
                match culprit {
                    Some(culprit) => {
                        let job = group.remove(culprit);
                        let _ = job.reply.send(Err(conflict.into()));
                    }
                    // Not one of ours: cannot happen; answer each on its own.
                    None => {
                        for job in group {
                            alone(inner, job).await;
                        }
                        return;
                    }
                }
            }
            Err(_) => {
                for job in group {
                    alone(inner, job).await;
                }
                return;
            }
        }
    }
}

/// One job in a call of its own, with the usual retries.
async fn alone(inner: &Inner, job: Job) {
    let answer = inner.append_alone(&job.writes).await;
    let _ = job.reply.send(answer);
}
