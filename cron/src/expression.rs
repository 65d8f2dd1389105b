//! The expression: six fields, each checked on its own so an error names the field,
//! then handed to the `cron` crate, which enumerates wall-clock ticks. The
//! day-of-week field is read here (`day_of_week.rs`) and rendered as day names; when
//! both day fields are restricted, two schedules are merged (a day matching either
//! field fires).

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime};

use crate::day_of_week::DaysOfWeek;
use crate::error::CronError;

/// The names of the six fields, in order.
pub const FIELDS: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

/// The index of the day-of-week field, read here rather than by the `cron` crate.
const DAY_OF_WEEK: usize = 5;

/// How a schedule meets daylight-saving transitions (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DstPolicy {
    /// No `*` and no step in the second, minute and hour fields: never skipped,
    /// never doubled.
    FixedTime,
    /// A `*` or a step in the second, minute or hour field: follows the wall clock.
    WallClock,
}

/// A parsed expression: the `cron` crate's schedules whose ticks it merges, and the
/// policy it falls under.
#[derive(Clone, Debug)]
pub(crate) struct Expression {
    pub(crate) source: String,
    /// One schedule, or two when both day fields are restricted (a day matching
    /// either fires): one per day field, the other field `*`. Each fires at least once.
    ticks: Vec<cron::Schedule>,
    pub(crate) policy: DstPolicy,
}

impl Expression {
    pub(crate) fn parse(expr: &str) -> Result<Expression, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != FIELDS.len() {
            return Err(CronError::FieldCount {
                found: fields.len(),
            });
        }
        for (index, value) in fields.iter().enumerate().take(DAY_OF_WEEK) {
            check_field(index, value)?;
        }
        let day_of_week =
            DaysOfWeek::parse(fields[DAY_OF_WEEK]).map_err(|reason| CronError::Field {
                field: FIELDS[DAY_OF_WEEK],
                value: fields[DAY_OF_WEEK].to_owned(),
                reason,
            })?;
        let source = fields.join(" ");
        let [second, minute, hour, day_of_month, month, _] = [0, 1, 2, 3, 4, 5].map(|i| fields[i]);
        let day_of_month_restricted = !matches!(day_of_month, "*" | "?");
        let days = match day_of_week {
            // Vixie cron: with both day fields restricted, a day matching either fires.
            DaysOfWeek::Only(_) if day_of_month_restricted => {
                vec![(day_of_month, DaysOfWeek::Any), ("*", day_of_week)]
            }
            _ => vec![(day_of_month, day_of_week)],
        };
        let mut ticks = Vec::with_capacity(days.len());
        for (day_of_month, day_of_week) in days {
            let line = format!(
                "{second} {minute} {hour} {day_of_month} {month} {}",
                day_of_week.render()
            );
            // Each field parsed alone, so the whole can only fail on a combination the
            // crate refuses; name the schedule then.
            let schedule = cron::Schedule::from_str(&line).map_err(|e| CronError::Field {
                field: "schedule",
                value: source.clone(),
                reason: e.to_string(),
            })?;
            // A half that never fires (`0 0 0 30 2 Mon`: no 30 February) would only
            // be searched to the end of time for every tick.
            if schedule.after(&DateTime::UNIX_EPOCH).next().is_some() {
                ticks.push(schedule);
            }
        }
        if ticks.is_empty() {
            return Err(CronError::NeverFires(source));
        }
        // A step or a wildcard in the time-of-day fields means "every so often",
        // which follows elapsed wall time; anything else names a time of day.
        let policy = if fields[..3].iter().any(|f| f.contains(['*', '/'])) {
            DstPolicy::WallClock
        } else {
            DstPolicy::FixedTime
        };
        Ok(Expression {
            source,
            ticks,
            policy,
        })
    }

    /// The first wall-clock tick strictly after `wall`: the earliest of the
    /// schedules' next ticks (a tick both have is one tick).
    pub(crate) fn next_tick_after(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        let wall = wall.and_utc();
        self.ticks
            .iter()
            .filter_map(|ticks| ticks.after(&wall).next())
            .min()
            .map(|t| t.naive_utc())
    }
}

/// Parse one field alone, in an expression whose other fields accept everything.
fn check_field(index: usize, value: &str) -> Result<(), CronError> {
    let mut probe = ["*"; 6];
    probe[index] = value;
    cron::Schedule::from_str(&probe.join(" "))
        .map(|_| ())
        .map_err(|e| CronError::Field {
            field: FIELDS[index],
            value: value.to_owned(),
            reason: reason(&e.to_string()),
        })
}

