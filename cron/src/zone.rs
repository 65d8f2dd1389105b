//! Wall clock ↔ instant in one IANA zone: the pieces the daylight-saving policy is
//! built from.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};

/// What the wall clock reads at `t`; `None` past the edge of representable time.
pub(crate) fn wall(tz: Tz, t: DateTime<Utc>) -> Option<NaiveDateTime> {
    t.naive_utc()
        .checked_add_signed(Duration::seconds(offset_seconds(tz, t)))
}

/// The zone's offset at `t`, in seconds east of UTC.
pub(crate) fn offset_seconds(tz: Tz, t: DateTime<Utc>) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// Every instant at which the wall clock reads `w`: none in a spring-forward gap,
/// two in a fall-back overlap (earlier first).
pub(crate) fn instants_at(tz: Tz, w: NaiveDateTime) -> LocalResult<DateTime<Utc>> {
    tz.from_local_datetime(&w).map(|t| t.with_timezone(&Utc))
}

/// The first instant at which the wall clock reads `w` or later: `w` itself when it
/// exists (its first occurrence in an overlap), else the end of the gap it falls in.
/// `None` only at the edges of the zone database.
pub(crate) fn first_instant_at_or_after(tz: Tz, w: NaiveDateTime) -> Option<DateTime<Utc>> {
    match instants_at(tz, w) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
        LocalResult::None => GapInfo::new(&w, &tz)
            .and_then(|gap| gap.end)
            .map(|end| end.with_timezone(&Utc)),
    }
}

/// How far (in seconds) the wall clock may step back in the day after `t`: a wall
/// time up to this much before `wall(t)` can still occur after `t`, in the second
/// half of a fall-back overlap. Sampled hourly; transitions are at least hours apart.
pub(crate) fn rewind_ahead(tz: Tz, t: DateTime<Utc>) -> i64 {
    let now = offset_seconds(tz, t);
    (1..=26)
        .filter_map(|h| t.checked_add_signed(Duration::hours(h)))
        .map(|later| now - offset_seconds(tz, later))
        .max()
        .unwrap_or(0)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn naive(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .expect("valid date")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid instant")
    }

    #[test]
    fn a_gap_time_maps_to_the_end_of_the_gap() {
        let tz = chrono_tz::Europe::Berlin;
        assert_eq!(
            first_instant_at_or_after(tz, naive(2026, 3, 29, 2, 30)),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn an_overlap_time_maps_to_its_first_occurrence() {
        let tz = chrono_tz::Europe::Berlin;
        assert_eq!(
            first_instant_at_or_after(tz, naive(2026, 10, 25, 2, 30)),
            Some(utc("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn rewind_ahead_sees_a_coming_fall_back_only() {
        let tz = chrono_tz::Europe::Berlin;
        assert_eq!(rewind_ahead(tz, utc("2026-10-24T12:00:00Z")), 3600);
        assert_eq!(rewind_ahead(tz, utc("2026-03-28T12:00:00Z")), 0);
        assert_eq!(rewind_ahead(tz, utc("2026-07-01T12:00:00Z")), 0);
        let lord_howe = chrono_tz::Australia::Lord_Howe;
        assert_eq!(rewind_ahead(lord_howe, utc("2026-04-04T12:00:00Z")), 1800);
    }
}
