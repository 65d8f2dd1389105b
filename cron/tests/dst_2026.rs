//! The daylight-saving transitions of 2026, fire by fire, in the zone's own offsets.

use chrono::{DateTime, Utc};
use picloud_cron::{CatchUp, DstPolicy, Schedule};

/// The first `n` fires after `after` (RFC 3339), written in the schedule's zone.
fn fires(expr: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
    let schedule = Schedule::parse(expr, zone).expect("valid schedule");
    let after: DateTime<Utc> = after.parse().expect("valid instant");
    schedule
        .upcoming(after)
        .take(n)
        .map(|t| t.with_timezone(&schedule.timezone()).to_rfc3339())
        .collect()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("valid instant")
}

#[test]
fn berlin_spring_forward_moves_a_fixed_gap_time_to_three_o_clock() {
    assert_eq!(
        fires("0 30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
        [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ]
    );
}

#[test]
fn berlin_spring_forward_fires_several_gap_ticks_once() {
    assert_eq!(
        fires("0 0,30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
        [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
        ]
    );
}

#[test]
fn berlin_fall_back_fires_a_fixed_overlap_time_once_at_its_first_occurrence() {
    assert_eq!(
        fires("0 30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
}

#[test]
fn berlin_hourly_skips_the_gap() {
    assert_eq!(
        fires("0 30 * * * *", "Europe/Berlin", "2026-03-28T23:00:00Z", 4),
        [
            "2026-03-29T00:30:00+01:00",
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T03:30:00+02:00",
            "2026-03-29T04:30:00+02:00",
        ]
    );
}

#[test]
fn berlin_hourly_runs_in_both_halves_of_the_overlap() {
    assert_eq!(
        fires("0 30 * * * *", "Europe/Berlin", "2026-10-24T22:00:00Z", 5),
        [
            "2026-10-25T00:30:00+02:00",
            "2026-10-25T01:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:30:00+01:00",
        ]
    );
}

#[test]
fn berlin_a_step_inside_a_fixed_hour_follows_real_time_through_the_overlap() {
    let schedule = Schedule::parse("0 */20 2 * * *", "Europe/Berlin").expect("valid");
    assert_eq!(schedule.dst_policy(), DstPolicy::WallClock);
    assert_eq!(
        fires("0 */20 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 7),
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:20:00+02:00",
            "2026-10-25T02:40:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:20:00+01:00",
            "2026-10-25T02:40:00+01:00",
            "2026-10-26T02:00:00+01:00",
        ]
    );
}

#[test]
fn new_york_spring_forward_and_fall_back() {
    assert_eq!(
        fires(
            "0 30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            2
        ),
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    );
    assert_eq!(
        fires(
            "0 30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            2
        ),
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    );
    assert_eq!(
        fires(
            "0 30 * * * *",
            "America/New_York",
            "2026-11-01T04:00:00Z",
            4
        ),
        [
            "2026-11-01T00:30:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:30:00-05:00",
        ]
    );
}

#[test]
fn lord_howe_half_hour_gap_and_overlap() {
    // 4 October 2026: 02:00 +10:30 → 02:30 +11:00.
    assert_eq!(
        fires(
            "0 15 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-03T00:00:00Z",
            2
        ),
        ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]
    );
    // 5 April 2026: 02:00 +11:00 → 01:30 +10:30.
    assert_eq!(
        fires(
            "0 45 1 * * *",
            "Australia/Lord_Howe",
            "2026-04-04T00:00:00Z",
            2
        ),
        ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"]
    );
    assert_eq!(
        fires(
            "0 */20 * * * *",
            "Australia/Lord_Howe",
            "2026-04-04T13:50:00Z",
            6
        ),
        [
            "2026-04-05T01:00:00+11:00",
            "2026-04-05T01:20:00+11:00",
            "2026-04-05T01:40:00+11:00",
            "2026-04-05T01:40:00+10:30",
            "2026-04-05T02:00:00+10:30",
            "2026-04-05T02:20:00+10:30",
        ]
    );
}

#[test]
fn tokyo_has_no_transitions() {
    assert_eq!(
        fires("0 30 2 * * *", "Asia/Tokyo", "2026-03-28T12:00:00Z", 2),
        ["2026-03-29T02:30:00+09:00", "2026-03-30T02:30:00+09:00"]
    );
}

#[test]
fn weekday_names_and_utc() {
    // 2026-03-07 is a Saturday.
    assert_eq!(
        fires("0 0 9 * * Mon-Fri", "UTC", "2026-03-07T10:00:00Z", 2),
        ["2026-03-09T09:00:00+00:00", "2026-03-10T09:00:00+00:00"]
    );
}

#[test]
fn next_after_is_strictly_after() {
    let schedule = Schedule::parse("0 */5 * * * *", "Europe/Berlin").expect("valid");
    assert_eq!(
        schedule.next_after(utc("2026-06-01T10:00:00Z")),
        Some(utc("2026-06-01T10:05:00Z"))
    );
    assert_eq!(
        schedule.next_after(utc("2026-06-01T09:59:59.999Z")),
        Some(utc("2026-06-01T10:00:00Z"))
    );
}

#[test]
fn schedules_end_with_the_year_2100() {
    let schedule = Schedule::parse("0 0 0 1 1 *", "UTC").expect("valid");
    assert_eq!(
        schedule.next_after(utc("2099-06-01T00:00:00Z")),
        Some(utc("2100-01-01T00:00:00Z"))
    );
    assert_eq!(schedule.next_after(utc("2100-06-01T00:00:00Z")), None);
}

#[test]
fn catch_up_fires_the_latest_missed_tick_once() {
    let schedule = Schedule::parse("0 */5 * * * *", "Europe/Berlin").expect("valid");
    assert_eq!(
        schedule.catch_up(utc("2026-06-01T10:00:00Z"), utc("2026-06-01T12:02:30Z")),
        CatchUp {
            due: Some(utc("2026-06-01T12:00:00Z")),
            skipped: true,
            next: Some(utc("2026-06-01T12:05:00Z")),
        }
    );
}

#[test]
fn catch_up_with_one_missed_tick_skips_nothing() {
    let schedule = Schedule::parse("0 */5 * * * *", "UTC").expect("valid");
    assert_eq!(
        schedule.catch_up(utc("2026-06-01T12:00:00Z"), utc("2026-06-01T12:05:00Z")),
        CatchUp {
            due: Some(utc("2026-06-01T12:05:00Z")),
            skipped: false,
            next: Some(utc("2026-06-01T12:10:00Z")),
        }
    );
}

#[test]
fn catch_up_with_nothing_missed_only_schedules_the_next() {
    let schedule = Schedule::parse("0 */5 * * * *", "UTC").expect("valid");
    assert_eq!(
        schedule.catch_up(utc("2026-06-01T12:00:00Z"), utc("2026-06-01T12:04:59Z")),
        CatchUp {
            due: None,
            skipped: false,
            next: Some(utc("2026-06-01T12:05:00Z")),
        }
    );
}

#[test]
fn catch_up_across_the_overlap_picks_the_real_latest_tick() {
    // Down from 00:10 UTC to 01:20 UTC on 25 October: 02:15 CET (01:15Z), the
    // second 02:15 of the night, is the latest tick.
    let schedule = Schedule::parse("0 */15 * * * *", "Europe/Berlin").expect("valid");
    let catch_up = schedule.catch_up(utc("2026-10-25T00:10:00Z"), utc("2026-10-25T01:20:00Z"));
    assert_eq!(catch_up.due, Some(utc("2026-10-25T01:15:00Z")));
    assert!(catch_up.skipped);
    assert_eq!(catch_up.next, Some(utc("2026-10-25T01:30:00Z")));
}

#[test]
fn catch_up_after_months_is_still_one_tick() {
    let schedule = Schedule::parse("* * * * * *", "Australia/Lord_Howe").expect("valid");
    let catch_up = schedule.catch_up(utc("2026-01-01T00:00:00Z"), utc("2026-09-01T00:00:00.5Z"));
    assert_eq!(catch_up.due, Some(utc("2026-09-01T00:00:00Z")));
    assert_eq!(catch_up.next, Some(utc("2026-09-01T00:00:01Z")));
}

#[test]
fn the_edges_of_time_answer_without_panicking() {
    let schedule = Schedule::parse("* * * * * *", "Pacific/Kiritimati").expect("valid");
    assert_eq!(schedule.next_after(DateTime::<Utc>::MAX_UTC), None);
    assert_eq!(schedule.upcoming(DateTime::<Utc>::MAX_UTC).count(), 0);
    // Before the crate's first year (1970) the first tick is its start.
    assert_eq!(
        schedule
            .next_after(DateTime::<Utc>::MIN_UTC)
            .map(|t| t.timestamp() <= 86_400),
        Some(true)
    );
    let catch_up = schedule.catch_up(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    assert_eq!(catch_up.next, None);
    assert!(catch_up.due.is_some());
}
