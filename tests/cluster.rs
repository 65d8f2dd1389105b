//! A cluster: real nodes on one PostgreSQL, a real Caddy in front (the proxy
//! settings that ship, `ops/caddy/proxy.caddy`). Nodes see each other in the
//! registry; a deploy on one is served by all; a cron tick fires once across
//! three nodes; a node killed mid-burst loses no accepted webhook delivery; a
//! node stopped with SIGTERM finishes its runs, hands back what it cannot
//! finish and leaves; a PostgreSQL restart under traffic is recovered from.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::DateTime;
use common::{Caddy, Node, PgServer, eventually, postgres_database, request};
use serde_json::{Value, json};

const TOKEN: &str = "pc_cluster_test_token_0123456789";
/// A loop of about 1.8 s per million iterations in a debug build.
const SLOW: &str = "let i = 0; while i < 1000000 { i += 1; } \"done\"";

fn envs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PICLOUD_BOOTSTRAP_TOKEN", TOKEN),
        ("PICLOUD_SLOTS", "2"),
        ("PICLOUD_SANDBOX_CEILING_MAX_OPERATIONS", "1000000000"),
        // Slow loops must not hit their own time limit on a loaded machine.
        ("PICLOUD_SANDBOX_CEILING_TIMEOUT_MS", "600000"),
    ]
}

fn script(node: &Node, app: &str, name: &str, source: &str) -> String {
    let created = node.create(
        &format!("/api/v1/admin/apps/{app}/scripts"),
        TOKEN,
        json!({
            "name": name,
            "source": source,
            "sandbox": {"max_operations": 500_000_000, "timeout_ms": 600_000}
        }),
    );
    created["id"].as_str().expect("script id").to_owned()
}

fn route(node: &Node, app: &str, path: &str, script_id: &str) {
    node.create(
        &format!("/api/v1/admin/apps/{app}/routes"),
        TOKEN,
        json!({"method": "GET", "path": path, "script_id": script_id}),
    );
}

/// The state the registry shows for `id`, as `node` sees it.
fn state_of(node: &Node, id: &str) -> Option<String> {
    node.nodes(TOKEN)
        .iter()
        .find(|n| n["id"] == id)
        .and_then(|n| n["state"].as_str().map(str::to_owned))
}

