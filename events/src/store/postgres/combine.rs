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
//! How: the node's link task (`link.rs`) owns the connection the calls go over
//! and makes one call at a time. Appends that arrive while a call is in flight
//! wait in its queue, and the next call takes all of them (`serve`). Nothing
//! waits on a timer.
//!
//! The appends stay independent:
//! - an append whose expected version fails gets its conflict, and the others
//!   are sent again without it (the function writes nothing when one fails);
//! - two appends to the same stream never share a call (the function checks
//!   each stream once); the later one goes in the next call;
//! - a shared call that sent a known version that was behind (`known.rs`) is
//!   sent again once, its streams forgotten, the locked way;
//! - if a shared call fails for any other reason, each append is sent again on
//!   its own, so an error reaches only the append that caused it.

use std::collections::HashSet;

use sqlx::postgres::PgListener;
use tokio::sync::oneshot;

use super::append::{self, Outcome};
use super::known::Known;
use crate::error::StoreError;
use crate::event::{Appended, EncodedEvent, StreamWrite};

/// The most events one shared call carries (an append larger than this still
/// goes, on its own).
const MAX_EVENTS: usize = 1_024;

pub(super) type Reply = oneshot::Sender<Result<Vec<Appended>, StoreError>>;

/// One queued append.
pub(super) struct Job {
    writes: Vec<StreamWrite<EncodedEvent>>,
    pub(super) reply: Reply,
    /// Goes in a call of its own: a shared call it was in failed.
    alone: bool,
}

impl Job {
    pub(super) fn new(writes: Vec<StreamWrite<EncodedEvent>>, reply: Reply) -> Self {
        Job {
            writes,
            reply,
            alone: false,
        }
    }

    fn events(&self) -> usize {
        self.writes.iter().map(|w| w.events.len()).sum()
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

/// Answer the jobs in `pending` over `conn`, in calls of distinct streams, at
/// most `MAX_EVENTS` each, in the order they came. Stops early, and answers
/// `false`, once a call leaves the connection unsound: the jobs not answered
/// yet are left in `pending` for the next connection. `known` is the link's.
pub(super) async fn serve(
    conn: &mut PgListener,
    pending: &mut Vec<Job>,
    known: &mut Known,
) -> bool {
    while !pending.is_empty() {
        let (group, rest) = next_group(std::mem::take(pending));
        *pending = rest;
        let (sound, back) = run_group(conn, group, known).await;
        if !back.is_empty() {
            let rest = std::mem::replace(pending, back);
            pending.extend(rest);
        }
        if !sound {
            return false;
        }
    }
    true
}

/// The first job, and each later one that may share a call and whose streams
/// are new to the group while the group stays within `MAX_EVENTS`; then the
/// others.
fn next_group(jobs: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut streams: HashSet<&str> = HashSet::new();
    let mut events = 0;
    let mut take = Vec::with_capacity(jobs.len());
    let first_alone = jobs.first().is_some_and(|job| job.alone);
    for (i, job) in jobs.iter().enumerate() {
        let size = job.events();
        let fits = i == 0
            || (!first_alone
                && !job.alone
                && events + size <= MAX_EVENTS
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
/// again; a race (a known version that was behind) sends the group once more
/// the locked way; any other failure gives every job back, each to go on its
/// own. Answers whether the connection is still sound, and the jobs given back.
async fn run_group(
    conn: &mut PgListener,
    mut group: Vec<Job>,
    known: &mut Known,
) -> (bool, Vec<Job>) {
    // Until a call races: then the group's streams go the locked way.
    let mut trusted = true;
    loop {
        if group.len() <= 1 {
            let Some(job) = group.pop() else {
                return (true, group);
            };
            let answer = append::append_on(conn, &job.writes, known).await;
            let sound = sound(&answer);
            // A caller that went away no longer wants its answer.
            let _ = job.reply.send(answer);
            return (sound, group);
        }
        let outcome = {
            let writes: Vec<&StreamWrite<EncodedEvent>> =
                group.iter().flat_map(|job| job.writes.iter()).collect();
            let outcome = append::append_combined(conn, &writes, trusted.then_some(&*known)).await;
            if let Ok(None) = outcome {
                known.forget(writes);
            }
            outcome
        };
        match outcome {
            Ok(Some(Outcome::Done(appended))) => {
                known.learn(&appended);
                let mut appended = appended.into_iter();
                for job in group {
                    let mine = appended.by_ref().take(job.writes.len()).collect();
                    let _ = job.reply.send(Ok(mine));
                }
                return (true, Vec::new());
            }
            Ok(Some(Outcome::Conflict { index, conflict })) => {
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
                    None => return (true, each_alone(group)),
                }
            }
            Ok(None) if trusted => trusted = false,
            // Raced the locked way too (another node's call with a known
            // version): each goes alone, with its attempts.
            Ok(None) => return (true, each_alone(group)),
            Err(e) => {
                let sound = sound::<()>(&Err(e));
                return (sound, each_alone(group));
            }
        }
    }
}

fn each_alone(mut jobs: Vec<Job>) -> Vec<Job> {
    for job in &mut jobs {
        job.alone = true;
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EncodedEvent, ExpectedVersion, Metadata};

    fn job(streams: &[&str], alone: bool) -> Job {
        let event = EncodedEvent::new("E", "{}".to_owned(), &Metadata::default()).expect("encode");
        let writes = streams
            .iter()
            .map(|s| StreamWrite {
                stream: (*s).to_owned(),
                expected: ExpectedVersion::Any,
                events: vec![event.clone()],
            })
            .collect();
        let (reply, _) = oneshot::channel();
        Job {
            writes,
            reply,
            alone,
        }
    }

    fn streams(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.writes[0].stream.as_str()).collect()
    }

    #[test]
    fn a_group_takes_distinct_streams_in_order() {
        let (group, rest) = next_group(vec![
            job(&["a"], false),
            job(&["b"], false),
            job(&["a"], false),
            job(&["c"], false),
        ]);
        assert_eq!(streams(&group), ["a", "b", "c"]);
        assert_eq!(streams(&rest), ["a"]);
    }

    #[test]
    fn a_job_given_back_goes_alone() {
        let (group, rest) = next_group(vec![
            job(&["a"], true),
            job(&["b"], false),
            job(&["c"], true),
        ]);
        assert_eq!(streams(&group), ["a"]);
        assert_eq!(streams(&rest), ["b", "c"]);
        let (group, rest) = next_group(rest);
        assert_eq!(streams(&group), ["b"]);
        assert_eq!(streams(&rest), ["c"]);
    }
}
