//! Git sync end to end: the real binary, SQLite, a repository made with `git`.
//! An app bound to the repository redeploys when a signed push webhook arrives.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Node, Response, eventually, request};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const TOKEN: &str = "gitsync-test-owner-token-0123456789";
const SECRET: &str = "push-secret";

fn start() -> (tempfile::TempDir, Node) {
    common::node_with_token(TOKEN)
}

fn git_installed() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.test"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Write the project (under `app/`) with `source` as the script, commit it on the
/// current branch, and return the commit.
fn commit_project(repo: &Path, source: &str, message: &str) -> String {
    write(
        &repo.join("app/picloud.toml"),
        "app = \"ignored-slug\"\n\n[[routes]]\nmethod = \"GET\"\npath = \"/version\"\nscript = \"api\"\n",
    );
    write(&repo.join("app/scripts/api.rhai"), source);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("hmac key");
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn push_body(branch: &str, after: &str) -> Vec<u8> {
    json!({ "ref": format!("refs/heads/{branch}"), "after": after })
        .to_string()
        .into_bytes()
}

/// A GitHub push webhook signed with `secret`.
fn github_push(node: &Node, app: &str, body: &[u8], secret: &str) -> Response {
    let sig = format!("sha256={}", hmac_hex(secret, body));
    request(
        &node.addr,
        "POST",
        &format!("/hooks/git/{app}"),
        &[
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig),
        ],
        Some(body),
    )
    .expect("request")
}

