//! Memory: VmRSS of a fresh idle node, and after 100 apps × 10 scripts (each routed
//! and invoked once, so its AST is compiled and cached).

use std::time::Duration;

use serde_json::json;

use crate::figures::Bench;
use crate::http::{self, Conn};
use crate::node::Node;
use crate::report::Figure;

pub async fn run(bench: &mut Bench) -> anyhow::Result<Vec<Figure>> {
    let s = &bench.settings;
    let (apps, scripts) = s.scale((100, 10), (3, 2));
    let settle = Duration::from_millis(s.scale(1_000, 200));
    let node = Node::start(&s.picloud, &s.scratch.path().join("memory"), None).await?;
    tokio::time::sleep(settle).await;
    let idle = mb(node.rss_mib()?);

    let mut admin = node.admin().await?;
    let mut conn = Conn::connect(node.addr).await?;
    for a in 0..apps {
        let app = format!("app{a}");
        admin
            .call("POST", "/api/v1/admin/apps", json!({ "slug": app }))
            .await?;
        for n in 0..scripts {
            let source = format!("#{{ app: \"{app}\", script: {n}, name: ctx.params.name }}");
            admin
                .endpoint(
                    &app,
                    &format!("s{n}"),
                    &source,
                    "GET",
                    &format!("/s{n}/:name"),
                )
                .await?;
        }
    }
    for a in 0..apps {
        for n in 0..scripts {
            let raw = http::request("GET", node.addr, &format!("/app{a}/s{n}/x"), &[], b"");
            let reply = conn.send(&raw).await?;
            if reply.status != 200 {
                anyhow::bail!("/app{a}/s{n}/x: status {}: {}", reply.status, reply.text());
            }
        }
    }
    tokio::time::sleep(settle).await;
    let loaded = mb(node.rss_mib()?);
    node.stop().await?;
    Ok(vec![
        Figure::absolute(
            "RSS idle after start",
            "sqlite",
            "MB",
            idle,
            "< 30 MB",
            Some(idle < 30.0),
        ),
        Figure::absolute(
            &format!("RSS with {apps} apps × {scripts} scripts"),
            "sqlite",
            "MB",
            loaded,
            "< 100 MB",
            Some(loaded < 100.0),
        )
        .with_note("every script routed and invoked once"),
    ])
}

fn mb(mib: f64) -> f64 {
    mib * 1024.0 * 1024.0 / 1e6
}