/// The crate's message, made to speak of the field alone: its last line (the lines
/// before quote the whole probe expression), its off-by-one bound wording fixed
/// (its maxima are inclusive).
fn reason(message: &str) -> String {
    let last = message
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or("not a valid cron field");
    last.replace("must be less than", "must be at most")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_error(expr: &str) -> (&'static str, String) {
        match Expression::parse(expr) {
            Err(CronError::Field { field, reason, .. }) => (field, reason),
            other => panic!("expected a field error for `{expr}`, got {other:?}"),
        }
    }

    #[test]
    fn five_fields_are_refused_with_a_hint_about_seconds() {
        let e = Expression::parse("*/5 * * * *").expect_err("5 fields");
        assert_eq!(e, CronError::FieldCount { found: 5 });
        assert!(e.to_string().contains("exactly 6 fields"), "{e}");
        assert!(e.to_string().contains("seconds come first"), "{e}");
    }

    #[test]
    fn seven_fields_are_refused_naming_the_year() {
        let e = Expression::parse("0 0 12 * * * 2026").expect_err("7 fields");
        assert_eq!(e, CronError::FieldCount { found: 7 });
        assert!(e.to_string().contains("year field is not supported"), "{e}");
    }

    #[test]
    fn empty_and_shorthand_are_refused() {
        assert_eq!(
            Expression::parse("   ").expect_err("empty"),
            CronError::FieldCount { found: 0 }
        );
        assert_eq!(
            Expression::parse("@daily").expect_err("shorthand"),
            CronError::FieldCount { found: 1 }
        );
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        assert_eq!(field_error("60 * * * * *").0, "second");
        assert_eq!(field_error("0 60 * * * *").0, "minute");
        assert_eq!(field_error("0 0 24 * * *").0, "hour");
        assert_eq!(field_error("0 0 0 32 * *").0, "day-of-month");
        assert_eq!(field_error("0 0 0 0 * *").0, "day-of-month");
        assert_eq!(field_error("0 0 0 * 13 *").0, "month");
        assert_eq!(field_error("0 0 0 * * 8").0, "day-of-week");
        assert_eq!(field_error("0 0 0 * * Funday").0, "day-of-week");
    }

    #[test]
    fn bad_days_of_the_week_name_the_field_and_say_why() {
        for (expr, why) in [
            ("0 0 0 * * 8", "8 is not a day of the week"),
            ("0 0 0 * * MON-", "missing a day"),
            ("0 0 0 * * X", "`X` is not a day of the week"),
            ("0 0 0 1 * 1-9", "9 is not a day of the week"),
            ("0 0 0 * * */0", "cannot be zero"),
            ("0 0 0 * * L", "`L` is not a day of the week"),
        ] {
            let e = Expression::parse(expr).expect_err(expr);
            assert_eq!(e.field(), "schedule");
            let CronError::Field { field, reason, .. } = &e else {
                panic!("expected a field error for `{expr}`, got {e:?}");
            };
            assert_eq!(*field, "day-of-week", "{expr}");
            assert!(reason.contains(why), "{expr}: {reason}");
            assert!(e.to_string().contains("day-of-week field"), "{e}");
        }
    }

    #[test]
    fn both_day_fields_restricted_merge_two_schedules() {
        let ticks = |e: &str| Expression::parse(e).expect("valid").ticks.len();
        assert_eq!(ticks("0 0 0 1 * MON"), 2);
        assert_eq!(ticks("0 0 0 1 * *"), 1);
        assert_eq!(ticks("0 0 0 ? * 1-5"), 1);
        assert_eq!(ticks("0 0 0 * * *"), 1);
        // The half that never fires is dropped; the other still does.
        assert_eq!(ticks("0 0 0 30 2 MON"), 1);
    }

    #[test]
    fn reasons_speak_of_the_field_alone() {
        let (_, reason) = field_error("0 0 24 * * *");
        assert_eq!(reason, "Hours must be at most 23. ('24' specified.)");
        let (_, reason) = field_error("0 0 0 * * 8");
        assert!(reason.contains("0 and 7 = Sunday, 1 = Monday"), "{reason}");
        let (_, reason) = field_error("0 */0 * * * *");
        assert_eq!(reason, "range step cannot be zero");
    }

    #[test]
    fn garbage_names_its_field_and_value() {
        let e = Expression::parse("0 x * * * *").expect_err("garbage minute");
        assert_eq!(e.field(), "schedule");
        let text = e.to_string();
        assert!(text.contains("minute field `x`"), "{text}");
    }

    #[test]
    fn impossible_dates_never_fire() {
        assert_eq!(
            Expression::parse("0 0 0 30 2 *").expect_err("Feb 30"),
            CronError::NeverFires("0 0 0 30 2 *".into())
        );
    }

    #[test]
    fn policy_follows_the_time_of_day_fields() {
        let policy = |e: &str| Expression::parse(e).expect("valid").policy;
        assert_eq!(policy("0 30 2 * * *"), DstPolicy::FixedTime);
        assert_eq!(policy("0 0,30 1-3 * * Mon-Fri"), DstPolicy::FixedTime);
        assert_eq!(policy("0 0 2 */2 * *"), DstPolicy::FixedTime);
        assert_eq!(policy("0 */5 * * * *"), DstPolicy::WallClock);
        assert_eq!(policy("0 30 * * * *"), DstPolicy::WallClock);
        assert_eq!(policy("* 30 2 * * *"), DstPolicy::WallClock);
        assert_eq!(policy("0 0 0/6 * * *"), DstPolicy::WallClock);
    }

    #[test]
    fn extra_whitespace_is_normalised() {
        let e = Expression::parse("  0\t*/5  * * * *  ").expect("valid");
        assert_eq!(e.source, "0 */5 * * * *");
    }
}