fn binding(node: &Node, app: &str) -> Value {
    let r = node.call("GET", &format!("/api/v1/admin/apps/{app}/git"), TOKEN, None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Wait until the binding shows `commit` live; the binding then.
fn wait_live(node: &Node, app: &str, commit: &str) -> Value {
    eventually(Duration::from_secs(60), || {
        let b = binding(node, app);
        (b["live_commit"] == json!(commit)).then_some(b)
    })
    .unwrap_or_else(|| {
        panic!(
            "{commit} never went live: {}\n{}",
            binding(node, app),
            node.stderr()
        )
    })
}

fn served(node: &Node, app: &str) -> Value {
    let r = node.get(&format!("/{app}/version"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn a_signed_push_redeploys_the_bound_branch_and_records_the_live_commit() {
    if !git_installed() && common::missing("git") {
        return;
    }
    let (dir, node) = start();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    node.create("/api/v1/admin/apps", TOKEN, json!({ "slug": "shop" }));

    // Bind: the secret is never echoed.
    let url = format!("file://{}", repo.display());
    let bound = node.create(
        "/api/v1/admin/apps/shop/git",
        TOKEN,
        json!({ "url": url, "path": "app", "secret": SECRET, "credentials_secret": "GIT_TOKEN" }),
    );
    assert_eq!(bound["branch"], "main", "{bound}");
    assert_eq!(bound["path"], "app");
    assert_eq!(bound["signed"], true);
    assert_eq!(bound["credentials_secret"], "GIT_TOKEN");
    assert_eq!(bound["live_commit"], Value::Null);
    assert_eq!(bound["webhook_path"], "/hooks/git/shop");
    assert!(!bound.to_string().contains(SECRET), "{bound}");

    // First push: deployed, and the commit is live.
    let first = commit_project(&repo, "#{ version: 1 }", "first");
    let r = github_push(&node, "shop", &push_body("main", &first), SECRET);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["deploying"], true);
    let live = wait_live(&node, "shop", &first);
    assert_eq!(live["last_error"], Value::Null);
    assert!(live["deployed_at"].is_string(), "{live}");
    assert_eq!(served(&node, "shop")["version"], 1);
    let app = node
        .call("GET", "/api/v1/admin/apps/shop", TOKEN, None)
        .json();
    assert_eq!(
        app["git"],
        json!({ "url": url, "branch": "main", "path": "app", "live_commit": first })
    );

    // A new commit: the new version, the new live commit.
    let second = commit_project(&repo, "#{ version: 2 }", "second");
    let r = github_push(&node, "shop", &push_body("main", &second), SECRET);
    assert_eq!(r.status, 202, "{}", r.text());
    wait_live(&node, "shop", &second);
    assert_eq!(served(&node, "shop")["version"], 2);

    // A bad signature: 401, nothing deployed.
    let third = commit_project(&repo, "#{ version: 3 }", "third");
    let r = github_push(&node, "shop", &push_body("main", &third), "wrong");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "invalid_signature");
    let unsigned = request(
        &node.addr,
        "POST",
        "/hooks/git/shop",
        &[],
        Some(&push_body("main", &third)),
    )
    .expect("request");
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());

    // A push to another branch is skipped.
    let r = github_push(&node, "shop", &push_body("feature", &third), SECRET);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["skipped"], "other branch");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(binding(&node, "shop")["live_commit"], json!(second));
    assert_eq!(served(&node, "shop")["version"], 2);

    // A script that does not compile: the error is recorded, version 2 stays live.
    let broken = commit_project(&repo, "#{ version: ", "broken");
    let r = github_push(&node, "shop", &push_body("main", &broken), SECRET);
    assert_eq!(r.status, 202, "{}", r.text());
    let failed = eventually(Duration::from_secs(60), || {
        let b = binding(&node, "shop");
        (b["last_error"]["commit"] == json!(broken)).then_some(b)
    })
    .unwrap_or_else(|| panic!("no error recorded: {}", binding(&node, "shop")));
    let error = failed["last_error"]["error"].as_str().expect("error text");
    assert!(error.contains("api.rhai"), "{error}");
    assert_eq!(failed["live_commit"], json!(second));
    assert_eq!(served(&node, "shop")["version"], 2);

    // Gitea's signature header, addressed by the app's id: the fix deploys.
    let fixed = commit_project(&repo, "#{ version: 4 }", "fixed");
    let app_id = app["id"].as_str().expect("id");
    let body = push_body("main", &fixed);
    let r = request(
        &node.addr,
        "POST",
        &format!("/hooks/git/{app_id}"),
        &[
            ("content-type", "application/json"),
            ("x-gitea-event", "push"),
            ("x-gitea-signature", &hmac_hex(SECRET, &body)),
        ],
        Some(&body),
    )
    .expect("request");
    assert_eq!(r.status, 202, "{}", r.text());
    let live = wait_live(&node, "shop", &fixed);
    assert_eq!(
        live["last_error"],
        Value::Null,
        "a success clears the error"
    );
    assert_eq!(served(&node, "shop")["version"], 4);

    // The deploy's changes are recorded with the actor git:<slug>; the sealed
    // webhook secret is not shown by the events API.
    let events = node
        .call(
            "GET",
            &format!("/api/v1/admin/events?app={app_id}&limit=500"),
            TOKEN,
            None,
        )
        .json();
    let events = events["events"].as_array().expect("events");
    let actor_of = |ty: &str| {
        events
            .iter()
            .filter(|e| e["type"] == ty)
            .map(|e| {
                e["metadata"]["actor"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let saved = actor_of("ScriptVersionSaved");
    assert!(!saved.is_empty(), "{events:?}");
    assert!(saved.iter().all(|a| a == "git:shop"), "{saved:?}");
    assert!(actor_of("GitDeployed").iter().all(|a| a == "git:shop"));
    let bound_event = events
        .iter()
        .find(|e| e["type"] == "GitBound")
        .expect("GitBound");
    assert_eq!(bound_event["data"]["sealed_secret"], "[sealed]");
}

#[test]
fn binding_is_validated_and_unbinding_stops_the_webhook() {
    let (dir, node) = start();
    node.create("/api/v1/admin/apps", TOKEN, json!({ "slug": "blog" }));
    let path = "/api/v1/admin/apps/blog/git";
    for (body, field) in [
        (json!({ "url": "https://github.com/a/b.git" }), "url"),
        (json!({ "url": "git@github.com:a/b.git" }), "url"),
        (json!({ "url": "relative/repo" }), "url"),
        (json!({ "url": "/srv/r.git", "branch": "a..b" }), "branch"),
        (json!({ "url": "/srv/r.git", "path": "../up" }), "path"),
        (json!({ "url": "/srv/r.git", "secret": "" }), "secret"),
        (
            json!({ "url": "/srv/r.git", "credentials_secret": "no spaces" }),
            "credentials_secret",
        ),
        (json!({ "branch": "main" }), "url"),
        (json!({ "url": "/srv/r.git", "extra": 1 }), "extra"),
    ] {
        let r = node.call("POST", path, TOKEN, Some(body.clone()));
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert_eq!(r.json()["field"], field, "{body}: {}", r.text());
    }
    let r = node.call(
        "POST",
        path,
        TOKEN,
        Some(json!({ "url": "https://example.com/r.git" })),
    );
    assert!(
        r.text().contains("https remotes are not supported yet"),
        "{}",
        r.text()
    );

    // Not bound: the binding and the webhook are 404.
    assert_eq!(node.call("GET", path, TOKEN, None).status, 404);
    assert_eq!(node.call("DELETE", path, TOKEN, None).status, 404);
    let hook = |app: &str| {
        request(
            &node.addr,
            "POST",
            &format!("/hooks/git/{app}"),
            &[],
            Some(b"{}"),
        )
        .expect("request")
    };
    assert_eq!(hook("blog").status, 404);
    assert_eq!(hook("no-such-app").status, 404);

    // Bound without a secret: a push needs no signature. A repository that does
    // not exist records the error.
    let missing = dir.path().join("nowhere");
    let bound = node.create(
        path,
        TOKEN,
        json!({ "url": missing.display().to_string(), "branch": "prod" }),
    );
    assert_eq!(bound["signed"], false);
    assert_eq!(bound["path"], ".");
    let r = hook("blog");
    assert_eq!(r.status, 202, "{}", r.text());
    let failed = eventually(Duration::from_secs(30), || {
        let b = node.call("GET", path, TOKEN, None).json();
        b["last_error"]["error"].as_str().map(str::to_owned)
    })
    .expect("an error recorded");
    assert!(failed.contains("nowhere"), "{failed}");
    assert_eq!(
        node.call("GET", "/api/v1/admin/apps/blog", TOKEN, None)
            .json()["git"]["branch"],
        "prod"
    );

    // Unbound: 204, then the webhook is 404 again and the app shows no git.
    assert_eq!(node.call("DELETE", path, TOKEN, None).status, 204);
    assert_eq!(hook("blog").status, 404);
    let app = node
        .call("GET", "/api/v1/admin/apps/blog", TOKEN, None)
        .json();
    assert!(app.get("git").is_none(), "{app}");
}

#[test]
fn pushes_in_quick_succession_deploy_one_at_a_time_and_the_last_wins() {
    if !git_installed() && common::missing("git") {
        return;
    }
    let (dir, node) = start();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    let app = node.create("/api/v1/admin/apps", TOKEN, json!({ "slug": "rush" }));
    let url = format!("file://{}", repo.display());
    node.create(
        "/api/v1/admin/apps/rush/git",
        TOKEN,
        json!({ "url": url, "path": "app", "secret": SECRET }),
    );
    // Each commit is pushed at once, without waiting for the previous deploy.
    let mut last = String::new();
    for n in 1..=6 {
        last = commit_project(&repo, &format!("#{{ version: {n} }}"), &format!("v{n}"));
        let r = github_push(&node, "rush", &push_body("main", &last), SECRET);
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let live = wait_live(&node, "rush", &last);
    assert_eq!(live["last_error"], Value::Null, "{live}");
    assert_eq!(served(&node, "rush")["version"], 6);
    // Settled: nothing else deploys afterwards, and no deploy raced another (a
    // race would show as a failed deploy: a version conflict).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(binding(&node, "rush")["live_commit"], json!(last));
    let app_id = app["id"].as_str().expect("id");
    let events = node
        .call(
            "GET",
            &format!("/api/v1/admin/events?app={app_id}&limit=500"),
            TOKEN,
            None,
        )
        .json();
    let types: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(!types.contains(&"GitDeployFailed"), "{types:?}");
    let deployed = types.iter().filter(|t| **t == "GitDeployed").count();
    assert!((1..=6).contains(&deployed), "{types:?}");
}
