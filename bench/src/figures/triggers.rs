//! Figures of the triggers issue, not measurable yet. When cron triggers and
//! webhooks land, replace each pending row here with a measuring function:
//!
//! - cron precision: an every-second cron trigger whose script returns at once;
//!   read 60 ticks' `scheduled_at` against `started_at` from
//!   `GET /api/v1/admin/apps/{app}/invocations`; median and max lateness.
//! - async throughput: POST to `/hooks/{id}` from the load generator (`http::run`)
//!   and count completed invocations; baseline: plain `INSERT`s as in `append.rs`.

use crate::report::Figure;

pub fn pending() -> Vec<Figure> {
    vec![
        Figure::pending(
            "cron precision",
            "median < 10 ms, max < 100 ms",
            "pending (triggers issue)",
        ),
        Figure::pending(
            "async webhook throughput",
            "report; ≥ 2.4× from 1 to 3 nodes",
            "pending (triggers issue)",
        ),
    ]
}
