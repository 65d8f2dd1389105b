//! Export and import through the real binary: a random history built over HTTP on
//! a SQLite node is exported, imported into PostgreSQL (and into a second SQLite
//! store), and every read model the admin API serves is the same on a node
//! started on the import. A truncated or altered file, or a store with history,
//! is refused with nothing written.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Node, postgres_database};
use serde_json::{Value, json};

const TOKEN: &str = "pc_transfer_e2e_token_0123456789";

/// A small deterministic pseudo-random generator (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn picloud(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picloud"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PICLOUD_DATA_DIR")
        .output()
        .expect("run picloud")
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "picloud failed: {stderr}");
    stderr
}

fn refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should have been refused");
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
}

/// A random history of apps, scripts (with updates and rollbacks), routes,
/// domains, users, members, tokens, invocations and deletions.
fn random_history(node: &Node) {
    let mut rng = Lcg(7);
    let mut apps: Vec<String> = Vec::new();
    let mut scripts: Vec<(String, String)> = Vec::new();
    let mut users: Vec<String> = Vec::new();
    let call = |method: &str, path: &str, body: Option<Value>| {
        node.call(method, &format!("/api/v1/admin{path}"), TOKEN, body)
    };
    let mut accepted = 0;
    for step in 0..120 {
        let choice = if apps.is_empty() { 0 } else { rng.next(10) };
        let app = apps
            .get(rng.next(apps.len().max(1) as u64) as usize)
            .cloned()
            .unwrap_or_default();
        let r = match choice {
            0 => {
                let slug = format!("app{}", rng.next(12));
                let r = call(
                    "POST",
                    "/apps",
                    Some(json!({"slug": slug, "name": format!("App {step}")})),
                );
                if r.status == 201 {
                    apps.push(slug);
                }
                r
            }
            1 => {
                let r = call(
                    "POST",
                    &format!("/apps/{app}/scripts"),
                    Some(
                        json!({"name": format!("s{step}"), "source": format!("#{{ step: {step}, p: ctx.params }}")}),
                    ),
                );
                if r.status == 201 {
                    let id = r.json()["id"].as_str().expect("id").to_owned();
                    let route = call(
                        "POST",
                        &format!("/apps/{app}/routes"),
                        Some(
                            json!({"method": "GET", "path": format!("/r{step}/:x"), "script_id": id}),
                        ),
                    );
                    assert_eq!(route.status, 201, "{}", route.text());
                    scripts.push((app.clone(), id));
                }
                r
            }
            2 | 3 => match scripts.iter().find(|(a, _)| *a == app) {
                Some((_, id)) if rng.next(3) == 0 => call(
                    "POST",
                    &format!("/scripts/{id}/rollback"),
                    Some(json!({"version": 1})),
                ),
                Some((_, id)) => call(
                    "PUT",
                    &format!("/scripts/{id}"),
                    Some(json!({"source": format!("#{{ v: {step}, p: ctx.params }}")})),
                ),
                None => call(
                    "PATCH",
                    &format!("/apps/{app}"),
                    Some(json!({"name": format!("n{step}")})),
                ),
            },
            4 => {
                let routes = call("GET", &format!("/apps/{app}/routes"), None);
                let path = routes.json()["routes"]
                    .as_array()
                    .and_then(|r| r.first().cloned())
                    .and_then(|r| r["path"].as_str().map(str::to_owned));
                match path {
                    Some(p) => {
                        let url = format!("/{app}{}", p.replace(":x", &step.to_string()));
                        node.get(&url)
                    }
                    None => call("GET", &format!("/apps/{app}"), None),
                }
            }
            5 => call(
                "POST",
                &format!("/apps/{app}/domains"),
                Some(json!({"domain": format!("d{}.example.com", rng.next(15))})),
            ),
            6 => {
                let r = call(
                    "POST",
                    "/users",
                    Some(
                        json!({"username": format!("user{step}"), "role": (["member", "admin"][rng.next(2) as usize]), "password": "a long enough passphrase"}),
                    ),
                );
                if r.status == 201 {
                    users.push(r.json()["id"].as_str().expect("id").to_owned());
                }
                r
            }
            7 => match users.get(rng.next(users.len().max(1) as u64) as usize) {
                Some(user) => call(
                    "POST",
                    &format!("/apps/{app}/members"),
                    Some(
                        json!({"user_id": user, "role": (["viewer", "developer", "admin"][rng.next(3) as usize])}),
                    ),
                ),
                None => call("GET", "/users", None),
            },
            8 => call(
                "POST",
                "/tokens",
                Some(json!({"name": format!("t{step}"), "scopes": ["apps:read"]})),
            ),
            _ => {
                if rng.next(3) == 0 {
                    let r = call("DELETE", &format!("/apps/{app}"), None);
                    if r.status == 200 || r.status == 204 {
                        apps.retain(|a| *a != app);
                        scripts.retain(|(a, _)| *a != app);
                    }
                    r
                } else {
                    call(
                        "PATCH",
                        &format!("/apps/{app}"),
                        Some(json!({"name": format!("again {step}")})),
                    )
                }
            }
        };
        assert!(r.status < 500, "step {step}: {} {}", r.status, r.text());
        if r.status < 300 {
            accepted += 1;
        }
    }
    assert!(accepted > 60, "the history did something ({accepted})");
    assert!(!apps.is_empty() && !users.is_empty() && !scripts.is_empty());
    // Secrets (sealed in the log) and kv data (beside it) travel too.
    for (i, app) in apps.iter().enumerate() {
        let r = call(
            "PUT",
            &format!("/apps/{app}/secrets/TOKEN_{i}"),
            Some(json!({"value": format!("secret {i}")})),
        );
        assert_eq!(r.status, 204, "{}", r.text());
        for key in ["a", "b/c", "ünï"] {
            let r = call(
                "PUT",
                &format!("/apps/{app}/kv/{}", key.replace('/', "%2F")),
                Some(json!({"value": {"app": app, "key": key, "n": i}})),
            );
            assert_eq!(r.status, 204, "{}", r.text());
        }
    }
}

