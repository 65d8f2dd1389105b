//! Deploy-to-serve: the time from sending the `PUT` of a new script version to the
//! first response served from it, polling the route on a keep-alive connection.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::figures::Bench;
use crate::http::{self, Conn};
use crate::node::Node;
use crate::report::Figure;
use crate::stats::median;

pub async fn run(bench: &mut Bench) -> anyhow::Result<Vec<Figure>> {
    let s = &bench.settings;
    let rounds = s.scale(30, 3);
    let node = Node::start(&s.picloud, &s.scratch.path().join("deploy"), None).await?;
    let mut admin = node.admin().await?;
    let id = admin
        .endpoint("deploy", "live", "#{ v: 0 }", "GET", "/v")
        .await?;
    let mut conn = Conn::connect(node.addr).await?;
    let get = http::request("GET", node.addr, "/deploy/v", &[], b"");
    let (mut total, mut put) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let start = Instant::now();
        admin
            .call(
                "PUT",
                &format!("/api/v1/admin/scripts/{id}"),
                json!({ "source": format!("#{{ v: {round} }}") }),
            )
            .await?;
        put.push(start.elapsed().as_secs_f64() * 1e3);
        loop {
            let reply = conn.send(&get).await?;
            let body: serde_json::Value =
                serde_json::from_slice(&reply.body).context("not JSON")?;
            if reply.status == 200 && body["v"] == round {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                bail!(
                    "version {round} not served within 5 s (last: {})",
                    reply.text()
                );
            }
        }
        total.push(start.elapsed().as_secs_f64() * 1e3);
    }
    node.stop().await?;
    let p50 = median(&total);
    let max = total.iter().copied().fold(0.0, f64::max);
    Ok(vec![
        Figure::absolute(
            "deploy-to-serve",
            "sqlite",
            "ms",
            p50,
            "< 10 ms",
            Some(p50 < 10.0),
        )
        .with_note(format!(
            "median of {rounds}; max {max:.2} ms; the PUT itself {:.2} ms (median)",
            median(&put)
        )),
    ])
}