/// Every entry of an app's kv with `prefix`: key → value.
fn kv(node: &Node, app: &str, prefix: &str) -> Vec<(String, Value)> {
    let r = node.call(
        "GET",
        &format!("/api/v1/admin/apps/{app}/kv?prefix={prefix}&limit=1000"),
        TOKEN,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e["key"].as_str().unwrap_or("").to_owned(),
                        e["value"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How long until every node in `nodes` answers `path` with `body`.
fn served_everywhere(nodes: &[&Node], path: &str, body: &str) -> Duration {
    let start = Instant::now();
    let served = eventually(Duration::from_secs(10), || {
        nodes
            .iter()
            .all(|n| {
                request(&n.addr, "GET", path, &[], None)
                    .is_ok_and(|r| r.status == 200 && r.text() == body)
            })
            .then_some(())
    });
    assert!(
        served.is_some(),
        "{path} did not serve {body:?} on every node"
    );
    start.elapsed()
}

#[test]
fn three_nodes_behind_caddy_share_deploys_fire_cron_once_and_drain() {
    let Some(db) = postgres_database() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let envs = envs();
    let a = Node::start(&dir.path().join("a"), Some(&db.url), &envs);
    let b = Node::start(&dir.path().join("b"), Some(&db.url), &envs);
    let c_dir = dir.path().join("c");
    let c = Node::start(&c_dir, Some(&db.url), &envs);
    let Some(caddy) = Caddy::start(&[&a.addr, &b.addr, &c.addr]) else {
        return;
    };

    // Every node lists all three, up, each at its address, with its kept id.
    for node in [&a, &b, &c] {
        let nodes = node.nodes(TOKEN);
        assert_eq!(nodes.len(), 3, "{nodes:?}");
        for peer in [&a, &b, &c] {
            let row = nodes
                .iter()
                .find(|n| n["id"] == peer.id())
                .unwrap_or_else(|| panic!("{} missing from {nodes:?}", peer.id()));
            assert_eq!(row["state"], "up");
            assert_eq!(row["address"], peer.addr.as_str());
            assert_eq!(row["slots"], 2);
            assert!(row["last_seen_at"].is_string() && row["started_at"].is_string());
        }
    }
    let members = b.create(
        "/api/v1/admin/users",
        TOKEN,
        json!({"username": "mel", "role": "member", "password": "a fine passphrase"}),
    );
    let member_token = a.create(
        "/api/v1/admin/tokens",
        TOKEN,
        json!({"name": "mel", "scopes": ["admin"], "user_id": members["id"]}),
    )["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let r = c.call("GET", "/api/v1/admin/nodes", &member_token, None);
    assert_eq!(r.status, 403, "members may not see the nodes: {}", r.text());

    // A deploy on A is served by B and C; so is an edit.
    a.create("/api/v1/admin/apps", TOKEN, json!({"slug": "shop"}));
    let hello = script(&a, "shop", "hello", "\"v1\"");
    route(&a, "shop", "/hello", &hello);
    let first = served_everywhere(&[&b, &c], "/shop/hello", "v1");
    let r = a.call(
        "PUT",
        &format!("/api/v1/admin/scripts/{hello}"),
        TOKEN,
        Some(json!({"source": "\"v2\""})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let edit = served_everywhere(&[&b, &c], "/shop/hello", "v2");
    eprintln!("deploy served by every node after {first:?}; edit after {edit:?}");
    for _ in 0..30 {
        let r = request(&caddy.addr, "GET", "/shop/hello", &[], None).expect("through caddy");
        assert_eq!((r.status, r.text().as_str()), (200, "v2"));
    }
    let r = request(&caddy.addr, "GET", "/metrics", &[], None).expect("through caddy");
    assert_eq!(r.status, 404, "Caddy keeps /metrics off the public side");

    // An every-second cron trigger on three nodes: each tick fires once.
    let tick = script(
        &b,
        "shop",
        "tick",
        "kv::incr(\"tick:\" + ctx.event.cron.scheduled_at, 1); ()",
    );
    let trigger = a.create(
        "/api/v1/admin/apps/shop/triggers/cron",
        TOKEN,
        json!({"script_id": tick, "schedule": "* * * * * *", "timezone": "UTC"}),
    )["id"]
        .as_str()
        .expect("trigger id")
        .to_owned();
    // The scenario itself: let it fire for eight seconds.
    std::thread::sleep(Duration::from_secs(8));
    let r = c.call(
        "PATCH",
        &format!("/api/v1/admin/triggers/{trigger}"),
        TOKEN,
        Some(json!({"enabled": false})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let count = |status: &str| {
        let r = a.call(
            "GET",
            &format!("/api/v1/admin/apps/shop/invocations?script={tick}&status={status}&limit=500"),
            TOKEN,
            None,
        );
        r.json()["invocations"].as_array().map_or(0, Vec::len)
    };
    let settled = eventually(Duration::from_secs(60), || {
        let ticks = kv(&a, "shop", "tick:");
        (count("queued") == 0 && count("running") == 0 && count("succeeded") == ticks.len())
            .then_some(ticks)
    });
    let ticks = settled.expect("every claimed tick ran");
    assert!(ticks.len() >= 7, "ticks fired in 8 s: {ticks:?}");
    for (key, value) in &ticks {
        assert_eq!(value, &json!(1), "{key} fired {value} times");
    }
    let mut times: Vec<i64> = ticks
        .iter()
        .map(|(key, _)| {
            DateTime::parse_from_rfc3339(key.trim_start_matches("tick:"))
                .expect("scheduled_at")
                .timestamp()
        })
        .collect();
    times.sort_unstable();
    assert!(
        times.windows(2).all(|w| w[1] - w[0] == 1),
        "one firing per tick, none missed: {times:?}"
    );

    // SIGTERM on C while it runs a slow request: the run finishes, C leaves
    // the registry as gone and exits 0; Caddy keeps serving from A and B.
    let slow = script(&a, "shop", "slow", SLOW);
    route(&a, "shop", "/slow", &slow);
    served_everywhere(&[&c], "/shop/slow", "done");
    let c_id = c.id();
    let c_addr = c.addr.clone();
    let in_flight = std::thread::spawn(move || {
        request(&c_addr, "GET", "/shop/slow", &[], None).expect("slow request")
    });
    let running = eventually(Duration::from_secs(10), || {
        c.nodes(TOKEN)
            .iter()
            .any(|n| n["id"] == c_id.as_str() && n["in_flight"].as_i64() >= Some(1))
            .then_some(())
    });
    assert!(running.is_some(), "the slow request never showed in flight");
    let status = c.stop();
    assert!(status.success(), "a drained node exits 0: {status:?}");
    let answer = in_flight.join().expect("request thread");
    assert_eq!((answer.status, answer.text().as_str()), (200, "done"));
    assert_eq!(state_of(&a, &c_id).as_deref(), Some("gone"));
    for _ in 0..20 {
        let r = request(&caddy.addr, "GET", "/shop/hello", &[], None).expect("through caddy");
        assert_eq!(r.status, 200, "Caddy routes around the stopped node");
    }

    // Restarted on its data directory, C is the same node, up again.
    let c = Node::start(&c_dir, Some(&db.url), &envs);
    assert_eq!(c.id(), c_id);
    let row = a
        .nodes(TOKEN)
        .into_iter()
        .find(|n| n["id"] == c_id.as_str())
        .expect("C listed");
    assert_eq!(row["state"], "up");
    assert_eq!(row["address"], c.addr.as_str());
    assert_eq!(a.nodes(TOKEN).len(), 3, "a restart is not a new node");
}

#[test]
fn a_node_killed_mid_burst_loses_no_accepted_webhook_delivery() {
    const DELIVERIES: usize = 600;
    // Deliveries a killed node can have had claimed and running: its executor
    // slots (2) × the dispatcher's deliveries in flight per slot (16).
    const IN_FLIGHT_ON_A_NODE: usize = 32;
    let Some(db) = postgres_database() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let envs = envs();
    let a = Node::start(&dir.path().join("a"), Some(&db.url), &envs);
    let b_dir = dir.path().join("b");
    let mut b = Node::start(&b_dir, Some(&db.url), &envs);
    let c = Node::start(&dir.path().join("c"), Some(&db.url), &envs);
    let Some(caddy) = Caddy::start(&[&a.addr, &b.addr, &c.addr]) else {
        return;
    };
    a.create("/api/v1/admin/apps", TOKEN, json!({"slug": "relay"}));
    let counted = script(
        &a,
        "relay",
        "count",
        "let i = 0; while i < 20000 { i += 1; } \
         kv::incr(\"run:\" + ctx.event.delivery_id, 1); \"ok\"",
    );
    let hook = a.create(
        "/api/v1/admin/apps/relay/triggers/webhook",
        TOKEN,
        json!({"script_id": counted}),
    )["url"]
        .as_str()
        .expect("hook url")
        .to_owned();
    // Every node knows the hook before the burst starts.
    for node in [&a, &b, &c] {
        let known = eventually(Duration::from_secs(10), || {
            request(
                &node.addr,
                "POST",
                &hook,
                &[("webhook-id", "warm-up")],
                Some(b"{}"),
            )
            .ok()
            .filter(|r| r.status == 202)
        });
        assert!(known.is_some(), "{} does not know the hook", node.addr);
    }

    // Four senders through Caddy; a delivery answered anything but 202 (the
    // node it reached died under it) is sent again with the same id, as
    // webhook senders do, and deduplicated by PiCloud.
    let accepted = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(Mutex::new(vec![String::new(); DELIVERIES]));
    let retried = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (accepted, ids, retried) = (accepted.clone(), ids.clone(), retried.clone());
            let (addr, hook) = (caddy.addr.clone(), hook.clone());
            std::thread::spawn(move || {
                for n in (t..DELIVERIES).step_by(4) {
                    let delivery = format!("d-{n}");
                    let body = json!({ "n": n }).to_string();
                    let answer = eventually(Duration::from_secs(60), || {
                        let r = request(
                            &addr,
                            "POST",
                            &hook,
                            &[
                                ("webhook-id", delivery.as_str()),
                                ("content-type", "application/json"),
                            ],
                            Some(body.as_bytes()),
                        )
                        .ok();
                        if r.as_ref().is_some_and(|r| r.status == 202) {
                            r
                        } else {
                            retried.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                    })
                    .unwrap_or_else(|| panic!("{delivery} was never accepted"));
                    let id = answer.json()["invocation_id"]
                        .as_str()
                        .expect("id")
                        .to_owned();
                    ids.lock().expect("ids")[n] = id;
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let burst = eventually(Duration::from_secs(120), || {
        (accepted.load(Ordering::Relaxed) >= DELIVERIES / 4).then_some(())
    });
    assert!(burst.is_some(), "the burst did not get going");
    let b_id = b.id();
    b.child.kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = b.child.wait();
    for sender in senders {
        sender.join().expect("sender");
    }
    assert_eq!(accepted.load(Ordering::Relaxed), DELIVERIES);

    // The dead node is seen as gone within 30 s.
    let gone = eventually(Duration::from_secs(45), || {
        (state_of(&a, &b_id).as_deref() == Some("gone")).then(|| killed.elapsed())
    })
    .expect("the killed node is marked gone");
    assert!(gone <= Duration::from_secs(30), "gone after {gone:?}");

    // Every accepted delivery runs to success on the survivors.
    let runs = eventually(Duration::from_secs(180), || {
        let runs = kv(&a, "relay", "run:d-");
        (runs.len() == DELIVERIES).then_some(runs)
    })
    .expect("every accepted delivery ran");
    let duplicates: Vec<&(String, Value)> = runs.iter().filter(|(_, v)| v != &json!(1)).collect();
    eprintln!(
        "{DELIVERIES} deliveries accepted ({} sends retried after the kill), all ran; \
         marked gone {gone:?} after the kill; duplicates: {duplicates:?}",
        retried.load(Ordering::Relaxed)
    );
    assert!(
        duplicates.len() <= IN_FLIGHT_ON_A_NODE,
        "only runs in flight on the killed node may run twice: {duplicates:?}"
    );
    let ids = ids.lock().expect("ids").clone();
    for id in &ids {
        let finished = eventually(Duration::from_secs(30), || {
            let r = c.call(
                "GET",
                &format!("/api/v1/admin/invocations/{id}"),
                TOKEN,
                None,
            );
            (r.status == 200 && r.json()["status"] == "succeeded").then_some(())
        });
        assert!(finished.is_some(), "invocation {id} did not succeed");
    }

    // Restarted, the killed node is the same node, up again.
    let b = Node::start(&b_dir, Some(&db.url), &envs);
    assert_eq!(b.id(), b_id);
    assert_eq!(state_of(&c, &b_id).as_deref(), Some("up"));
}

#[test]
fn sigterm_finishes_an_outbox_run_and_hands_back_one_it_cannot_finish() {
    let Some(db) = postgres_database() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let envs = envs();
    let d = Node::start(&dir.path().join("d"), Some(&db.url), &envs);
    d.create("/api/v1/admin/apps", TOKEN, json!({"slug": "jobs"}));
    let slow = script(&d, "jobs", "slow", SLOW);
    let invoke = |node: &Node, script_id: &str| -> String {
        let r = node.call(
            "POST",
            &format!("/api/v1/admin/scripts/{script_id}/invoke?async=true"),
            TOKEN,
            Some(json!({"payload": {}})),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        r.json()["invocation_id"].as_str().expect("id").to_owned()
    };
    let running_on = |node: &Node| {
        let id = node.id();
        let seen = eventually(Duration::from_secs(20), || {
            node.nodes(TOKEN)
                .iter()
                .any(|n| n["id"] == id.as_str() && n["in_flight"].as_i64() >= Some(1))
                .then_some(())
        });
        assert!(seen.is_some(), "no run in flight on {}", node.addr);
    };

    // A run in flight when SIGTERM arrives finishes and is recorded, once.
    let first = invoke(&d, &slow);
    running_on(&d);
    let d_dir = d.data_dir.clone();
    assert!(d.stop().success(), "a drained node exits 0");
    let e = Node::start(
        &dir.path().join("e"),
        Some(&db.url),
        &[envs.as_slice(), &[("PICLOUD_DRAIN_SECONDS", "1")]].concat(),
    );
    let r = e.call(
        "GET",
        &format!("/api/v1/admin/invocations/{first}"),
        TOKEN,
        None,
    );
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text());
    assert_eq!(r.json()["attempts"], 1, "{}", r.text());
    assert_eq!(state_of(&e, &Node::id_in(&d_dir)).as_deref(), Some("gone"));

    // A run longer than the drain deadline is handed back at once: another node
    // runs it now, not when its lease would end (17 × its 10-minute limit).
    let very_slow = script(
        &e,
        "jobs",
        "very_slow",
        "let i = 0; while i < 3000000 { i += 1; } \"done\"",
    );
    let quick = script(&e, "jobs", "quick", "\"quick\"");
    let second = invoke(&e, &very_slow);
    running_on(&e);
    let f = Node::start(&dir.path().join("f"), Some(&db.url), &envs);
    let stopped = Instant::now();
    let e_log = e.stderr.clone();
    assert!(e.stop().success(), "exits 0 after the deadline");
    let e_log = std::fs::read_to_string(e_log).unwrap_or_default();
    assert!(
        e_log.contains("handed back unfinished outbox deliveries"),
        "{e_log}"
    );
    let handed_back = eventually(Duration::from_secs(240), || {
        let r = f.call(
            "GET",
            &format!("/api/v1/admin/invocations/{second}"),
            TOKEN,
            None,
        );
        (r.json()["status"] == "succeeded").then(|| r.json())
    })
    .expect("the handed-back run ran on f");
    eprintln!("handed-back run done {:?} after SIGTERM", stopped.elapsed());
    // Run by f in full, not recorded as a failure by e (which stopped it).
    assert_eq!(handed_back["attempts"], 1, "{handed_back}");
    assert!(
        stopped.elapsed() < Duration::from_secs(300),
        "taken up at once, not when its lease (hours) would end"
    );
    // f still takes new work meanwhile.
    let third = invoke(&f, &quick);
    let done = eventually(Duration::from_secs(20), || {
        let r = f.call(
            "GET",
            &format!("/api/v1/admin/invocations/{third}"),
            TOKEN,
            None,
        );
        (r.json()["status"] == "succeeded").then_some(())
    });
    assert!(done.is_some());
}

#[test]
fn a_postgresql_restart_under_traffic_is_recovered_by_every_node() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let envs = envs();
    let a = Node::start(&dir.path().join("a"), Some(&pg.url), &envs);
    let b = Node::start(&dir.path().join("b"), Some(&pg.url), &envs);
    a.create("/api/v1/admin/apps", TOKEN, json!({"slug": "live"}));
    let hello = script(&a, "live", "hello", "\"before\"");
    route(&a, "live", "/hello", &hello);
    served_everywhere(&[&a, &b], "/live/hello", "before");

    // Traffic on both nodes for the whole outage.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let served = Arc::new(AtomicUsize::new(0));
    let traffic: Vec<_> = [a.addr.clone(), b.addr.clone()]
        .into_iter()
        .map(|addr| {
            let (stop, failures, served) = (stop.clone(), failures.clone(), served.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match request(&addr, "GET", "/live/hello", &[], None) {
                        Ok(r) if r.status == 200 => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failures.lock().expect("failures").push(r.status),
                        Err(_) => failures.lock().expect("failures").push(0),
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();

    // Whether `node`'s /readyz answers `status` within `limit`.
    let readyz = |node: &Node, status: u16, limit: u64| {
        eventually(Duration::from_secs(limit), || {
            request(&node.addr, "GET", "/readyz", &[], None)
                .ok()
                .filter(|r| r.status == status)
        })
        .is_some()
    };
    pg.halt();
    for node in [&a, &b] {
        assert!(
            readyz(node, 503, 30),
            "{} stays ready without its store",
            node.addr
        );
    }
    let during = served.load(Ordering::Relaxed);
    pg.resume();
    for node in [&a, &b] {
        assert!(
            readyz(node, 200, 60),
            "{} did not recover:\n{}",
            node.addr,
            node.stderr()
        );
        let log = node.stderr();
        assert!(
            log.contains("link to PostgreSQL was lost")
                || log.contains("link to PostgreSQL failed")
                || log.contains("link to PostgreSQL is down"),
            "the outage is logged:\n{log}"
        );
    }
    // Deploys propagate again, and asynchronous runs run again.
    let r = a.call(
        "PUT",
        &format!("/api/v1/admin/scripts/{hello}"),
        TOKEN,
        Some(json!({"source": "\"after\""})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    served_everywhere(&[&a, &b], "/live/hello", "after");
    let r = b.call(
        "POST",
        &format!("/api/v1/admin/scripts/{hello}/invoke?async=true"),
        TOKEN,
        Some(json!({})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["invocation_id"].as_str().expect("id").to_owned();
    let ran = eventually(Duration::from_secs(30), || {
        let r = a.call(
            "GET",
            &format!("/api/v1/admin/invocations/{id}"),
            TOKEN,
            None,
        );
        (r.json()["status"] == "succeeded").then_some(())
    });
    assert!(ran.is_some(), "an async run after the restart");

    stop.store(true, Ordering::Relaxed);
    for t in traffic {
        t.join().expect("traffic");
    }
    let failures = failures.lock().expect("failures").clone();
    assert!(
        failures.is_empty(),
        "requests failed during the outage: {failures:?}"
    );
    assert!(during > 0, "traffic ran before the outage");
    // Every served run is recorded: none dropped while the store was away.
    for node in [&a, &b] {
        let recorded = eventually(Duration::from_secs(30), || {
            (node.metric("picloud_invocation_records_dropped") == 0.0).then_some(())
        });
        assert!(recorded.is_some(), "records dropped on {}", node.addr);
    }
}

/// One HTTPS request through `caddy` for `host` (resolved to Caddy), trusting
/// Caddy's local CA: the status and body, or the error (a refused handshake).
fn https(
    caddy: &Caddy,
    method: reqwest::Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let port: u16 = caddy
        .addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("caddy port");
    let root = reqwest::Certificate::from_pem(&caddy.root_pem()).expect("root certificate");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(root)
            .resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = client
            .request(method, format!("https://{host}:{port}{path}"))
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.map_err(|e| e.to_string())?))
    })
}

/// The shipped `ops/Caddyfile` (its site blocks as they are; certificates from
/// Caddy's local CA, there being no ACME here) in front of one node.
#[test]
fn the_shipped_caddyfile_serves_one_node_and_asks_it_before_issuing_a_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("one"), None, &envs());
    let Some(caddy) = Caddy::shipped(&node.addr) else {
        return;
    };
    let get = |host: &str, path: &str| https(&caddy, reqwest::Method::GET, host, path, &[], "");
    node.create("/api/v1/admin/apps", TOKEN, json!({"slug": "solo"}));
    let hello = script(&node, "solo", "hello", "#{ hello: ctx.params.name }");
    route(&node, "solo", "/hello/:name", &hello);

    // The platform's own site.
    let (status, body) = get("picloud.test", "/solo/hello/caddy").expect("through caddy");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).ok(),
        Some(json!({"hello": "caddy"}))
    );
    let hook = node.create(
        "/api/v1/admin/apps/solo/triggers/webhook",
        TOKEN,
        json!({"script_id": hello}),
    )["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let posted = https(
        &caddy,
        reqwest::Method::POST,
        "picloud.test",
        &hook,
        &[("webhook-id", "one")],
        "{}",
    );
    assert_eq!(posted.map(|(s, _)| s), Ok(202));
    assert_eq!(get("picloud.test", "/metrics").map(|(s, _)| s), Ok(404));
    assert_eq!(get("picloud.test", "/readyz").map(|(s, _)| s), Ok(200));

    // The `ask` endpoint: 200 for an app's domain, 404 for any other name.
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/solo/domains",
        TOKEN,
        Some(json!({"domain": "solo.example.com"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let ask = "/api/v1/admin/domains/check?domain=";
    assert_eq!(node.get(&format!("{ask}solo.example.com")).status, 200);
    assert_eq!(node.get(&format!("{ask}other.example.com")).status, 404);

    // Caddy asks before issuing: the app's domain gets a certificate on demand
    // and its requests reach the script; another name gets no certificate.
    let (status, body) = get("solo.example.com", "/hello/domain").expect("on-demand certificate");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).ok(),
        Some(json!({"hello": "domain"}))
    );
    let refused = get("other.example.com", "/hello/domain");
    assert!(
        refused.is_err(),
        "no certificate for another name: {refused:?}"
    );
    // The answer is the node's: once the app adds that name, it gets one too.
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/solo/domains",
        TOKEN,
        Some(json!({"domain": "other.example.com"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let (status, body) = get("other.example.com", "/hello/other").expect("now allowed");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_shipped_caddyfiles_are_valid() {
    for file in ["ops/Caddyfile", "ops/Caddyfile.cluster"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new("caddy")
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(common::repo_root().join(file))
            .env(
                "PICLOUD_UPSTREAMS",
                "127.0.0.1:8080 127.0.0.1:8081 127.0.0.1:8082",
            )
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .output();
        let Ok(out) = out else {
            if common::missing("caddy") {
                return;
            }
            unreachable!();
        };
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