/// Every read model the admin API serves, as one JSON document, once every
/// projection has caught up with the log (a node is ready before its stored read
/// models have replayed everything).
fn read_models(node: &Node) -> Value {
    let settled = common::eventually(std::time::Duration::from_secs(60), || {
        let r = node.call("GET", "/api/v1/admin/projections", TOKEN, None);
        let all_caught_up = r.status == 200
            && r.json()["projections"]
                .as_array()
                .is_some_and(|p| p.iter().all(|x| x["lag"] == 0));
        all_caught_up.then_some(())
    });
    assert!(settled.is_some(), "projections never caught up");
    let get = |path: &str| {
        let r = node.call("GET", &format!("/api/v1/admin{path}"), TOKEN, None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    };
    let apps = get("/apps");
    let mut per_app = serde_json::Map::new();
    for app in apps["apps"].as_array().expect("apps") {
        let slug = app["slug"].as_str().expect("slug");
        let scripts = get(&format!("/apps/{slug}/scripts"));
        let mut versions = Vec::new();
        for s in scripts["scripts"].as_array().expect("scripts") {
            let id = s["id"].as_str().expect("id");
            versions.push(get(&format!("/scripts/{id}")));
            versions.push(get(&format!("/scripts/{id}/versions")));
        }
        let invocations = get(&format!("/apps/{slug}/invocations?limit=500"));
        let mut details = Vec::new();
        for i in invocations["invocations"].as_array().expect("invocations") {
            let id = i["id"].as_str().expect("id");
            details.push(get(&format!("/invocations/{id}")));
        }
        per_app.insert(
            slug.to_owned(),
            json!({
                "app": get(&format!("/apps/{slug}")),
                "scripts": scripts,
                "script_details": versions,
                "routes": get(&format!("/apps/{slug}/routes")),
                "members": get(&format!("/apps/{slug}/members")),
                "secrets": get(&format!("/apps/{slug}/secrets")),
                "kv": get(&format!("/apps/{slug}/kv?limit=1000")),
                "invocations": invocations,
                "invocation_details": details,
            }),
        );
    }
    json!({
        "apps": apps,
        "per_app": per_app,
        "users": get("/users"),
        "tokens": get("/tokens"),
        "audit": get("/audit?limit=500"),
        "events": get("/events?limit=1000"),
    })
}

fn export(data: &Path, file: &Path) {
    let stderr = ok(&picloud(&[
        "export",
        "--data-dir",
        &data.display().to_string(),
        "--out",
        &file.display().to_string(),
    ]));
    assert!(stderr.contains("exported"), "{stderr}");
}

#[test]
fn a_sqlite_log_exported_and_imported_serves_the_same_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("source");
    let node = Node::start(&data, None, &[("PICLOUD_BOOTSTRAP_TOKEN", TOKEN)]);
    random_history(&node);
    // Invocation records are written off the request path: read the state once the
    // node has stopped (and flushed) and started again.
    node.stop();
    let node = Node::start(&data, None, &[]);
    let before = read_models(&node);
    node.stop();

    let file = dir.path().join("log.jsonl");
    export(&data, &file);
    let text = std::fs::read_to_string(&file).expect("export file");
    assert!(
        text.starts_with(r#"{"format":"picloud-log","version":2,"#),
        "{}",
        &text[..80]
    );
    assert!(!dir.path().join("log.jsonl.partial").exists());

    // Damaged files are refused before the target store is even created.
    let lines: Vec<&str> = text.lines().collect();
    let truncated = dir.path().join("truncated.jsonl");
    std::fs::write(&truncated, lines[..lines.len() - 1].join("\n")).expect("write");
    let altered = dir.path().join("altered.jsonl");
    std::fs::write(
        &altered,
        text.replacen("\"type\":\"AppCreated\"", "\"type\":\"AppCreatedX\"", 1),
    )
    .expect("write");
    for (bad, needle) in [(&truncated, "truncated"), (&altered, "checksum")] {
        let target = dir
            .path()
            .join(format!("bad-{}", bad.display().to_string().len()));
        refused(
            &picloud(&[
                "import",
                &bad.display().to_string(),
                "--data-dir",
                &target.display().to_string(),
            ]),
            needle,
        );
        assert!(
            !target.join("picloud.db").exists(),
            "nothing was written for {needle}"
        );
    }
    // A store with history is never overwritten.
    refused(
        &picloud(&[
            "import",
            &file.display().to_string(),
            "--data-dir",
            &data.display().to_string(),
        ]),
        "not empty",
    );

    // SQLite → SQLite always; SQLite → PostgreSQL when the test command gave a server.
    let copy = dir.path().join("copy");
    ok(&picloud(&[
        "import",
        &file.display().to_string(),
        "--data-dir",
        &copy.display().to_string(),
    ]));
    let node = Node::start(&copy, None, &[]);
    assert_eq!(
        read_models(&node),
        before,
        "SQLite import serves the same state"
    );
    node.stop();

    if let Some(db) = postgres_database() {
        let url = &db.url;
        ok(&picloud(&[
            "import",
            &file.display().to_string(),
            "--database",
            url,
        ]));
        let pg_data = dir.path().join("pg");
        let node = Node::start(&pg_data, Some(url), &[]);
        assert_eq!(
            read_models(&node),
            before,
            "PostgreSQL import serves the same state"
        );
        // Exported again from PostgreSQL: the very same event lines.
        node.stop();
        let again = dir.path().join("again.jsonl");
        ok(&picloud(&[
            "export",
            "--database",
            url,
            "--out",
            &again.display().to_string(),
        ]));
        let body = |t: &str| -> Vec<String> {
            let lines: Vec<&str> = t.lines().collect();
            lines[1..lines.len() - 1]
                .iter()
                .map(|l| (*l).to_owned())
                .collect()
        };
        let again = std::fs::read_to_string(&again).expect("second export");
        assert_eq!(body(&again), body(&text), "events survive the round trip");
    }
}
