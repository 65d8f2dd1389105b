//! `Schedule`: an expression in a zone, and the instants it fires at.

use std::collections::VecDeque;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::error::CronError;
use crate::expression::{DstPolicy, Expression};
use crate::zone;

/// The `cron` crate enumerates years from 1970 up to 2100.
const LAST_YEAR: i32 = 2100;
const FIRST_WALL: NaiveDateTime = match NaiveDate::from_ymd_opt(1969, 12, 31) {
    Some(day) => day.and_time(NaiveTime::MIN),
    None => NaiveDateTime::MIN,
};

/// A cron schedule in an IANA time zone. Cheap to clone; parse once, ask often.
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: Expression,
    timezone: Tz,
}

impl Schedule {
    /// Validate a 6-field expression (seconds first) and an IANA zone name.
    ///
    /// ```
    /// use picloud_cron::Schedule;
    /// let every_five_minutes = Schedule::parse("0 */5 * * * *", "Europe/Berlin")?;
    /// assert_eq!(every_five_minutes.expression(), "0 */5 * * * *");
    /// assert_eq!(Schedule::parse("*/5 * * * *", "UTC").unwrap_err().field(), "schedule");
    /// assert_eq!(Schedule::parse("0 0 9 * * *", "Mars/Olympus").unwrap_err().field(), "timezone");
    /// # Ok::<(), picloud_cron::CronError>(())
    /// ```
    pub fn parse(expr: &str, timezone: &str) -> Result<Schedule, CronError> {
        let expression = Expression::parse(expr)?;
        let timezone = timezone
            .trim()
            .parse::<Tz>()
            .map_err(|_| CronError::UnknownTimezone(timezone.to_owned()))?;
        Ok(Schedule {
            expression,
            timezone,
        })
    }

    /// The expression, fields separated by single spaces.
    pub fn expression(&self) -> &str {
        &self.expression.source
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// How this schedule meets daylight-saving transitions.
    pub fn dst_policy(&self) -> DstPolicy {
        self.expression.policy
    }

    /// The first fire strictly after `t`; `None` when the schedule has no more
    /// (the `cron` crate stops at the year 2100).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.upcoming(t).next()
    }

    /// The fires strictly after `t`, strictly increasing.
    pub fn upcoming(&self, t: DateTime<Utc>) -> Upcoming<'_> {
        // A wall-clock schedule can still fire, in the second half of a coming
        // overlap, at wall times before the wall clock's now: start that much earlier.
        let rewind = match self.expression.policy {
            DstPolicy::FixedTime => 0,
            DstPolicy::WallClock => zone::rewind_ahead(self.timezone, t),
        };
        // The crate's ticks start with 1970 (and it misreads negative years); fires
        // before `t` are dropped below, so an earlier start is only slower.
        let start = if t.year() < 1970 {
            Some(FIRST_WALL)
        } else {
            zone::wall(self.timezone, t)
                .and_then(|now| now.checked_sub_signed(Duration::seconds(rewind)))
        };
        Upcoming {
            schedule: self,
            cursor: start,
            primary: None,
            repeats: VecDeque::new(),
            floor: t,
        }
    }

    /// Where a trigger stands after downtime: the last tick it fired (or was created
    /// at) and the time now. At most one missed tick is due, the latest, however
    /// many windows passed.
    pub fn catch_up(&self, last_tick: DateTime<Utc>, now: DateTime<Utc>) -> CatchUp {
        let next = self.next_after(now);
        let first_missed = self.next_after(last_tick).filter(|t| *t <= now);
        let Some(first_missed) = first_missed else {
            return CatchUp {
                due: None,
                skipped: false,
                next,
            };
        };
        // Fires are whole seconds, at least a second apart: search the last second
        // `s` after which a fire still lies at or before `now`.
        let fires_by_now = |s: i64| {
            last_tick
                .checked_add_signed(Duration::seconds(s))
                .and_then(|from| self.next_after(from))
                .is_some_and(|t| t <= now)
        };
        let (mut lo, mut hi) = (0_i64, (now - last_tick).num_seconds().max(0) + 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fires_by_now(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let due = last_tick
            .checked_add_signed(Duration::seconds(lo))
            .and_then(|from| self.next_after(from))
            .filter(|t| *t <= now)
            .unwrap_or(first_missed);
        CatchUp {
            due: Some(due),
            skipped: due != first_missed,
            next,
        }
    }

    /// The instant(s) a wall-clock tick fires at, per the policy: the one to keep
    /// order by, and a repeat in the second half of an overlap.
    fn fires_of(&self, w: NaiveDateTime) -> Option<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        match self.expression.policy {
            DstPolicy::FixedTime => {
                zone::first_instant_at_or_after(self.timezone, w).map(|t| (t, None))
            }
            DstPolicy::WallClock => match zone::instants_at(self.timezone, w) {
                LocalResult::Single(t) => Some((t, None)),
                LocalResult::Ambiguous(first, second) => Some((first, Some(second))),
                LocalResult::None => None,
            },
        }
    }
}

/// What a cron trigger does after downtime (see [`Schedule::catch_up`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// The latest tick in `(last_tick, now]`, to fire once now; `None`: nothing missed.
    pub due: Option<DateTime<Utc>>,
    /// Whether earlier ticks in `(last_tick, due)` were passed over.
    pub skipped: bool,
    /// The first tick after `now`, to schedule next.
    pub next: Option<DateTime<Utc>>,
}

/// The fires of a schedule after an instant, in order (see [`Schedule::upcoming`]).
///
/// Ticks are taken in wall-clock order. Their first instants are increasing; the
/// second halves of an overlap come after every first half of it and before any
/// later tick, so they wait in `repeats` and the two sequences are merged.
#[derive(Debug)]
pub struct Upcoming<'a> {
    schedule: &'a Schedule,
    /// The last wall-clock tick taken; `None` once the ticks ran out.
    cursor: Option<NaiveDateTime>,
    /// The first instant of the next tick, not yet given out.
    primary: Option<DateTime<Utc>>,
    repeats: VecDeque<DateTime<Utc>>,
    /// Everything up to here was given out (or was before the start).
    floor: DateTime<Utc>,
}

impl Upcoming<'_> {
    fn pull_primary(&mut self) -> Option<DateTime<Utc>> {
        loop {
            // The crate's ticks end with 2100, and it steps a second past its start
            // without checking: stop before it could overflow at the edge of time.
            let cursor = self.cursor.filter(|c| c.year() <= LAST_YEAR)?;
            let Some(w) = self.schedule.expression.next_tick_after(cursor) else {
                self.cursor = None;
                return None;
            };
            self.cursor = Some(w);
            if let Some((first, repeat)) = self.schedule.fires_of(w) {
                self.repeats.extend(repeat);
                return Some(first);
            }
        }
    }
}

impl Iterator for Upcoming<'_> {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        loop {
            if self.primary.is_none() {
                self.primary = self.pull_primary();
            }
            let fire = match (self.primary, self.repeats.front().copied()) {
                (Some(p), Some(r)) if r < p => self.repeats.pop_front().map(|_| r),
                (Some(p), _) => self.primary.take().map(|_| p),
                (None, Some(_)) => self.repeats.pop_front(),
                (None, None) => None,
            }?;
            // Gap ticks of a fixed-time schedule share one instant; so may a repeat
            // and a later tick. Each instant fires once.
            if fire > self.floor {
                self.floor = fire;
                return Some(fire);
            }
        }
    }
}
