//! The day fields as classic Unix cron reads them: days of the week 0–7 (0 and 7 =
//! Sunday, 1 = Monday), names, wrapping ranges, and a day matching either field when
//! both are restricted. Table tests, then a property against a calendar oracle.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use picloud_cron::{CatchUp, Schedule};
use proptest::prelude::*;

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

/// The weekdays (`Mon`…) of the first `n` daily fires at 09:00 UTC after Saturday
/// 7 March 2026.
fn weekdays(day_of_week: &str, n: usize) -> Vec<String> {
    let schedule =
        Schedule::parse(&format!("0 0 9 * * {day_of_week}"), "UTC").expect("valid schedule");
    let after: DateTime<Utc> = "2026-03-07T10:00:00Z".parse().expect("valid instant");
    schedule
        .upcoming(after)
        .take(n)
        .map(|t| t.format("%a").to_string())
        .collect()
}

#[test]
fn one_to_five_is_monday_to_friday() {
    assert_eq!(
        fires("0 0 9 * * 1-5", "UTC", "2026-03-07T10:00:00Z", 6),
        [
            "2026-03-09T09:00:00+00:00",
            "2026-03-10T09:00:00+00:00",
            "2026-03-11T09:00:00+00:00",
            "2026-03-12T09:00:00+00:00",
            "2026-03-13T09:00:00+00:00",
            "2026-03-16T09:00:00+00:00",
        ]
    );
}

