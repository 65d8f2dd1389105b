//! Hot-path throughput (64 connections, like `wrk -t2 -c64 -d5s`) and latency (one
//! connection, p50 and p99) of `GET /demo/hello/x` → `#{ hello: ctx.params.name }`,
//! against a bare axum server answering the same JSON.

use std::sync::Arc;

use anyhow::{Context, bail};

use crate::baseline_server::BaselineProcess;
use crate::figures::Bench;
use crate::http::{self, Conn, Load};
use crate::node::Node;
use crate::report::{Figure, Status};
use crate::stats::Pair;

pub const HELLO: &str = "#{ hello: ctx.params.name }";
pub const PATH: &str = "/demo/hello/x";

pub async fn run(bench: &mut Bench) -> anyhow::Result<Vec<Figure>> {
    let s = &bench.settings;
    let node = Node::start(&s.picloud, &s.scratch.path().join("hot-path"), None).await?;
    let mut admin = node.admin().await?;
    admin
        .endpoint("demo", "hello", HELLO, "GET", "/hello/:name")
        .await?;
    let baseline = BaselineProcess::start().await?;

    let picloud_raw = Arc::new(http::request("GET", node.addr, PATH, &[], b""));
    let baseline_raw = Arc::new(http::request("GET", baseline.addr, PATH, &[], b""));
    same_answer(&node, &picloud_raw, &baseline, &baseline_raw).await?;

    let throughput = Load {
        connections: 64,
        duration: s.run_time(5_000),
        max_requests: s.scale(5_000_000, 2_000),
    };
    let latency = Load {
        connections: 1,
        duration: s.run_time(3_000),
        max_requests: s.scale(1_000_000, 300),
    };
    let warm_up = Load {
        duration: s.run_time(1_000),
        ..throughput
    };
    http::run(node.addr, picloud_raw.clone(), warm_up)
        .await?
        .check("picloud warm-up")?;
    admin.settle().await?;
    http::run(baseline.addr, baseline_raw.clone(), warm_up)
        .await?
        .check("baseline warm-up")?;

    let mut rps = Vec::new();
    for _ in 0..s.pairs {
        let a = http::run(node.addr, picloud_raw.clone(), throughput)
            .await?
            .check("picloud")?;
        // Recording the runs is part of their cost: the baseline must not
        // run while the node still writes them.
        admin.settle().await?;
        let b = http::run(baseline.addr, baseline_raw.clone(), throughput)
            .await?
            .check("bare axum")?;
        rps.push(Pair {
            picloud: a.rps(),
            baseline: b.rps(),
        });
    }
    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    for _ in 0..s.pairs {
        let a = http::run(node.addr, picloud_raw.clone(), latency)
            .await?
            .check("picloud")?;
        admin.settle().await?;
        let b = http::run(baseline.addr, baseline_raw.clone(), latency)
            .await?
            .check("bare axum")?;
        p50.push(Pair {
            picloud: a.p(50.0),
            baseline: b.p(50.0),
        });
        p99.push(Pair {
            picloud: a.p(99.0),
            baseline: b.p(99.0),
        });
    }
    drop(baseline);
    node.stop().await?;

    let mut p50_row = Figure::compared(
        "hot-path latency p50",
        "sqlite",
        "µs",
        "bare axum",
        p50,
        "report (goal on p99)",
        |_, _, _| true,
    );
    p50_row.status = Status::Reported;
    let p99_row = Figure::compared(
        "hot-path latency p99",
        "sqlite",
        "µs",
        "bare axum",
        p99,
        "p99 overhead < 200 µs",
        |p, b, _| p - b < 200.0,
    );
    let overhead = p99_row.picloud.unwrap_or(0.0) - p99_row.baseline.unwrap_or(0.0);
    Ok(vec![
        Figure::compared(
            "hot-path throughput",
            "sqlite",
            "req/s",
            "bare axum",
            rps,
            "ratio ≥ 0.8",
            |_, _, r| r >= 0.8,
        )
        .with_note("64 connections, closed loop, load generator on the same 2 cores"),
        p50_row,
        p99_row.with_note(format!("p99 overhead {overhead:.0} µs (1 connection)")),
    ])
}

/// Both servers must answer the same JSON, or the comparison means nothing.
async fn same_answer(
    node: &Node,
    picloud_raw: &[u8],
    baseline: &BaselineProcess,
    baseline_raw: &[u8],
) -> anyhow::Result<()> {
    let a = Conn::connect(node.addr).await?.send(picloud_raw).await?;
    let b = Conn::connect(baseline.addr)
        .await?
        .send(baseline_raw)
        .await?;
    let parse = |body: &[u8]| -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(body).context("not JSON")
    };
    if a.status != 200 || b.status != 200 || parse(&a.body)? != parse(&b.body)? {
        bail!(
            "PiCloud and the baseline answer differently: {} {} vs {} {}",
            a.status,
            a.text(),
            b.status,
            b.text()
        );
    }
    Ok(())
}
