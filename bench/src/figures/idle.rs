//! Idle cost: after a burst of hot-path load, the node's CPU ticks (utime + stime
//! of `/proc/PID/stat`) and context switches (summed over `/proc/PID/task/*/status`)
//! over 20 s of idleness. The goal is zero ticks and under one wake-up a second.

use std::sync::Arc;
use std::time::Duration;

use crate::figures::Bench;
use crate::figures::hot_path::{HELLO, PATH};
use crate::http::{self, Load};
use crate::node::{Admin, Node};
use crate::report::Figure;

pub async fn run(bench: &mut Bench) -> anyhow::Result<Vec<Figure>> {
    let s = &bench.settings;
    let node = Node::start(&s.picloud, &s.scratch.path().join("idle"), None).await?;
    node.admin()
        .await?
        .endpoint("demo", "hello", HELLO, "GET", "/hello/:name")
        .await?;
    let raw = Arc::new(http::request("GET", node.addr, PATH, &[], b""));
    let load = Load {
        connections: 64,
        duration: s.run_time(3_000),
        max_requests: s.scale(5_000_000, 1_000),
    };
    http::run(node.addr, raw, load).await?.check("picloud")?;
    // Let the recorder's last batch and the projector settle: that is still load.
    tokio::time::sleep(Duration::from_millis(s.scale(1_000, 200))).await;
    let window = Duration::from_secs(s.scale(20, 2));
    let mut admin = node.admin().await?;
    let after_load = measure(&node, &mut admin, window).await?;
    // Then the same once the log has stopped growing: what is left is true idleness
    // (timers, polling), without the backlog of invocation records.
    let drained_in = admin.settle().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let drained = measure(&node, &mut admin, window).await?;
    node.stop().await?;

    let secs = window.as_secs();
    let mut rows = Vec::new();
    for (when, w, extra) in [
        (
            format!("{secs} s right after load"),
            after_load,
            format!(
                "read-model lag {} events when the window opened, {} when it closed; \
                 {} events appended during the window",
                after_load.lag_open, after_load.lag_close, after_load.appended
            ),
        ),
        (
            format!("{secs} s once the log stopped growing"),
            drained,
            format!(
                "the log stopped growing {:.1} s after the first window; {} events appended during the window",
                drained_in.as_secs_f64(),
                drained.appended
            ),
        ),
    ] {
        rows.push(
            Figure::absolute(
                &format!("idle CPU, {when}"),
                "sqlite",
                "ticks",
                w.ticks as f64,
                "0 ticks",
                Some(w.ticks == 0),
            )
            .with_note(extra),
        );
        rows.push(
            Figure::absolute(
                &format!("idle wake-ups, {when}"),
                "sqlite",
                "wake-ups/s",
                w.wakeups,
                "< 1 /s",
                Some(w.wakeups < 1.0),
            )
            .with_note(format!(
                "context switches of every thread; {} thread(s) started and {} ended \
                 during the window (an ended thread counts one)",
                w.threads_started, w.threads_ended
            )),
        );
    }
    Ok(rows)
}

/// What one idle window saw.
#[derive(Clone, Copy)]
struct Window {
    ticks: u64,
    /// Context switches per second, all threads (see `SwitchDelta`).
    wakeups: f64,
    threads_started: usize,
    threads_ended: usize,
    lag_open: i64,
    lag_close: i64,
    appended: i64,
}

async fn measure(node: &Node, admin: &mut Admin, window: Duration) -> anyhow::Result<Window> {
    let open = admin.log_state().await?;
    let before = node.cpu_sample()?;
    tokio::time::sleep(window).await;
    let after = node.cpu_sample()?;
    let close = admin.log_state().await?;
    let switches = after.switches_since(&before);
    Ok(Window {
        ticks: after.ticks.saturating_sub(before.ticks),
        wakeups: switches.switches as f64 / window.as_secs_f64(),
        threads_started: switches.started,
        threads_ended: switches.ended,
        lag_open: open.0,
        lag_close: close.0,
        appended: close.1 - open.1,
    })
}
