//! Property tests of the daylight-saving policy around real transitions, against an
//! oracle that walks the timeline second by second and reads the wall clock.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use picloud_cron::{DstPolicy, Schedule, Tz};
use proptest::prelude::*;

/// Zones and instants of their 2026 transitions (Tokyo has none: arbitrary days).
const TRANSITIONS: &[(&str, &str)] = &[
    ("Europe/Berlin", "2026-03-29T01:00:00Z"),
    ("Europe/Berlin", "2026-10-25T01:00:00Z"),
    ("America/New_York", "2026-03-08T07:00:00Z"),
    ("America/New_York", "2026-11-01T06:00:00Z"),
    ("Australia/Lord_Howe", "2026-04-04T15:00:00Z"),
    ("Australia/Lord_Howe", "2026-10-03T15:30:00Z"),
    ("Asia/Tokyo", "2026-03-28T17:00:00Z"),
    ("Asia/Tokyo", "2026-10-24T17:00:00Z"),
];

const SECONDS: &[&str] = &["0", "30", "0,20,40", "*/30"];
const MINUTES: &[&str] = &["0", "30", "15,45", "*/15", "*", "10-12", "40"];
const HOURS: &[&str] = &["*", "2", "1", "3", "0-3", "1,2", "*/2", "2-23/3"];
/// Day-of-month and day-of-week. Every transition above falls on a Sunday; some
/// pairs restrict both fields, so a day matching either fires (the last names each
/// transition's day twice, by date and by weekday).
const DAYS: &[&str] = &[
    "* *",
    "* *",
    "? 0",
    "* SAT,7",
    "29,8,5 6",
    "25,1,4 1-5",
    "* FRI-MON",
    "28,31 MON",
    "29,25,8,1,5,4 SUN",
];

/// A window of `WINDOW_HOURS` starting up to 6 hours either side of a transition.
const WINDOW_HOURS: i64 = 8;

fn case() -> impl Strategy<Value = (Schedule, DateTime<Utc>)> {
    (
        0..TRANSITIONS.len(),
        -6 * 3600..6 * 3600_i64,
        0..SECONDS.len(),
        0..MINUTES.len(),
        0..HOURS.len(),
        0..DAYS.len(),
    )
        .prop_map(|(z, shift, s, m, h, d)| {
            let (zone, at) = TRANSITIONS[z];
            let (day_of_month, day_of_week) = DAYS[d].split_once(' ').expect("two fields");
            let expr = format!(
                "{} {} {} {day_of_month} * {day_of_week}",
                SECONDS[s], MINUTES[m], HOURS[h]
            );
            let schedule = Schedule::parse(&expr, zone).expect("generated schedules are valid");
            let at: DateTime<Utc> = at.parse().expect("valid instant");
            (schedule, at + Duration::seconds(shift))
        })
}

