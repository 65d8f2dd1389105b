//! Cron schedules for PiCloud's `cron` triggers: when does `0 */5 * * * *` in
//! `Europe/Berlin` fire next?
//!
//! ```
//! use picloud_cron::Schedule;
//! let daily = Schedule::parse("0 30 2 * * *", "Europe/Berlin")?;
//! // 02:30 does not exist on 29 March 2026 (02:00 → 03:00): the job runs at 03:00.
//! let after = "2026-03-28T12:00:00Z".parse()?;
//! let fire = daily.next_after(after).expect("a next fire");
//! assert_eq!(fire.with_timezone(&daily.timezone()).to_rfc3339(), "2026-03-29T03:00:00+02:00");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Expressions
//!
//! Exactly six fields, seconds first: `second minute hour day-of-month month
//! day-of-week`. A 5-field line is refused with a hint to put `0 ` in front; a year
//! field and `@daily`-style shorthands are refused too. Fields take numbers, ranges
//! `a-b`, lists `a,b`, steps `*/n`, `n/n` and `a-b/n`, month and day names (`Jan`,
//! `Mon-Fri`, any case), `?` in the day fields.
//!
//! The day fields follow classic Unix cron (Vixie cron, cronie, the OCPS spec):
//!
//! - **Days of the week count 0 to 7: 0 and 7 are Sunday, 1 = Monday … 6 =
//!   Saturday**, or `Sun` to `Sat`: `0 0 9 * * 1-5` runs Monday to Friday. A range
//!   ending before it starts wraps past Saturday (`5-1` and `Fri-Mon` are Friday to
//!   Monday; `5-7` is Friday to Sunday). `*/n` counts from Sunday; `n/s` runs from
//!   `n` to Saturday (`7/s` is Sunday alone).
//! - **When both day fields are restricted** (neither is exactly `*` or `?`), a day
//!   matching **either** fires: `0 0 0 1 * Mon` runs on the 1st of every month and
//!   on every Monday. With one of them `*` or `?`, the other alone decides.
//!
//! ```
//! use picloud_cron::Schedule;
//! let first_and_mondays = Schedule::parse("0 0 0 1 * Mon", "UTC")?;
//! // Wednesday 1 July 2026, then Monday 6 July.
//! let fires: Vec<String> = first_and_mondays
//!     .upcoming("2026-06-30T00:00:00Z".parse()?)
//!     .take(2)
//!     .map(|t| t.format("%a %F").to_string())
//!     .collect();
//! assert_eq!(fires, ["Wed 2026-07-01", "Mon 2026-07-06"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Schedules run up to the end of the year 2100.
//!
//! # Daylight saving
//!
//! Ticks are wall-clock times in the schedule's IANA zone. Where a transition makes a
//! wall time happen zero or two times, the policy is the one of Vixie cron and the
//! OCPS spec, decided by the second, minute and hour fields ([`DstPolicy`]):
//!
//! - **Fixed-time jobs** — no `*` and no step (`/`) in any of those three fields
//!   (`0 30 2 * * *`, `0 0,30 1-3 * * Mon`): never skipped and never doubled. A tick
//!   in a spring-forward gap fires once, at the first instant after the gap (02:30 on
//!   a 02:00 → 03:00 night fires at 03:00); ticks of one gap share that instant and
//!   fire there once. A tick in a fall-back overlap fires once, at its first
//!   occurrence. Put simply: a fixed-time tick fires at the first instant the wall
//!   clock reads that time or later.
//! - **Wall-clock jobs** — a `*` or a step in any of those fields (`0 */5 * * * *`,
//!   `0 30 * * * *`): they follow the wall clock. No fires inside a gap; fires in
//!   both halves of an overlap (02:30 summer time, then 02:30 winter time), in
//!   real-time order.
//!
//! Fires are strictly increasing instants, whole seconds; [`Schedule::next_after`] is
//! strictly after its argument.
//!
//! # After downtime
//!
//! [`Schedule::catch_up`] answers, from the last tick a trigger fired and the time
//! now, the single missed tick to fire (the latest) and the next one to wait for, so
//! a trigger catches up once, not once per missed window.
//!
//! # Layout
//!
//! - `expression.rs`: the six fields, checked one by one so errors name the field;
//!   the two day fields merged; the policy of a schedule.
//! - `day_of_week.rs`: the day-of-week field, read here and handed to the `cron`
//!   crate (whose own numbering starts at 1 = Sunday) as day names.
//! - `zone.rs`: wall clock ↔ instant in a zone (gaps, overlaps).
//! - `schedule.rs`: [`Schedule`], the [`Upcoming`] iterator, [`CatchUp`].
//! - `error.rs`: [`CronError`].

mod day_of_week;
mod error;
mod expression;
mod schedule;
mod zone;

pub use chrono_tz::Tz;
pub use error::CronError;
pub use expression::DstPolicy;
pub use schedule::{CatchUp, Schedule, Upcoming};
