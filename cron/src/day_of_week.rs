//! The day-of-week field, read as classic Unix cron reads it (0 and 7 = Sunday,
//! 1 = Monday … 6 = Saturday) and rendered as day names for the `cron` crate, whose
//! own numbering starts at 1 = Sunday.

/// Day names in the order of the classic numbering, Sunday = 0.
const NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The highest number the field takes (7, Sunday again).
const MAX: u64 = 7;

/// What the field says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DaysOfWeek {
    /// `*` or `?`: the field does not restrict the day.
    Any,
    /// The days it names, bit `d` set for day `d` (Sunday = 0); never empty.
    Only(u8),
}

impl DaysOfWeek {
    /// Read a day-of-week field; the error is a reason about the field alone.
    pub(crate) fn parse(field: &str) -> Result<DaysOfWeek, String> {
        if field == "*" || field == "?" {
            return Ok(DaysOfWeek::Any);
        }
        let mut days = 0_u8;
        for item in field.split(',') {
            days |= item_days(item)?;
        }
        Ok(DaysOfWeek::Only(days))
    }

    /// The field as the `cron` crate reads it: `*`, or a list of day names.
    pub(crate) fn render(self) -> String {
        match self {
            DaysOfWeek::Any => "*".to_owned(),
            DaysOfWeek::Only(days) => NAMES
                .iter()
                .enumerate()
                .filter(|(d, _)| days & (1 << d) != 0)
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// One comma-separated item: `*`, `n`, `a-b`, each with an optional `/step`.
fn item_days(item: &str) -> Result<u8, String> {
    if item.is_empty() {
        return Err("an empty item in the list".to_owned());
    }
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    let step = step.map(parse_step).transpose()?;
    if base == "*" {
        return Ok(days_in(0, 6, step.unwrap_or(1)));
    }
    if base == "?" {
        return Err("`?` stands alone, for the whole field".to_owned());
    }
    match base.split_once('-') {
        Some((first, last)) => {
            let (first, last) = (value(first)?, value(last)?);
            Ok(days_in(first, last, step.unwrap_or(1)))
        }
        None => {
            let first = value(base)?;
            Ok(match step {
                // `n/s`: from n to Saturday (`7/s`, Sunday at the end of the week, is
                // Sunday alone).
                Some(step) => days_in(first, first.max(6), step),
                None => days_in(first, first, 1),
            })
        }
    }
}

/// Every `step`-th day from `first` to `last`, going forward through the week: a
/// range that ends before it starts (`5-1`, `Fri-Mon`) wraps past Saturday.
fn days_in(first: u64, last: u64, step: u64) -> u8 {
    let span = if first <= last {
        last - first
    } else {
        // Past Saturday, 7 and 0 are the same Sunday: `7-2` is `0-2`.
        (last + 7 - first % 7) % 7
    };
    let mut days = 0_u8;
    let mut offset = 0;
    while offset <= span {
        days |= 1 << ((first + offset) % 7);
        offset = offset.saturating_add(step);
    }
    days
}

fn parse_step(step: &str) -> Result<u64, String> {
    match number(step) {
        None if step.is_empty() => Err("a `/` is missing its step".to_owned()),
        Some(0) => Err("a step cannot be zero".to_owned()),
        Some(step) => Ok(step),
        None => Err(format!("`{step}` is not a step (a whole number from 1)")),
    }
}

/// A day: a number from 0 to 7 (0 and 7 = Sunday) or a name.
fn value(text: &str) -> Result<u64, String> {
    if let Some(n) = number(text) {
        return if n <= MAX {
            Ok(n)
        } else {
            Err(format!(
                "{n} is not a day of the week (0 to 7, 0 and 7 = Sunday, 1 = Monday, or Sun to Sat)"
            ))
        };
    }
    let day = match text.to_ascii_lowercase().as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        "" => return Err("a range or a step is missing a day".to_owned()),
        _ => {
            return Err(format!(
                "`{text}` is not a day of the week (0 to 7, 0 and 7 = Sunday, 1 = Monday, or Sun to Sat)"
            ));
        }
    };
    Ok(day)
}

/// Plain ASCII digits (no sign, no spaces), or `None`; huge numbers saturate.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0_u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(field: &str) -> String {
        DaysOfWeek::parse(field)
            .unwrap_or_else(|e| panic!("`{field}` should parse: {e}"))
            .render()
    }