#[test]
fn days_of_the_week_by_number_name_range_and_step() {
    let table: &[(&str, &[&str])] = &[
        ("0", &["Sun", "Sun"]),
        ("7", &["Sun", "Sun"]),
        ("1", &["Mon", "Mon"]),
        ("6", &["Sat", "Sat"]),
        ("0,7", &["Sun", "Sun"]),
        ("SAT,SUN", &["Sun", "Sat", "Sun"]),
        ("sat,sun", &["Sun", "Sat", "Sun"]),
        ("Mon-Fri", &["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]),
        ("FRI-MON", &["Sun", "Mon", "Fri", "Sat", "Sun", "Mon"]),
        ("5-7", &["Sun", "Fri", "Sat", "Sun"]),
        ("6-1", &["Sun", "Mon", "Sat", "Sun"]),
        ("*/2", &["Sun", "Tue", "Thu", "Sat", "Sun"]),
        ("1-5/2", &["Mon", "Wed", "Fri", "Mon"]),
        ("1,3-4", &["Mon", "Wed", "Thu", "Mon"]),
        (
            "?",
            &["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        ),
        (
            "0-6",
            &["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        ),
    ];
    for (field, expected) in table {
        assert_eq!(weekdays(field, expected.len()), *expected, "`{field}`");
    }
}

#[test]
fn either_day_field_fires_when_both_are_restricted() {
    // 1 June 2026 is a Monday (fires once), 1 July a Wednesday, 1 August a Saturday.
    assert_eq!(
        fires("0 0 0 1 * MON", "UTC", "2026-05-31T12:00:00Z", 12),
        [
            "2026-06-01T00:00:00+00:00",
            "2026-06-08T00:00:00+00:00",
            "2026-06-15T00:00:00+00:00",
            "2026-06-22T00:00:00+00:00",
            "2026-06-29T00:00:00+00:00",
            "2026-07-01T00:00:00+00:00",
            "2026-07-06T00:00:00+00:00",
            "2026-07-13T00:00:00+00:00",
            "2026-07-20T00:00:00+00:00",
            "2026-07-27T00:00:00+00:00",
            "2026-08-01T00:00:00+00:00",
            "2026-08-03T00:00:00+00:00",
        ]
    );
}

#[test]
fn one_restricted_day_field_alone_decides() {
    // Only the day of the month restricts: the 1st, whatever its weekday.
    assert_eq!(
        fires("0 0 0 1 * *", "UTC", "2026-05-31T12:00:00Z", 3),
        [
            "2026-06-01T00:00:00+00:00",
            "2026-07-01T00:00:00+00:00",
            "2026-08-01T00:00:00+00:00",
        ]
    );
    assert_eq!(
        fires("0 0 0 ? * MON", "UTC", "2026-05-31T12:00:00Z", 2),
        ["2026-06-01T00:00:00+00:00", "2026-06-08T00:00:00+00:00"]
    );
}

#[test]
fn either_rule_with_an_impossible_date_still_fires_on_its_weekdays() {
    // No 30 February; Mondays in February still fire.
    assert_eq!(
        fires("0 0 0 30 2 1", "UTC", "2026-01-01T00:00:00Z", 2),
        ["2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00"]
    );
}

#[test]
fn either_rule_keeps_the_daylight_saving_policy() {
    // 29 March 2026 is a Sunday and the 29th: 02:30 does not exist in Berlin; the
    // tick both halves name fires once, at 03:00.
    assert_eq!(
        fires(
            "0 30 2 29 * SUN",
            "Europe/Berlin",
            "2026-03-27T12:00:00Z",
            3
        ),
        [
            "2026-03-29T03:00:00+02:00",
            "2026-04-05T02:30:00+02:00",
            "2026-04-12T02:30:00+02:00",
        ]
    );
    // 25 October 2026 is a Sunday and the 25th: a fixed overlap time fires once.
    assert_eq!(
        fires("0 30 2 25 * 0", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T02:30:00+02:00", "2026-11-01T02:30:00+01:00"]
    );
    // A wall-clock job fires in both halves of the overlap, once each.
    assert_eq!(
        fires("0 30 * 25 * 7", "Europe/Berlin", "2026-10-24T23:00:00Z", 4),
        [
            "2026-10-25T01:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:30:00+01:00",
        ]
    );
}

#[test]
fn catch_up_over_the_either_rule_is_one_tick() {
    let schedule = Schedule::parse("0 0 0 1 * MON", "UTC").expect("valid");
    let utc = |s: &str| s.parse::<DateTime<Utc>>().expect("valid instant");
    assert_eq!(
        schedule.catch_up(utc("2026-06-02T00:00:00Z"), utc("2026-07-03T00:00:00Z")),
        CatchUp {
            due: Some(utc("2026-07-01T00:00:00Z")),
            skipped: true,
            next: Some(utc("2026-07-06T00:00:00Z")),
        }
    );
}

#[test]
fn bad_days_of_the_week_name_the_field() {
    for field in ["8", "MON-", "X", "-1", "1-8", "*/0", "Mon,,Tue", "L", "5#2"] {
        let e = Schedule::parse(&format!("0 0 0 * * {field}"), "UTC").expect_err(field);
        assert_eq!(e.field(), "schedule");
        let text = e.to_string();
        assert!(
            text.contains(&format!("day-of-week field `{field}`")),
            "{text}"
        );
    }
}

/// Whether a day of the month (1–31) is named.
type Names = fn(u32) -> bool;

/// Day-of-month fields and the days of a month they name.
const DAYS_OF_MONTH: &[(&str, Names)] = &[
    ("*", |_| true),
    ("?", |_| true),
    ("1", |d| d == 1),
    ("13", |d| d == 13),
    ("1,15", |d| d == 1 || d == 15),
    ("10-20", |d| (10..=20).contains(&d)),
    ("*/10", |d| d % 10 == 1),
    ("31", |d| d == 31),
];

const DAY_NAMES: [&str; 7] = ["SUN", "Mon", "tue", "Wed", "THU", "fri", "Sat"];

/// One item of a day-of-week field, and the days it names (Sunday = 0), enumerated
/// day by day.
fn item() -> impl Strategy<Value = (String, Vec<u32>)> {
    let day = || {
        (0..=7_u32, any::<bool>()).prop_map(|(n, by_name)| {
            let text = if by_name && n < 7 {
                DAY_NAMES[n as usize].to_owned()
            } else {
                n.to_string()
            };
            (text, n)
        })
    };
    let step = prop::option::of(1..10_u32);
    prop_oneof![
        (day(), step.clone()).prop_map(|((text, n), step)| match step {
            // `n/s`: from n to Saturday (7/s: Sunday alone).
            Some(s) => {
                let days = (n..=n.max(6)).step_by(s as usize).collect();
                (format!("{text}/{s}"), days)
            }
            None => (text, vec![n]),
        }),
        (day(), day(), step.clone()).prop_map(|((a_text, a), (b_text, b), step)| {
            // Forward through the week from a to b, past Saturday if b comes first.
            let walk: Vec<u32> = if a <= b {
                (a..=b).collect()
            } else {
                (a..7).chain(0..=b).collect()
            };
            let s = step.unwrap_or(1);
            let days = walk.into_iter().step_by(s as usize).collect();
            match step {
                Some(s) => (format!("{a_text}-{b_text}/{s}"), days),
                None => (format!("{a_text}-{b_text}"), days),
            }
        }),
        step.prop_map(|step| match step {
            Some(s) => (format!("*/{s}"), (0..7).step_by(s as usize).collect()),
            None => ("*".to_owned(), (0..7).collect()),
        }),
    ]
}

/// A day-of-week field: `?`, or a list of items, with the days it names (`None`:
/// unrestricted).
fn day_of_week() -> impl Strategy<Value = (String, Option<Vec<u32>>)> {
    prop_oneof![
        1 => Just(("?".to_owned(), None)),
        6 => prop::collection::vec(item(), 1..4).prop_map(|items| {
            let text: Vec<String> = items.iter().map(|(t, _)| t.clone()).collect();
            let text = text.join(",");
            let days = items.into_iter().flat_map(|(_, d)| d).map(|d| d % 7).collect();
            if text == "*" {
                (text, None)
            } else {
                (text, Some(days))
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn days_fired_are_the_calendars(
        dom in 0..DAYS_OF_MONTH.len(),
        (dow_text, dow_days) in day_of_week(),
        start_day in 0..365_i64,
    ) {
        let (dom_text, dom_matches) = DAYS_OF_MONTH[dom];
        let expr = format!("0 0 12 {dom_text} * {dow_text}");
        let schedule = Schedule::parse(&expr, "UTC").expect("generated schedules are valid");
        let first = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date") + Duration::days(start_day);
        let days: Vec<NaiveDate> = first.iter_days().take(70).collect();
        let dom_restricted = !matches!(dom_text, "*" | "?");
        let expected: Vec<NaiveDate> = days
            .iter()
            .copied()
            .filter(|d| {
                let by_month = dom_matches(d.day());
                let weekday = d.weekday().num_days_from_sunday();
                match &dow_days {
                    None => by_month,
                    Some(dow) if dom_restricted => by_month || dow.contains(&weekday),
                    Some(dow) => dow.contains(&weekday),
                }
            })
            .collect();
        let from = first.and_hms_opt(0, 0, 0).expect("a time").and_utc();
        let to = from + Duration::days(70);
        let fired: Vec<NaiveDate> = schedule
            .upcoming(from)
            .take_while(|t| *t < to)
            .map(|t| t.date_naive())
            .collect();
        prop_assert_eq!(fired, expected, "{}", expr);
    }
}
