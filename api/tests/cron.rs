//! `GET /api/v1/admin/cron/preview`: the next fires of a schedule, written in its zone.

mod common;

use chrono::{DateTime, Utc};
use common::{Reply, TestApp, test_app};
use serde_json::Value;

async fn preview(app: &TestApp, params: &[(&str, &str)]) -> Reply {
    let query = serde_urlencoded::to_string(params).expect("query");
    app.admin("GET", &format!("/api/v1/admin/cron/preview?{query}"), None)
        .await
}

fn fires(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["fires"]
        .as_array()
        .expect("fires")
        .iter()
        .map(|f| f.as_str().expect("a string").to_owned())
        .collect()
}

fn assert_invalid(reply: &Reply, field: &str) -> Value {
    assert_eq!(reply.status, 422, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["code"], "invalid_field", "{body}");
    assert_eq!(body["field"], field, "{body}");
    body
}

#[tokio::test]
async fn five_fires_by_default_starting_now() {
    let app = test_app().await;
    let before = Utc::now();
    let r = preview(&app, &[("schedule", "* * * * * *"), ("timezone", "UTC")]).await;
    let fires = fires(&r);
    assert_eq!(fires.len(), 5, "{fires:?}");
    let first = DateTime::parse_from_rfc3339(&fires[0]).expect("RFC 3339");
    assert!(first > before, "{first} is not after {before}");
    assert!(fires[0].ends_with("+00:00"), "{}", fires[0]);
}

#[tokio::test]
async fn after_and_count_are_honoured() {
    let app = test_app().await;
    let r = preview(
        &app,
        &[
            ("schedule", "0 */5 * * * *"),
            ("timezone", "America/New_York"),
            ("after", "2026-06-01T12:02:00Z"),
            ("count", "3"),
        ],
    )
    .await;
    assert_eq!(
        fires(&r),
        [
            "2026-06-01T08:05:00-04:00",
            "2026-06-01T08:10:00-04:00",
            "2026-06-01T08:15:00-04:00",
        ]
    );
}

#[tokio::test]
async fn offsets_follow_berlins_spring_forward() {
    let app = test_app().await;
    let r = preview(
        &app,
        &[
            ("schedule", "0 0 * * * *"),
            ("timezone", "Europe/Berlin"),
            ("after", "2026-03-29T00:30:00+01:00"),
            ("count", "3"),
        ],
    )
    .await;
    assert_eq!(
        fires(&r),
        [
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T04:00:00+02:00",
        ]
    );
}

#[tokio::test]
async fn offsets_follow_berlins_fall_back_and_the_fixed_time_policy() {
    let app = test_app().await;
    let hourly = preview(
        &app,
        &[
            ("schedule", "0 30 * * * *"),
            ("timezone", "Europe/Berlin"),
            ("after", "2026-10-25T02:00:00+02:00"),
            ("count", "3"),
        ],
    )
    .await;
    assert_eq!(
        fires(&hourly),
        [
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:30:00+01:00",
        ]
    );
    let daily = preview(
        &app,
        &[
            ("schedule", "0 30 2 * * *"),
            ("timezone", "Europe/Berlin"),
            ("after", "2026-10-25T02:00:00+02:00"),
            ("count", "2"),
        ],
    )
    .await;
    assert_eq!(
        fires(&daily),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
}

#[tokio::test]
async fn count_is_between_1_and_100() {
    let app = test_app().await;
    let base = [("schedule", "* * * * * *"), ("timezone", "UTC")];
    let r = preview(&app, &[base[0], base[1], ("count", "100")]).await;
    assert_eq!(fires(&r).len(), 100);
    for bad in ["101", "0", "-1", "many"] {
        let r = preview(&app, &[base[0], base[1], ("count", bad)]).await;
        let body = assert_invalid(&r, "count");
        assert!(
            body["error"].as_str().expect("error").contains("100"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_bad_schedule_is_422_naming_schedule_and_the_field() {
    let app = test_app().await;
    let r = preview(&app, &[("schedule", "0 61 * * * *"), ("timezone", "UTC")]).await;
    let body = assert_invalid(&r, "schedule");
    assert!(
        body["error"].as_str().expect("error").contains("minute"),
        "{body}"
    );

    let r = preview(&app, &[("schedule", "*/5 * * * *"), ("timezone", "UTC")]).await;
    let body = assert_invalid(&r, "schedule");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("exactly 6 fields"),
        "{body}"
    );

    let r = preview(&app, &[("timezone", "UTC")]).await;
    assert_invalid(&r, "schedule");
}

#[tokio::test]
async fn a_bad_zone_is_422_naming_timezone() {
    let app = test_app().await;
    let r = preview(
        &app,
        &[("schedule", "0 0 9 * * *"), ("timezone", "Mars/Olympus")],
    )
    .await;
    let body = assert_invalid(&r, "timezone");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("Mars/Olympus"),
        "{body}"
    );

    let r = preview(&app, &[("schedule", "0 0 9 * * *")]).await;
    assert_invalid(&r, "timezone");
}

#[tokio::test]
async fn a_bad_after_is_422_naming_after() {
    let app = test_app().await;
    let r = preview(
        &app,
        &[
            ("schedule", "0 0 9 * * *"),
            ("timezone", "UTC"),
            ("after", "yesterday"),
        ],
    )
    .await;
    assert_invalid(&r, "after");
}

#[tokio::test]
async fn a_schedule_past_its_last_fire_answers_no_fires() {
    let app = test_app().await;
    let r = preview(
        &app,
        &[
            ("schedule", "0 0 0 1 1 *"),
            ("timezone", "UTC"),
            ("after", "2100-06-01T00:00:00Z"),
        ],
    )
    .await;
    assert!(fires(&r).is_empty());
}

#[tokio::test]
async fn preview_needs_a_token() {
    let app = test_app().await;
    let r = app
        .get("/api/v1/admin/cron/preview?schedule=*%20*%20*%20*%20*%20*&timezone=UTC")
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
}