    fn reason(field: &str) -> String {
        DaysOfWeek::parse(field).expect_err(field)
    }

    #[test]
    fn numbers_count_from_sunday_zero_and_seven_is_sunday_again() {
        assert_eq!(days("0"), "Sun");
        assert_eq!(days("7"), "Sun");
        assert_eq!(days("1"), "Mon");
        assert_eq!(days("6"), "Sat");
        assert_eq!(days("1-5"), "Mon,Tue,Wed,Thu,Fri");
        assert_eq!(days("0,7"), "Sun");
        assert_eq!(days("0-7"), "Sun,Mon,Tue,Wed,Thu,Fri,Sat");
    }

    #[test]
    fn names_in_any_case() {
        assert_eq!(days("SAT,SUN"), "Sun,Sat");
        assert_eq!(days("mon-FRI"), "Mon,Tue,Wed,Thu,Fri");
        assert_eq!(days("Tues,thursday"), "Tue,Thu");
    }

    #[test]
    fn ranges_wrap_past_saturday() {
        assert_eq!(days("5-7"), "Sun,Fri,Sat");
        assert_eq!(days("FRI-SUN"), "Sun,Fri,Sat");
        assert_eq!(days("FRI-MON"), "Sun,Mon,Fri,Sat");
        assert_eq!(days("6-1"), "Sun,Mon,Sat");
        assert_eq!(days("7-2"), "Sun,Mon,Tue");
        assert_eq!(days("Sun-Sat"), "Sun,Mon,Tue,Wed,Thu,Fri,Sat");
        assert_eq!(days("Mon-Sun"), "Sun,Mon,Tue,Wed,Thu,Fri,Sat");
        assert_eq!(days("3-3"), "Wed");
    }

    #[test]
    fn steps() {
        assert_eq!(days("*/2"), "Sun,Tue,Thu,Sat");
        assert_eq!(days("*/3"), "Sun,Wed,Sat");
        assert_eq!(days("*/7"), "Sun");
        assert_eq!(days("1-5/2"), "Mon,Wed,Fri");
        assert_eq!(days("1-7/2"), "Sun,Mon,Wed,Fri");
        assert_eq!(days("FRI-MON/2"), "Sun,Fri");
        assert_eq!(days("1/2"), "Mon,Wed,Fri");
        assert_eq!(days("Tue/3"), "Tue,Fri");
        assert_eq!(days("7/2"), "Sun");
        assert_eq!(days("0/18446744073709551615"), "Sun");
        assert_eq!(days("*/99999999999999999999999"), "Sun");
    }

    #[test]
    fn wildcards_do_not_restrict() {
        assert_eq!(DaysOfWeek::parse("*"), Ok(DaysOfWeek::Any));
        assert_eq!(DaysOfWeek::parse("?"), Ok(DaysOfWeek::Any));
        // A list or a step restricts, even when it names every day.
        assert_eq!(DaysOfWeek::parse("*/1"), Ok(DaysOfWeek::Only(0x7f)));
        assert_eq!(DaysOfWeek::parse("0-6"), Ok(DaysOfWeek::Only(0x7f)));
    }

    #[test]
    fn bad_values_say_why() {
        assert!(reason("8").contains("8 is not a day of the week"));
        assert!(reason("8").contains("0 and 7 = Sunday"));
        assert!(reason("X").contains("`X` is not a day of the week"));
        assert!(reason("Funday").contains("`Funday`"));
        assert!(reason("MON-").contains("missing a day"));
        assert!(reason("-MON").contains("missing a day"));
        assert!(reason("1-9").contains("9 is not a day"));
        assert!(reason("*/0").contains("cannot be zero"));
        assert!(reason("1/x").contains("`x` is not a step"));
        assert!(reason("1/").contains("missing its step"));
        assert!(reason("1,").contains("empty item"));
        assert!(reason(",").contains("empty item"));
        assert!(reason("1,?").contains("stands alone"));
        assert!(reason("1-2-3").contains("`2-3` is not a day"));
        assert!(reason("1/2/3").contains("`2/3` is not a step"));
        assert!(reason("L").contains("`L`"));
        assert!(reason("5#2").contains("`5#2`"));
        assert!(reason("+1").contains("`+1`"));
        assert!(reason("１").contains("`１`"));
    }
}
