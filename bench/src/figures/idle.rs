//! Idle cost: after a burst of hot-path load, the node's CPU ticks (utime + stime
//! of `/proc/PID/stat`) and context switches (summed over `/proc/PID/task/*/status`)
//! over 20 s of idleness. The goal is zero ticks and under one wake-up a second.

use std::sync::Arc;
use std::time::Duration;

use crate::figures::Bench;
use crate::figures::hot_path::{HELLO, PATH};
use crate::http::{self, Load};
use crate::node::Node;
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
    let before = node.cpu_sample()?;
    tokio::time::sleep(window).await;
    let after = node.cpu_sample()?;
    node.stop().await?;

    let ticks = after.ticks.saturating_sub(before.ticks);
    let wakeups = after
        .context_switches
        .saturating_sub(before.context_switches) as f64
        / window.as_secs_f64();
    let label = format!("{} s after load", window.as_secs());
    Ok(vec![
        Figure::absolute(
            "idle CPU",
            "sqlite",
            "ticks",
            ticks as f64,
            "0 ticks",
            Some(ticks == 0),
        )
        .with_note(format!("CPU ticks over {label}")),
        Figure::absolute(
            "idle wake-ups",
            "sqlite",
            "wake-ups/s",
            wakeups,
            "< 1 /s",
            Some(wakeups < 1.0),
        )
        .with_note(format!("context switches of all threads over {label}")),
    ])
}
