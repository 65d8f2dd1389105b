//! The spine, end to end through the real binary, on both stores: create an app,
//! upload a script, add a route, call it; edit (served at once), roll back,
//! restart (everything rebuilt from the log).

mod common;

use std::time::Duration;

use common::{Node, eventually, postgres_database};
use serde_json::json;

fn spine(database: Option<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let fixed_token = "pc_test_token_0123456789abcdef";
    let envs: Vec<(&str, &str)> = if database.is_some() {
        vec![("PICLOUD_BOOTSTRAP_TOKEN", fixed_token)]
    } else {
        vec![]
    };
    let node = Node::start(&data, database.as_deref(), &envs);
    let token = if database.is_some() {
        fixed_token.to_owned()
    } else {
        // Printed once and written to the data directory, mode 0600.
        let file = data.join("bootstrap-token");
        let token = std::fs::read_to_string(&file).expect("bootstrap-token file");
        let token = token.trim().to_owned();
        assert!(node.stdout().contains(&token), "token printed on stdout");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        token
    };

    // No token, wrong token.
    assert_eq!(node.get("/api/v1/admin/apps").status, 401);
    assert_eq!(
        node.call("GET", "/api/v1/admin/apps", "nope", None).status,
        401
    );

    let app = node.call(
        "POST",
        "/api/v1/admin/apps",
        &token,
        Some(json!({"slug": "demo", "name": "Demo"})),
    );
    assert_eq!(app.status, 201, "{}", app.text());
    let app = app.json();
    assert_eq!(app["slug"], "demo");
    let dup = node.call(
        "POST",
        "/api/v1/admin/apps",
        &token,
        Some(json!({"slug": "demo"})),
    );
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["code"], "slug_taken");

    let script = node.call(
        "POST",
        "/api/v1/admin/apps/demo/scripts",
        &token,
        Some(json!({"name": "hello", "source": "#{ hello: ctx.params.name }"})),
    );
    assert_eq!(script.status, 201, "{}", script.text());
    let script_id = script.json()["id"].as_str().expect("script id").to_owned();

    let route = node.call(
        "POST",
        "/api/v1/admin/apps/demo/routes",
        &token,
        Some(json!({"method": "GET", "path": "/hello/:name", "script_id": script_id})),
    );
    assert_eq!(route.status, 201, "{}", route.text());

    let hello = node.get("/demo/hello/world");
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(hello.json(), json!({"hello": "world"}));
    assert!(hello.header("x-request-id").is_some());
    let invocation_id = hello
        .header("x-invocation-id")
        .expect("invocation id")
        .to_owned();

    // A new version is served at once.
    let v2 = node.call(
        "PUT",
        &format!("/api/v1/admin/scripts/{script_id}"),
        &token,
        Some(json!({"source": "#{ hi: ctx.params.name, v: 2 }"})),
    );
    assert_eq!(v2.status, 200, "{}", v2.text());
    assert_eq!(v2.json()["version"], 2);
    assert_eq!(
        node.get("/demo/hello/you").json(),
        json!({"hi": "you", "v": 2})
    );

    // Rollback restores the old one.
    let back = node.call(
        "POST",
        &format!("/api/v1/admin/scripts/{script_id}/rollback"),
        &token,
        Some(json!({"version": 1})),
    );
    assert_eq!(back.status, 200, "{}", back.text());
    assert_eq!(
        node.get("/demo/hello/again").json(),
        json!({"hello": "again"})
    );

    // With nothing else in flight a run executes inline on the request's runtime
    // thread: recursion to the call-level ceiling fits its stack (a default
    // runtime stack overflows here in a debug build) and ends as the limit.
    let deep = node.create(
        "/api/v1/admin/apps/demo/scripts",
        &token,
        json!({
            "name": "deep",
            "source": "fn f(n) { f(n + 1) } f(0)",
            "sandbox": {"max_call_levels": 256},
        }),
    );
    let deep_id = deep["id"].as_str().expect("script id");
    node.create(
        "/api/v1/admin/apps/demo/routes",
        &token,
        json!({"method": "GET", "path": "/deep", "script_id": deep_id}),
    );
    let before = node.metric("picloud_inline_runs");
    let deep = node.get("/demo/deep");
    assert_eq!(deep.status, 507, "{}", deep.text());
    assert!(deep.text().contains("max_call_levels"), "{}", deep.text());
    assert_eq!(
        node.metric("picloud_inline_runs"),
        before + 1.0,
        "the lone run went inline"
    );

    // The run was recorded (by the batching writer, shortly after).
    let detail = eventually(Duration::from_secs(10), || {
        let r = node.call(
            "GET",
            &format!("/api/v1/admin/invocations/{invocation_id}"),
            &token,
            None,
        );
        (r.status == 200).then(|| r.json())
    })
    .expect("invocation recorded");
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["response_status"], 200);

    let status = node.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    // Restart: everything is rebuilt from the log.
    let node = Node::start(&data, database.as_deref(), &envs);
    assert_eq!(
        node.get("/demo/hello/restart").json(),
        json!({"hello": "restart"})
    );
    let versions = node.call(
        "GET",
        &format!("/api/v1/admin/scripts/{script_id}/versions"),
        &token,
        None,
    );
    let versions = versions.json();
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(versions["versions"][1]["live"], true);
    // Every run is listed: the three before the restart (the last recorded
    // at shutdown) and the one after. The list is a read model that catches
    // up with the log after the start, so it may take a moment.
    let mut last = serde_json::Value::Null;
    let listed = eventually(Duration::from_secs(10), || {
        last = node
            .call("GET", "/api/v1/admin/apps/demo/invocations", &token, None)
            .json();
        let ids: std::collections::HashSet<&str> = last["invocations"]
            .as_array()?
            .iter()
            .filter_map(|run| run["id"].as_str())
            .collect();
        (ids.len() == 4).then_some(())
    });
    assert!(listed.is_some(), "four runs listed: {last}");
    assert!(node.stop().success());
}