fn wall(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// The wall-clock ticks of `schedule` in `(from, to]`, read without any zone.
fn ticks(schedule: &Schedule, from: NaiveDateTime, to: NaiveDateTime) -> Vec<NaiveDateTime> {
    let plain = Schedule::parse(schedule.expression(), "UTC").expect("valid");
    plain
        .upcoming(from.and_utc())
        .map(|t| t.naive_utc())
        .take_while(|w| *w <= to)
        .collect()
}

/// Every fire in `(t0, t1]`, found by walking each second of a wider span.
fn oracle(schedule: &Schedule, t0: DateTime<Utc>, t1: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let tz = schedule.timezone();
    let start = t0 - Duration::hours(3);
    let seconds: Vec<DateTime<Utc>> = (0..(t1 - start).num_seconds() + 3 * 3600)
        .map(|s| start + Duration::seconds(s))
        .collect();
    let walls: Vec<NaiveDateTime> = seconds.iter().map(|t| wall(tz, *t)).collect();
    let lowest = *walls.iter().min().expect("non-empty");
    let highest = *walls.iter().max().expect("non-empty");
    let all_ticks = ticks(schedule, lowest - Duration::seconds(1), highest);
    let fires: Vec<DateTime<Utc>> = match schedule.dst_policy() {
        // Every instant whose wall clock reads a tick.
        DstPolicy::WallClock => {
            let set: HashSet<NaiveDateTime> = all_ticks.into_iter().collect();
            seconds
                .iter()
                .zip(&walls)
                .filter(|(_, w)| set.contains(w))
                .map(|(t, _)| *t)
                .collect()
        }
        // The first instant the wall clock reads a tick or later: where the running
        // maximum of the wall clock first passes the tick.
        DstPolicy::FixedTime => {
            let mut fires = Vec::new();
            let mut max_so_far = walls[0];
            let mut next_tick = all_ticks.iter().peekable();
            while next_tick.next_if(|w| **w <= max_so_far).is_some() {}
            for (t, w) in seconds.iter().zip(&walls).skip(1) {
                max_so_far = max_so_far.max(*w);
                let mut passed = false;
                while next_tick.next_if(|tick| **tick <= max_so_far).is_some() {
                    passed = true;
                }
                if passed {
                    fires.push(*t);
                }
            }
            fires
        }
    };
    fires.into_iter().filter(|t| *t > t0 && *t <= t1).collect()
}

fn fires_in(schedule: &Schedule, t0: DateTime<Utc>, t1: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    schedule.upcoming(t0).take_while(|t| *t <= t1).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn fires_are_exactly_the_oracles((schedule, t0) in case()) {
        let t1 = t0 + Duration::hours(WINDOW_HOURS);
        let fires = fires_in(&schedule, t0, t1);
        prop_assert_eq!(&fires, &oracle(&schedule, t0, t1), "{} in {}", schedule.expression(), schedule.timezone());
    }

    #[test]
    fn fires_are_strictly_increasing_and_found_again_just_before((schedule, t0) in case()) {
        let fires = fires_in(&schedule, t0, t0 + Duration::hours(WINDOW_HOURS));
        for pair in fires.windows(2) {
            prop_assert!(pair[0] < pair[1], "{:?}", pair);
        }
        for fire in &fires {
            prop_assert_eq!(schedule.next_after(*fire - Duration::milliseconds(1)), Some(*fire));
        }
    }

    #[test]
    fn next_after_any_instant_is_the_oracles_next(
        (schedule, t0) in case(),
        probe in 0..WINDOW_HOURS * 3600,
    ) {
        let t1 = t0 + Duration::hours(WINDOW_HOURS);
        let at = t0 + Duration::seconds(probe);
        let expected = oracle(&schedule, t0, t1).into_iter().find(|t| *t > at);
        if let Some(expected) = expected {
            prop_assert_eq!(schedule.next_after(at), Some(expected));
        }
    }

    #[test]
    fn fixed_time_jobs_fire_each_wall_time_once_and_every_gap_tick_once((schedule, t0) in case()) {
        prop_assume!(schedule.dst_policy() == DstPolicy::FixedTime);
        let tz = schedule.timezone();
        let t1 = t0 + Duration::hours(WINDOW_HOURS);
        let fires = fires_in(&schedule, t0, t1);
        let walls: Vec<NaiveDateTime> = fires.iter().map(|t| wall(tz, *t)).collect();
        let distinct: HashSet<&NaiveDateTime> = walls.iter().collect();
        prop_assert_eq!(distinct.len(), walls.len(), "a wall time fired twice: {:?}", walls);
        // Every tick strictly inside the window's wall-clock span fires exactly once:
        // at its wall time, or, in a gap, at the first instant after the gap.
        for tick in ticks(&schedule, wall(tz, t0) + Duration::hours(1), wall(tz, t1) - Duration::hours(1)) {
            let at = match tz.from_local_datetime(&tick) {
                chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                chrono::LocalResult::None => {
                    let end = chrono_tz::GapInfo::new(&tick, &tz).and_then(|g| g.end).expect("gap end");
                    end.with_timezone(&Utc)
                }
            };
            prop_assert_eq!(fires.iter().filter(|t| **t == at).count(), 1, "tick {}", tick);
        }
    }

    #[test]
    fn wall_clock_jobs_never_fire_in_a_gap_and_repeat_overlap_ticks((schedule, t0) in case()) {
        prop_assume!(schedule.dst_policy() == DstPolicy::WallClock);
        let tz = schedule.timezone();
        let t1 = t0 + Duration::hours(WINDOW_HOURS);
        let fires = fires_in(&schedule, t0, t1);
        for fire in &fires {
            let w = wall(tz, *fire);
            prop_assert!(schedule_includes(&schedule, w), "fired off-schedule at {}", w);
        }
        for tick in ticks(&schedule, wall(tz, t0) + Duration::hours(2), wall(tz, t1) - Duration::hours(2)) {
            let expected = match tz.from_local_datetime(&tick) {
                chrono::LocalResult::None => 0,
                chrono::LocalResult::Single(_) => 1,
                chrono::LocalResult::Ambiguous(_, _) => 2,
            };
            let count = fires.iter().filter(|t| wall(tz, **t) == tick).count();
            prop_assert_eq!(count, expected, "tick {}", tick);
        }
    }

    #[test]
    fn catch_up_is_the_latest_missed_and_the_next(
        (schedule, t0) in case(),
        down in 0..WINDOW_HOURS * 3600 / 2,
        last_offset in 0..3600_i64,
    ) {
        let t1 = t0 + Duration::hours(WINDOW_HOURS);
        let last = t0 + Duration::seconds(last_offset);
        let now = last + Duration::seconds(down);
        let fires = oracle(&schedule, t0, t1);
        let missed: Vec<_> = fires.iter().filter(|t| **t > last && **t <= now).collect();
        let catch_up = schedule.catch_up(last, now);
        prop_assert_eq!(catch_up.due, missed.last().map(|t| **t));
        prop_assert_eq!(catch_up.skipped, missed.len() > 1);
        if let Some(next) = fires.iter().find(|t| **t > now) {
            prop_assert_eq!(catch_up.next, Some(*next));
        }
    }
}

fn schedule_includes(schedule: &Schedule, w: NaiveDateTime) -> bool {
    ticks(schedule, w - Duration::seconds(1), w).contains(&w)
}
