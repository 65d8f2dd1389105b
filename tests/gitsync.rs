//! Git sync end to end: the real binary, SQLite, a repository made with `git`.
//! An app bound to the repository redeploys when a signed push webhook arrives.

mod common;

use std::path::Path;
use std::time::Duration;

use common::git_http::{GitServer, git, git_installed, publish};
use common::{Node, Response, eventually, request};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const TOKEN: &str = "gitsync-test-owner-token-0123456789";
const SECRET: &str = "push-secret";
/// The name of the served repository.
const REPO: &str = "app.git";

fn start() -> (tempfile::TempDir, Node) {
    common::node_with_token(TOKEN)
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

/// A push without a signature.
fn unsigned_push(node: &Node, app: &str, body: &[u8]) -> Response {
    request(
        &node.addr,
        "POST",
        &format!("/hooks/git/{app}"),
        &[],
        Some(body),
    )
    .expect("request")
}

/// Wait until the binding records an error; its text.
fn wait_error(node: &Node, app: &str) -> String {
    eventually(Duration::from_secs(60), || {
        binding(node, app)["last_error"]["error"]
            .as_str()
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no error recorded: {}", binding(node, app)))
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
    let unsigned = unsigned_push(&node, "shop", &push_body("main", &third));
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
        (json!({ "url": "https://me:tok@github.com/a/b.git" }), "url"),
        (json!({ "url": "ftp://example.com/r.git" }), "url"),
        (json!({ "url": "ssh://git@github.com/a/b.git" }), "url"),
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
        Some(json!({ "url": "https://me:tok@example.com/r.git" })),
    );
    assert!(r.text().contains("credentials_secret"), "{}", r.text());
    assert!(!r.text().contains("tok@"), "{}", r.text());

    // Not bound: the binding and the webhook are 404.
    assert_eq!(node.call("GET", path, TOKEN, None).status, 404);
    assert_eq!(node.call("DELETE", path, TOKEN, None).status, 404);
    let hook = |app: &str| unsigned_push(&node, app, b"{}");
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
    // A push body above 1 MiB: 413 in the contract's error shape, nothing deploys.
    let mut big = br#"{"ref":"refs/heads/prod","pad":""#.to_vec();
    big.resize(1024 * 1024 + 1 - 2, b'x');
    big.extend_from_slice(br#""}"#);
    assert_eq!(big.len(), 1024 * 1024 + 1);
    let r = unsigned_push(&node, "blog", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "body_too_large", "{}", r.text());
    assert!(r.json()["error"].is_string(), "{}", r.text());
    std::thread::sleep(Duration::from_millis(300));
    let after = node.call("GET", path, TOKEN, None).json();
    assert_eq!(after["last_error"], Value::Null, "{after}");
    assert_eq!(after["deployed_at"], Value::Null, "{after}");
    let r = hook("blog");
    assert_eq!(r.status, 202, "{}", r.text());
    let failed = wait_error(&node, "blog");
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
    let types = event_types(&node, app_id);
    assert!(!types.iter().any(|t| t == "GitDeployFailed"), "{types:?}");
    let deployed = types.iter().filter(|t| *t == "GitDeployed").count();
    assert!((1..=6).contains(&deployed), "{types:?}");
}

/// A new working copy in `dir` (its commits are published with [`publish`]).
fn working_copy(dir: &Path) -> std::path::PathBuf {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(&work, &["init", "-q", "-b", "main"]);
    work
}

/// The types of `app_id`'s events, in order.
fn event_types(node: &Node, app_id: &str) -> Vec<String> {
    let events = node
        .call(
            "GET",
            &format!("/api/v1/admin/events?app={app_id}&limit=500"),
            TOKEN,
            None,
        )
        .json();
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn an_app_bound_to_an_https_repository_redeploys_with_the_credentials_of_its_secret() {
    if !git_installed() && common::missing("git") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("served");
    let work = working_copy(dir.path());
    let server = GitServer::start(&root, true, Some(("deployer", "s3cret")));
    let ca = server.ca_file.clone().expect("ca");
    let ca = ca.to_str().expect("utf-8");
    // The node trusts the test's certificate authority and may reach loopback
    // (the outbound guard refuses it otherwise, as for scripts).
    let node = Node::start(
        &dir.path().join("data"),
        None,
        &[
            ("PICLOUD_BOOTSTRAP_TOKEN", TOKEN),
            ("PICLOUD_GIT_CA_FILE", ca),
            ("PICLOUD_HTTP_ALLOW_CIDRS", "127.0.0.1/32"),
        ],
    );
    node.create("/api/v1/admin/apps", TOKEN, json!({ "slug": "shop" }));
    let url = server.url(REPO);
    let first = commit_project(&work, "#{ version: 1 }", "first");
    publish(&work, &root, REPO);

    // Bound without credentials: the fetch is refused, the error says why.
    node.create(
        "/api/v1/admin/apps/shop/git",
        TOKEN,
        json!({ "url": url, "path": "app", "secret": SECRET }),
    );
    let r = github_push(&node, "shop", &push_body("main", &first), SECRET);
    assert_eq!(r.status, 202, "{}", r.text());
    let failed = wait_error(&node, "shop");
    assert!(failed.contains("needs credentials (401)"), "{failed}");
    assert_eq!(binding(&node, "shop")["live_commit"], Value::Null);

    // The credentials in an app secret, named by the binding: deployed.
    let r = node.call(
        "PUT",
        "/api/v1/admin/apps/shop/secrets/GIT_TOKEN",
        TOKEN,
        Some(json!({ "value": "deployer:s3cret" })),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    node.create(
        "/api/v1/admin/apps/shop/git",
        TOKEN,
        json!({ "url": url, "path": "app", "secret": SECRET, "credentials_secret": "GIT_TOKEN" }),
    );
    let r = github_push(&node, "shop", &push_body("main", &first), SECRET);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["deploying"], true, "{}", r.text());
    let live = wait_live(&node, "shop", &first);
    assert_eq!(live["last_error"], Value::Null, "{live}");
    assert_eq!(served(&node, "shop")["version"], 1);

    // The next push: the new commit is fetched and goes live.
    let second = commit_project(&work, "#{ version: 2 }", "second");
    publish(&work, &root, REPO);
    let r = github_push(&node, "shop", &push_body("main", &second), SECRET);
    assert_eq!(r.status, 202, "{}", r.text());
    wait_live(&node, "shop", &second);
    assert_eq!(served(&node, "shop")["version"], 2);
    // The same commit again: nothing to do (once the lease is given back).
    let up_to_date = eventually(Duration::from_secs(30), || {
        let r = github_push(&node, "shop", &push_body("main", &second), SECRET);
        assert_eq!(r.status, 202, "{}", r.text());
        (r.json()["already"] == "live").then_some(())
    });
    assert!(up_to_date.is_some(), "never up to date");
    // A new binding starts with nothing live: the same commit deploys again.
    node.create(
        "/api/v1/admin/apps/shop/git",
        TOKEN,
        json!({ "url": url, "path": "app", "secret": SECRET, "credentials_secret": "GIT_TOKEN" }),
    );
    let r = github_push(&node, "shop", &push_body("main", &second), SECRET);
    assert_eq!(r.json()["deploying"], true, "{}", r.text());
    wait_live(&node, "shop", &second);

    // The credentials never show: not in the binding, the log or the node's logs.
    let app = node
        .call("GET", "/api/v1/admin/apps/shop", TOKEN, None)
        .json();
    let events = node
        .call(
            "GET",
            &format!(
                "/api/v1/admin/events?app={}&limit=500",
                app["id"].as_str().expect("id")
            ),
            TOKEN,
            None,
        )
        .text();
    for shown in [
        binding(&node, "shop").to_string(),
        app.to_string(),
        events,
        node.stderr(),
        node.stdout(),
    ] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    // Wrong credentials: refused, recorded, the live commit stays.
    let r = node.call(
        "PUT",
        "/api/v1/admin/apps/shop/secrets/GIT_TOKEN",
        TOKEN,
        Some(json!({ "value": "deployer:wrong" })),
    );
    assert_eq!(r.status, 204);
    let third = commit_project(&work, "#{ version: 3 }", "third");
    publish(&work, &root, REPO);
    github_push(&node, "shop", &push_body("main", &third), SECRET);
    let failed = wait_error(&node, "shop");
    assert!(failed.contains("refused the credentials"), "{failed}");
    assert_eq!(binding(&node, "shop")["live_commit"], json!(second));
}

#[test]
fn the_outbound_guard_applies_to_git_fetches_and_plain_http_deploys() {
    if !git_installed() && common::missing("git") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("served");
    let work = working_copy(dir.path());
    let server = GitServer::start(&root, false, None);
    let first = commit_project(&work, "#{ version: 1 }", "first");
    publish(&work, &root, REPO);
    // No exemption: loopback is refused by its category, nothing is fetched.
    let (_guarded_dir, guarded) = start();
    guarded.create("/api/v1/admin/apps", TOKEN, json!({ "slug": "blog" }));
    guarded.create(
        "/api/v1/admin/apps/blog/git",
        TOKEN,
        json!({ "url": server.url(REPO), "path": "app" }),
    );
    let before = server.requests.load(std::sync::atomic::Ordering::SeqCst);
    let r = unsigned_push(&guarded, "blog", &push_body("main", &first));
    assert_eq!(r.status, 202, "{}", r.text());
    let failed = wait_error(&guarded, "blog");
    assert!(
        failed.contains("destination refused (loopback)"),
        "{failed}"
    );
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        before
    );

    // Exempted: plain http deploys.
    let node = Node::start(
        &dir.path().join("data"),
        None,
        &[
            ("PICLOUD_BOOTSTRAP_TOKEN", TOKEN),
            ("PICLOUD_HTTP_ALLOW_CIDRS", "127.0.0.1/32"),
        ],
    );
    node.create("/api/v1/admin/apps", TOKEN, json!({ "slug": "blog" }));
    node.create(
        "/api/v1/admin/apps/blog/git",
        TOKEN,
        json!({ "url": server.url(REPO), "path": "app" }),
    );
    let r = unsigned_push(&node, "blog", &push_body("main", &first));
    assert_eq!(r.status, 202, "{}", r.text());
    wait_live(&node, "blog", &first);
    assert_eq!(served(&node, "blog")["version"], 1);
}

#[test]
fn two_nodes_receiving_the_same_push_deploy_it_once() {
    if !git_installed() && common::missing("git") {
        return;
    }
    let Some(db) = common::postgres_database() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let envs = [("PICLOUD_BOOTSTRAP_TOKEN", TOKEN)];
    let a = Node::start(&dir.path().join("a"), Some(&db.url), &envs);
    let b = Node::start(&dir.path().join("b"), Some(&db.url), &envs);
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    let app = a.create("/api/v1/admin/apps", TOKEN, json!({ "slug": "twice" }));
    let app_id = app["id"].as_str().expect("id").to_owned();
    a.create(
        "/api/v1/admin/apps/twice/git",
        TOKEN,
        json!({ "url": format!("file://{}", repo.display()), "path": "app", "secret": SECRET }),
    );
    let commit = commit_project(&repo, "#{ version: 1 }", "first");
    let body = push_body("main", &commit);

    // The git host's push reaches both nodes at the same moment.
    let barrier = std::sync::Barrier::new(2);
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let sends: Vec<_> = [&a, &b]
            .into_iter()
            .map(|node| {
                let (barrier, body) = (&barrier, &body);
                scope.spawn(move || {
                    barrier.wait();
                    let r = github_push(node, "twice", body, SECRET);
                    assert_eq!(r.status, 202, "{}", r.text());
                    r.json()
                })
            })
            .collect();
        sends.into_iter().map(|s| s.join().expect("push")).collect()
    });
    let started = answers.iter().filter(|a| a["deploying"] == true).count();
    assert_eq!(started, 1, "{answers:?}");
    let other = answers
        .iter()
        .find(|a| a["deploying"] == false)
        .expect("the other answer");
    assert!(
        other["already"] == "deploying" || other["already"] == "live",
        "{answers:?}"
    );
    assert_eq!(other["commit"], json!(commit), "{answers:?}");
    wait_live(&a, "twice", &commit);
    // The other node serves it once its catalog has the deploy's events.
    let on_b = eventually(Duration::from_secs(30), || {
        let r = b.get("/twice/version");
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(on_b.map(|v| v["version"].clone()), Some(json!(1)));

    // A push of it again never deploys: "deploying" until the lease is given
    // back just after the commit went live, then "live".
    let live = eventually(Duration::from_secs(30), || {
        let r = github_push(&b, "twice", &body, SECRET);
        assert_eq!(r.json()["deploying"], false, "{}", r.text());
        (r.json()["already"] == "live").then_some(())
    });
    assert!(live.is_some(), "the lease was never given back");
    // Once deployed, once recorded.
    let types = event_types(&a, &app_id);
    assert_eq!(
        types.iter().filter(|t| *t == "GitDeployed").count(),
        1,
        "{types:?}"
    );
    assert!(!types.iter().any(|t| t == "GitDeployFailed"), "{types:?}");
    assert_eq!(
        types.iter().filter(|t| *t == "ScriptCreated").count(),
        1,
        "{types:?}"
    );
}
