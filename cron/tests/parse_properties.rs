//! Whatever people type, parsing answers (a schedule or an error naming the input at
//! fault) and a parsed schedule answers every question, without panicking.

use chrono::{DateTime, Utc};
use picloud_cron::Schedule;
use proptest::prelude::*;

const CHARS: &[char] = &[
    '0', '1', '2', '5', '7', '9', '*', '/', '-', ',', '?', ' ', ' ', ' ', 'L', 'W', '#', 'M', 'o',
    'n', 'J', 'a', 'F', 'e', 'b', '\t', '@',
];

const TOKENS: &[&str] = &[
    "*",
    "?",
    "0",
    "1",
    "7",
    "13",
    "23",
    "31",
    "59",
    "60",
    "*/7",
    "0/15",
    "1-5",
    "5-1",
    "0,30",
    "Mon-Fri",
    "Jan",
    "Feb",
    "Sun",
    "L",
    "0-59/0",
    "2-23/3",
    "",
    "*/4294967296",
    "FRI-MON",
    "MON-",
    "-1",
    "sat,SUN",
    "8",
    "7/2",
    "1-7/0",
    "*/99999999999999999999",
    "1,,2",
    "?,1",
];

const VALID_ANYWHERE: &[&str] = &["*", "1", "2", "1-5", "*/7", "1,3", "2/3"];

/// Random characters (almost never valid), or six random tokens (often valid).
fn expression() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(CHARS), 0..40)
            .prop_map(|c| c.into_iter().collect::<String>()),
        prop::collection::vec(token(), 5..8).prop_map(|t| t.join(" ")),
    ]
}

/// Mostly tokens valid in every field, sometimes anything.
fn token() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        9 => prop::sample::select(VALID_ANYWHERE),
        1 => prop::sample::select(TOKENS),
    ]
}

fn zone() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "",
        "Europe/Nowhere",
        "utc",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_anything_answers_and_names_the_input(expr in expression(), zone in zone()) {
        match Schedule::parse(&expr, zone) {
            Ok(schedule) => {
                prop_assert_eq!(schedule.expression().split(' ').count(), 6);
                let t: DateTime<Utc> = "2026-03-29T00:30:00Z".parse().expect("valid");
                let fires: Vec<_> = schedule.upcoming(t).take(3).collect();
                for pair in fires.windows(2) {
                    prop_assert!(pair[0] < pair[1]);
                }
            }
            Err(e) => {
                prop_assert!(["schedule", "timezone"].contains(&e.field()));
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn numeric_fields_parse_or_name_their_field(
        values in prop::collection::vec(0u64..100, 6),
        steps in prop::collection::vec(prop::option::of(0u64..5_000_000_000), 6),
    ) {
        let fields: Vec<String> = values
            .iter()
            .zip(&steps)
            .map(|(v, s)| match s {
                Some(step) => format!("{v}/{step}"),
                None => v.to_string(),
            })
            .collect();
        let expr = fields.join(" ");
        if let Err(e) = Schedule::parse(&expr, "UTC") {
            prop_assert_eq!(e.field(), "schedule");
            prop_assert!(e.to_string().contains("field") || e.to_string().contains("never fires"), "{}", e);
        }
    }
}

#[test]
fn the_token_generator_reaches_valid_schedules() {
    // Guards the property above against testing only the error path.
    assert!(Schedule::parse("*/7 0,30 1-5 ? Jan Mon-Fri", "Europe/Berlin").is_ok());
    assert!(Schedule::parse("1 1 1 1 1 1-5", "Europe/Berlin").is_ok());
}
