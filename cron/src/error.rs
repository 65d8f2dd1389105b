//! `CronError`: why a schedule or a time zone was refused, and which input it names.

/// Why [`Schedule::parse`](crate::Schedule::parse) refused its input. The message is
/// meant for people (the API returns it as is); [`CronError::field`] names the input
/// at fault, `schedule` or `timezone`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not exactly six whitespace-separated fields.
    #[error(
        "schedule must have exactly 6 fields (second minute hour day-of-month month day-of-week), found {found}{hint}",
        hint = field_count_hint(*.found)
    )]
    FieldCount { found: usize },
    /// One field does not parse or is out of range.
    #[error("schedule: the {field} field `{value}` is invalid: {reason}")]
    Field {
        /// `second`, `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
        field: &'static str,
        value: String,
        reason: String,
    },
    /// Every field parses, but no date matches them all (`0 0 0 30 2 *`).
    #[error("schedule `{0}` never fires: no date matches all of its fields")]
    NeverFires(String),
    /// Not a name in the IANA time zone database.
    #[error("timezone: `{0}` is not an IANA time zone name (like `Europe/Berlin` or `UTC`)")]
    UnknownTimezone(String),
}

impl CronError {
    /// The input at fault: `"schedule"` or `"timezone"`.
    pub fn field(&self) -> &'static str {
        match self {
            CronError::UnknownTimezone(_) => "timezone",
            CronError::FieldCount { .. } | CronError::Field { .. } | CronError::NeverFires(_) => {
                "schedule"
            }
        }
    }
}

fn field_count_hint(found: usize) -> &'static str {
    match found {
        5 => {
            "; seconds come first: for a classic 5-field line `m h dom mon dow`, write `0 m h dom mon dow`"
        }
        7 => "; a year field is not supported",
        _ if found > 0 && found < 5 => "",
        0 => "; the schedule is empty",
        _ => "",
    }
}