#[test]
fn spine_on_sqlite() {
    spine(None);
}

#[test]
fn spine_on_postgres() {
    if let Some(db) = postgres_database() {
        spine(Some(db.url.clone()));
    }
}

/// Concurrent calls mix inline runs (each moving its runtime thread's other work to a
/// spare thread) with queued ones; the spare threads stay within the runtime's cap
/// instead of growing with the rate of those hand-offs, and are kept afterwards.
#[cfg(target_os = "linux")]
#[test]
fn runtime_threads_stay_bounded_under_concurrent_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = "pc_test_token_0123456789abcdef";
    let node = Node::start(&data, None, &[("PICLOUD_BOOTSTRAP_TOKEN", token)]);
    node.create("/api/v1/admin/apps", token, json!({"slug": "demo"}));
    let script = node.create(
        "/api/v1/admin/apps/demo/scripts",
        token,
        json!({"name": "hello", "source": "#{ hello: ctx.params.name }"}),
    );
    let script_id = script["id"].as_str().expect("id");
    node.create(
        "/api/v1/admin/apps/demo/routes",
        token,
        json!({"method": "GET", "path": "/hello/:name", "script_id": script_id}),
    );

    let pid = node.child.id();
    let runtime_thread_ids = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("/proc/PID/task")
            .filter_map(|t| {
                let t = t.ok()?;
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                (comm.trim() == "picloud-io").then(|| t.file_name())
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    let runtime_threads = || runtime_thread_ids().len();
    let mut most = runtime_threads();
    std::thread::scope(|s| {
        let callers: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..150 {
                        let r = node.get("/demo/hello/x");
                        assert_eq!(r.status, 200, "{}", r.text());
                    }
                })
            })
            .collect();
        while callers.iter().any(|c| !c.is_finished()) {
            most = most.max(runtime_threads());
            std::thread::sleep(Duration::from_millis(5));
        }
        for c in callers {
            c.join().expect("caller");
        }
    });
    most = most.max(runtime_threads());
    let inline = node.metric("picloud_inline_runs");
    assert!(inline > 0.0, "some calls ran inline");
    // Worker threads (one per core) plus at most four blocking threads.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        most <= cores + 4,
        "{most} runtime threads for {cores} core(s) and {inline} inline runs"
    );
    // The spares are kept: none ends after tokio's default keep-alive of 10 s,
    // which would be work done while the node is otherwise idle.
    let after_burst = runtime_thread_ids();
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(
        runtime_thread_ids(),
        after_burst,
        "runtime threads ended while idle"
    );
    assert!(node.stop().success());
}
