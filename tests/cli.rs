//! The client commands, run as the real binary against a real node (SQLite):
//! a project folder deployed, changed, planned, applied and applied again; a
//! broken script that fails the plan; exit codes; tokens, login and invoke.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Node;
use common::git_http::git;

const TOKEN: &str = "cli-test-owner-token-0123456789";

fn start() -> (tempfile::TempDir, Node) {
    common::node_with_token(TOKEN)
}

/// `picloud ARGS` with the node's URL and `token`, no terminal, and a config
/// directory of the test's own (`home`).
fn picloud_as(home: &Path, url: &str, token: Option<&str>, args: &[&str]) -> Output {
    picloud_with(home, url, token, &[], args)
}

/// `picloud_as` with more environment variables.
fn picloud_with(
    home: &Path,
    url: &str,
    token: Option<&str>,
    envs: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picloud"));
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("NO_COLOR", "1")
        .env_remove("PICLOUD_URL")
        .env_remove("PICLOUD_TOKEN")
        .env_remove("PICLOUD_GIT_CA_FILE")
        .env_remove("PICLOUD_GIT_CREDENTIALS")
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    if !url.is_empty() {
        cmd.env("PICLOUD_URL", url);
    }
    if let Some(t) = token {
        cmd.env("PICLOUD_TOKEN", t);
    }
    cmd.output().expect("run picloud")
}

struct Cli<'a> {
    home: &'a Path,
    url: String,
}

impl<'a> Cli<'a> {
    /// The CLI of `node`, with its config directory in `home`.
    fn of(home: &'a Path, node: &Node) -> Cli<'a> {
        Cli {
            home,
            url: format!("http://{}", node.addr),
        }
    }
    /// `picloud init` a project `name` in `home`: its folder and its `picloud.toml`.
    fn init(&self, name: &str) -> (std::path::PathBuf, String) {
        let project = self.home.join(name);
        self.ok(&["init", project.to_str().expect("utf-8")]);
        let manifest = std::fs::read_to_string(project.join("picloud.toml")).expect("read");
        (project, manifest)
    }
    fn run(&self, args: &[&str]) -> Output {
        picloud_as(self.home, &self.url, Some(TOKEN), args)
    }
    /// `run` with more environment variables.
    fn run_with(&self, envs: &[(&str, &str)], args: &[&str]) -> Output {
        picloud_with(self.home, &self.url, Some(TOKEN), envs, args)
    }
    /// Must exit 0; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "picloud {args:?}: stdout {} stderr {}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

/// The folder's plan lines (no diff lines, which are indented).
fn plan_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with("    ")).collect()
}

#[test]
fn init_then_deploy_serves_the_endpoint_and_a_second_deploy_has_no_changes() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let project = dir.path().join("myapp");
    let project = project.to_str().expect("utf-8 path");
    cli.ok(&["init", project]);
    assert!(Path::new(project).join("picloud.toml").is_file());
    assert!(Path::new(project).join("scripts/hello.rhai").is_file());

    let plan = cli.ok(&["deploy", project, "--dry-run"]);
    assert_eq!(
        plan_lines(&plan),
        ["+ app myapp", "+ script hello", "+ route GET /hello/:name"],
        "{plan}"
    );
    assert_eq!(
        node.call("GET", "/api/v1/admin/apps/myapp", TOKEN, None)
            .status,
        404
    );

    let applied = cli.ok(&["deploy", project, "--yes"]);
    assert!(applied.contains("applied 3 changes to myapp"), "{applied}");
    let served = node.get("/myapp/hello/world");
    assert_eq!(served.status, 200);
    assert_eq!(served.json()["hello"], "world");

    let again = cli.ok(&["deploy", project, "--yes", "--verify"]);
    assert_eq!(
        again.trim(),
        "no changes\nverified: myapp matches the folder"
    );

    assert_eq!(
        cli.ok(&["invoke", "myapp/hello/cli"]).trim(),
        r#"{"hello":"cli"}"#
    );
    let run = cli.ok(&["invoke", "--app", "myapp", "--script", "hello"]);
    assert_eq!(run.trim(), r#"{"hello":"world"}"#);
    assert!(cli.ok(&["apps"]).lines().any(|l| l.starts_with("myapp\t")));

    // The same folder as another app.
    let staging = cli.ok(&["deploy", project, "--app", "myapp-staging", "--yes"]);
    assert!(staging.starts_with("+ app myapp-staging\n"), "{staging}");
    assert_eq!(node.get("/myapp-staging/hello/s").json()["hello"], "s");
}

#[test]
fn a_changed_script_and_route_plan_exactly_those_changes_then_apply() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let root = dir.path().join("shop");
    std::fs::create_dir_all(root.join("scripts")).expect("mkdir");
    write(
        &root.join("picloud.toml"),
        r#"app = "shop"

[[routes]]
method = "GET"
path = "/old"
script = "api"

[[routes]]
method = "POST"
path = "/orders"
script = "api"

[[triggers.cron]]
name = "nightly"
script = "api"
schedule = "0 0 3 * * *"
"#,
    );
    write(
        &root.join("scripts/api.rhai"),
        "let a = 1;\nlet b = 2;\nlet c = 3;\n#{ sum: a + b + c }\n",
    );
    let dir_arg = root.to_str().expect("utf-8");
    cli.ok(&["deploy", dir_arg, "--yes"]);
    assert_eq!(node.get("/shop/old").json()["sum"], 6);

    // One line of the script, one route renamed, the cron moved by half an hour.
    write(
        &root.join("scripts/api.rhai"),
        "let a = 1;\nlet b = 20;\nlet c = 3;\n#{ sum: a + b + c }\n",
    );
    let manifest = std::fs::read_to_string(root.join("picloud.toml")).expect("read");
    write(
        &root.join("picloud.toml"),
        &manifest
            .replace("path = \"/old\"", "path = \"/new\"")
            .replace("0 0 3 * * *", "0 30 3 * * *"),
    );

    let plan = cli.ok(&["deploy", dir_arg, "--dry-run"]);
    assert_eq!(
        plan_lines(&plan),
        [
            "~ script api (1 line changed)",
            "+ route GET /new",
            r#"~ cron nightly: schedule "0 0 3 * * *" → "0 30 3 * * *""#,
            "kept (on the server, not in the folder; --prune removes): route GET /old",
        ],
        "{plan}"
    );
    assert!(
        plan.contains("    -let b = 2;\n    +let b = 20;\n"),
        "{plan}"
    );

    // --exit-code: 3 when there are changes.
    let out = cli.run(&["deploy", dir_arg, "--dry-run", "--exit-code"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // --prune adds the removal; --output json shows the same plan.
    let json = cli.ok(&[
        "deploy",
        dir_arg,
        "--dry-run",
        "--prune",
        "--output",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON plan");
    let changes: Vec<(String, String, String)> = json["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap_or_default().to_owned(),
                c["kind"].as_str().unwrap_or_default().to_owned(),
                c["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("change", "script", "api"),
        ("remove", "route", "GET /old"),
        ("add", "route", "GET /new"),
        ("change", "cron", "nightly"),
    ];
    assert_eq!(
        changes,
        expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())),
        "{json}"
    );
    assert_eq!(json["applied"], false);
    assert!(
        json["changes"][0]["diff"]
            .as_str()
            .is_some_and(|d| d.contains("+let b = 20;"))
    );
    // Nothing was applied by any of that.
    assert_eq!(node.get("/shop/old").json()["sum"], 6);

    let applied = cli.ok(&["deploy", dir_arg, "--yes", "--prune", "--verify"]);
    assert!(applied.contains("applied 4 changes to shop"), "{applied}");
    assert!(
        applied.contains("verified: shop matches the folder"),
        "{applied}"
    );
    assert_eq!(node.get("/shop/new").json()["sum"], 24);
    assert_eq!(node.get("/shop/old").status, 404);
    let triggers = node
        .call("GET", "/api/v1/admin/apps/shop/triggers", TOKEN, None)
        .json();
    let triggers = triggers["triggers"].as_array().expect("triggers").clone();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    assert_eq!(triggers[0]["schedule"], "0 30 3 * * *");

    assert_eq!(
        cli.ok(&["deploy", dir_arg, "--yes", "--prune"]).trim(),
        "no changes"
    );
}

#[test]
fn a_broken_script_fails_the_plan_naming_file_and_line_and_changes_nothing() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let project = dir.path().join("demo");
    let project_arg = project.to_str().expect("utf-8");
    cli.ok(&["init", project_arg]);
    cli.ok(&["deploy", project_arg, "--yes"]);
    let events_before = node
        .call("GET", "/api/v1/admin/events?limit=1000", TOKEN, None)
        .json()["events"]
        .as_array()
        .map_or(0, Vec::len);

    // A good change and a broken new script: neither is applied.
    write(
        &project.join("scripts/hello.rhai"),
        "#{ hello: \"changed\" }\n",
    );
    write(
        &project.join("scripts/broken.rhai"),
        "let x = 1;\nlet y = ;\n",
    );
    let out = cli.run(&["deploy", project_arg, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("demo/scripts/broken.rhai:2:"), "{err}");
    assert!(err.contains("does not compile"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    assert_eq!(node.get("/demo/hello/x").json()["hello"], "x");
    let events_after = node
        .call("GET", "/api/v1/admin/events?limit=1000", TOKEN, None)
        .json()["events"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(events_before, events_after, "no event appended");
}

#[test]
fn exit_codes_say_what_went_wrong_in_one_line() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let url = cli.url.clone();
    let project = dir.path().join("codes");
    let project_arg = project.to_str().expect("utf-8");
    cli.ok(&["init", project_arg]);

    // A refused token: 1, and says so.
    let out = picloud_as(dir.path(), &url, Some("not-a-real-token"), &["apps"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused the token (401)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).trim().lines().count(), 1);

    // Nobody listening: 1, naming the server.
    let port = common::free_port();
    let dead = format!("http://127.0.0.1:{port}");
    let out = picloud_as(
        dir.path(),
        &dead,
        Some(TOKEN),
        &["deploy", project_arg, "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("cannot reach the server at {dead}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).trim().lines().count(), 1);

    // Bad usage: 2.
    assert_eq!(
        cli.run(&["deploy", "--no-such-flag"]).status.code(),
        Some(2)
    );
    assert_eq!(
        cli.run(&["deploy", project_arg, "--exit-code"])
            .status
            .code(),
        Some(2)
    );
    // Changes, no terminal and no --yes: refused as bad usage, nothing applied.
    let out = cli.run(&["deploy", project_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(
        node.call("GET", "/api/v1/admin/apps/codes", TOKEN, None)
            .status,
        404
    );
    // No server configured at all.
    let out = picloud_as(dir.path(), "", None, &["apps"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("picloud login"), "{}", stderr(&out));

    // --dry-run --exit-code without changes: 0.
    cli.ok(&["deploy", project_arg, "--yes"]);
    cli.ok(&["deploy", project_arg, "--dry-run", "--exit-code"]);
}

#[test]
fn tokens_are_created_listed_and_revoked_and_login_keeps_a_private_config() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let url = cli.url.clone();
    let token = cli.ok(&["token", "create", "ci", "--scope", "apps:read"]);
    let token = token.trim().to_owned();
    assert!(!token.is_empty());
    let listed = cli.ok(&["token", "list"]);
    let line = listed
        .lines()
        .find(|l| l.contains("\tci\t"))
        .unwrap_or_else(|| panic!("ci in {listed}"));
    assert!(line.ends_with("active"), "{line}");
    let id = line.split('\t').next().expect("id").to_owned();

    // login with the new token: the file is the owner's alone, and later
    // commands need no flags or variables.
    let out = picloud_as(
        dir.path(),
        "",
        None,
        &["login", "--url", &url, "--token", &token],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let config = dir.path().join("config/picloud/config.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config)
            .expect("config")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = picloud_as(dir.path(), "", None, &["apps"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A refused token is not saved.
    let out = picloud_as(
        dir.path(),
        "",
        None,
        &["login", "--url", &url, "--token", "wrong-token-value"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        std::fs::read_to_string(&config)
            .expect("config")
            .contains(&token)
    );

    cli.ok(&["token", "revoke", &id]);
    let listed = cli.ok(&["token", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.ends_with("revoked")),
        "{listed}"
    );
    let out = picloud_as(dir.path(), "", None, &["apps"]);
    assert_eq!(out.status.code(), Some(1), "a revoked token is refused");

    // Users: create, list, update, delete.
    cli.ok(&["user", "create", "mel", "--role", "member"]);
    assert!(
        cli.ok(&["user", "list"])
            .lines()
            .any(|l| l.contains("\tmel\tmember"))
    );
    cli.ok(&["user", "update", "mel", "--role", "admin"]);
    assert!(
        cli.ok(&["user", "list"])
            .lines()
            .any(|l| l.contains("\tmel\tadmin"))
    );
    cli.ok(&["user", "delete", "mel"]);
    assert!(!cli.ok(&["user", "list"]).contains("\tmel\t"));
    drop(node);
}

#[test]
fn events_and_logs_show_what_happened() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let project = dir.path().join("seen");
    let project_arg = project.to_str().expect("utf-8");
    cli.ok(&["init", project_arg]);
    cli.ok(&["deploy", project_arg, "--yes"]);
    let events = cli.ok(&["events", "--app", "seen"]);
    assert!(events.contains("ScriptCreated"), "{events}");
    assert!(events.contains("RouteAdded"), "{events}");

    cli.ok(&["invoke", "seen/hello/logs"]);
    let logs = common::eventually(std::time::Duration::from_secs(10), || {
        let out = cli.ok(&["logs", "--app", "seen"]);
        out.contains("succeeded").then_some(out)
    });
    assert!(logs.is_some(), "the run shows in picloud logs");
}

#[test]
fn logs_follow_streams_runs_and_their_log_lines() {
    use std::io::{BufRead, BufReader};
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let url = cli.url.clone();
    let project = dir.path().join("tail");
    let project_arg = project.to_str().expect("utf-8");
    cli.ok(&["init", project_arg]);
    cli.ok(&["deploy", project_arg, "--yes"]);

    let mut follow = Command::new(env!("CARGO_BIN_EXE_picloud"))
        .args(["logs", "-f", "--app", "tail", "--script", "hello"])
        .env("PICLOUD_URL", &url)
        .env("PICLOUD_TOKEN", TOKEN)
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logs -f");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(follow.stderr.take().expect("stderr"));
    // Subscribed once it says so.
    let mut banner = String::new();
    err.read_line(&mut banner).expect("banner");
    assert!(banner.contains("following tail"), "{banner}");
    cli.ok(&["invoke", "tail/hello/stream"]);
    let run = lines.next().expect("a line").expect("utf-8");
    assert!(run.contains(" succeeded hello http "), "{run}");
    let log = lines.next().expect("a line").expect("utf-8");
    assert!(log.contains("info saying hello to stream"), "{log}");
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn a_signed_webhook_takes_its_secret_from_the_environment() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let (project, manifest) = cli.init("signed");
    let project_arg = project.to_str().expect("utf-8");
    write(
        &project.join("picloud.toml"),
        &format!(
            "{manifest}\n[[triggers.webhook]]\nscript = \"hello\"\nsecret_env = \"HOOK_SECRET\"\n"
        ),
    );
    // Without the variable the plan fails, naming it.
    let out = cli.run(&["deploy", project_arg, "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("HOOK_SECRET"), "{}", stderr(&out));

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picloud"));
    let out = cmd
        .args(["deploy", project_arg, "--yes"])
        .env("PICLOUD_URL", &cli.url)
        .env("PICLOUD_TOKEN", TOKEN)
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("HOOK_SECRET", "s3cret")
        .stdin(Stdio::null())
        .output()
        .expect("deploy");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("+ webhook hello"), "{}", stdout(&out));
    let triggers = node
        .call("GET", "/api/v1/admin/apps/signed/triggers", TOKEN, None)
        .json();
    assert_eq!(triggers["triggers"][0]["signed"], true, "{triggers}");
    // An unsigned delivery is refused.
    let url = triggers["triggers"][0]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let r = common::request(&node.addr, "POST", &url, &[], Some(b"{}")).expect("post");
    assert_eq!(r.status, 401, "{}", r.text());
}

#[test]
fn every_client_command_has_help_with_an_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    for command in [
        "init", "deploy", "invoke", "apps", "login", "logs", "events", "token", "user",
    ] {
        let out = picloud_as(dir.path(), "", None, &[command, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{command}");
        assert!(
            stdout(&out).contains("Example"),
            "{command} --help: {}",
            stdout(&out)
        );
    }
}

#[test]
fn modules_domains_names_and_settings_deploy_and_json_reports_the_apply() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let root = dir.path().join("full");
    std::fs::create_dir_all(root.join("scripts")).expect("mkdir");
    write(
        &root.join("picloud.toml"),
        r#"app = "full"
name = "Full app"
domains = ["full.example.test"]

[scripts.greet]
kind = "module"

[scripts.api.sandbox]
max_operations = 50000

[scripts.api.permissions]
kv = true

[[routes]]
path = "/hi/:name"
script = "api"

[[triggers.event]]
script = "api"
event = "order.paid"
"#,
    );
    write(
        &root.join("scripts/greet.rhai"),
        "fn hello(n) { \"hi \" + n }\n",
    );
    write(
        &root.join("scripts/api.rhai"),
        "import \"greet\" as g;\ng::hello(ctx.params.name)\n",
    );
    let root_arg = root.to_str().expect("utf-8");
    let out = cli.ok(&["deploy", root_arg, "--yes", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(
        report["done"],
        serde_json::json!([
            "+ app full",
            "+ domain full.example.test",
            "+ script greet (module)",
            "+ script api",
            "+ route GET /hi/:name",
            "+ event api on \"order.paid\""
        ])
    );
    assert_eq!(node.get("/full/hi/bob").text(), "hi bob");
    let app = node
        .call("GET", "/api/v1/admin/apps/full", TOKEN, None)
        .json();
    assert_eq!(app["name"], "Full app");
    assert_eq!(app["domains"], serde_json::json!(["full.example.test"]));
    assert_eq!(cli.ok(&["deploy", root_arg, "--yes"]).trim(), "no changes");

    // Settings changes show as such; dropping the permissions section removes them.
    let manifest = std::fs::read_to_string(root.join("picloud.toml")).expect("read");
    write(
        &root.join("picloud.toml"),
        &manifest
            .replace("max_operations = 50000", "max_operations = 60000")
            .replace("[scripts.api.permissions]\nkv = true\n", "")
            .replace("name = \"Full app\"", "name = \"Renamed\"")
            .replace("domains = [\"full.example.test\"]", "domains = []"),
    );
    let plan = cli.ok(&["deploy", root_arg, "--dry-run", "--prune"]);
    assert_eq!(
        plan_lines(&plan),
        [
            r#"~ app full: name "Full app" → "Renamed""#,
            "~ script api (sandbox, permissions)",
            "- domain full.example.test",
        ],
        "{plan}"
    );
    cli.ok(&["deploy", root_arg, "--yes", "--prune"]);
    let scripts = node
        .call("GET", "/api/v1/admin/apps/full/scripts", TOKEN, None)
        .json();
    let api = scripts["scripts"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "api"))
        .expect("api")
        .clone();
    assert_eq!(api["sandbox"]["max_operations"], 60000);
    assert!(api["permissions"].is_null(), "{api}");
    assert_eq!(
        cli.ok(&["deploy", root_arg, "--yes", "--prune"]).trim(),
        "no changes"
    );
}

#[test]
fn events_follow_prints_new_events_as_they_are_appended() {
    use std::io::{BufRead, BufReader};
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let last = node
        .call("GET", "/api/v1/admin/events?limit=1000", TOKEN, None)
        .json()["events"]
        .as_array()
        .and_then(|e| e.last().map(|e| e["position"].as_i64().unwrap_or(0)))
        .unwrap_or(0)
        .to_string();
    let mut follow = Command::new(env!("CARGO_BIN_EXE_picloud"))
        .args(["events", "--follow", "--after", &last])
        .env("PICLOUD_URL", &cli.url)
        .env("PICLOUD_TOKEN", TOKEN)
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn events --follow");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    node.create(
        "/api/v1/admin/apps",
        TOKEN,
        serde_json::json!({"slug": "later"}),
    );
    let line = lines.next().expect("a line").expect("utf-8");
    assert!(line.ends_with("\tAppCreated"), "{line}");
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn deploy_from_a_git_repository_takes_the_branch_s_commit() {
    if !common::git_http::git_installed() && common::missing("git") {
        return;
    }
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    let app = repo.join("app");
    cli.ok(&["init", app.to_str().expect("utf-8"), "--app", "gitapp"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", repo.display());

    let out = cli.run(&[
        "deploy", "--git", &url, "--branch", "main", "--path", "app", "--yes",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&first[..12]), "{}", stderr(&out));
    assert!(stderr(&out).contains("first"), "{}", stderr(&out));
    assert_eq!(node.get("/gitapp/hello/git").json()["hello"], "git");

    // What is not committed is not deployed.
    write(&app.join("scripts/hello.rhai"), "#{ hello: \"edited\" }\n");
    let plan = cli.ok(&[
        "deploy",
        "--git",
        &url,
        "--branch",
        "main",
        "--path",
        "app",
        "--dry-run",
    ]);
    assert_eq!(plan.trim(), "no changes");

    git(&repo, &["commit", "-q", "-am", "second"]);
    let plan = cli.ok(&[
        "deploy",
        "--git",
        &url,
        "--branch",
        "main",
        "--path",
        "app",
        "--dry-run",
        "--output",
        "json",
    ]);
    let plan: serde_json::Value = serde_json::from_str(&plan).expect("JSON");
    assert_eq!(plan["commit"], git(&repo, &["rev-parse", "HEAD"]));
    assert_eq!(plan["changes"][0]["name"], "hello");
    assert_eq!(plan["changes"][0]["op"], "change");
    cli.ok(&[
        "deploy", "--git", &url, "--branch", "main", "--path", "app", "--yes",
    ]);
    assert_eq!(node.get("/gitapp/hello/git").json()["hello"], "edited");

    // A broken script in the repository names its place in the repository.
    write(&app.join("scripts/broken.rhai"), "let = ;\n");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "broken"]);
    let out = cli.run(&[
        "deploy", "--git", &url, "--branch", "main", "--path", "app", "--yes",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{url}:app/scripts/broken.rhai:1")),
        "{}",
        stderr(&out)
    );

    let out = cli.run(&["deploy", "--git", &url, "--branch", "nope", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no branch \"nope\""),
        "{}",
        stderr(&out)
    );
    for other in [
        "ssh://git@example.test/x.git",
        "git@example.test:x.git",
        "ftp://x/y",
    ] {
        let out = cli.run(&["deploy", "--git", other, "--dry-run"]);
        assert_eq!(out.status.code(), Some(1), "{other}");
        assert!(
            stderr(&out).contains("only https://, http:// and file://"),
            "{other}: {}",
            stderr(&out)
        );
    }
    // A folder and --git together is bad usage.
    assert_eq!(
        cli.run(&["deploy", "x", "--git", &url]).status.code(),
        Some(2)
    );
}

#[test]
fn on_a_terminal_deploy_asks_and_colours_the_plan() {
    let installed = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed && common::missing("script (util-linux), for a terminal") {
        return;
    }
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let url = cli.url.clone();
    let project = dir.path().join("tty");
    let project_arg = project.to_str().expect("utf-8");
    cli.ok(&["init", project_arg]);
    // `script` runs the command on a pseudo-terminal fed from our standard input.
    let on_terminal = |answer: &str| {
        use std::io::Write;
        let command = format!("{} deploy {project_arg}", env!("CARGO_BIN_EXE_picloud"));
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("PICLOUD_URL", &url)
            .env("PICLOUD_TOKEN", TOKEN)
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env_remove("NO_COLOR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn script");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(answer.as_bytes())
            .expect("answer");
        let out = child.wait_with_output().expect("script");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let declined = on_terminal("n\n");
    assert!(
        declined.contains("\x1b[32m+ app tty\x1b[0m"),
        "{declined:?}"
    );
    assert!(
        declined.contains("apply 3 changes to tty? [y/N]"),
        "{declined:?}"
    );
    assert!(declined.contains("nothing changed"), "{declined:?}");
    assert_eq!(
        node.call("GET", "/api/v1/admin/apps/tty", TOKEN, None)
            .status,
        404
    );

    let accepted = on_terminal("y\n");
    assert!(
        accepted.contains("applied 3 changes to tty"),
        "{accepted:?}"
    );
    assert_eq!(node.get("/tty/hello/yes").json()["hello"], "yes");
}

#[test]
fn a_change_the_server_refuses_stops_the_apply_and_says_what_was_done() {
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    let (project, manifest) = cli.init("ceiling");
    let project_arg = project.to_str().expect("utf-8");
    // Above the server's ceiling: only the server knows its ceilings.
    write(
        &project.join("picloud.toml"),
        &format!("{manifest}\n[scripts.hello.sandbox]\nmax_operations = 999999999999\n"),
    );
    let out = cli.run(&["deploy", project_arg, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("applied before the failure:\n  + app ceiling"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(err.starts_with("picloud: + script hello: "), "{err}");
    assert!(err.contains("sandbox.max_operations"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Fixed, the next deploy plans the rest.
    write(&project.join("picloud.toml"), &manifest);
    let plan = cli.ok(&["deploy", project_arg, "--dry-run"]);
    assert_eq!(
        plan_lines(&plan),
        ["+ script hello", "+ route GET /hello/:name"]
    );
}

/// README, "Deploy with the CLI", step by step (the prompt answered by `--yes`).
#[test]
fn the_readme_walkthrough_with_the_cli() {
    let (dir, node) = start();
    let url = format!("http://{}", node.addr);
    let home = dir.path();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_picloud"))
            .args(args)
            .current_dir(home)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env_remove("PICLOUD_URL")
            .env_remove("PICLOUD_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("run picloud");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    run(&["login", "--url", &url, "--token", TOKEN]);
    run(&["init", "demo"]);
    let applied = run(&["deploy", "demo", "--yes"]);
    assert_eq!(
        applied,
        "+ app demo\n+ script hello\n+ route GET /hello/:name\napplied 3 changes to demo\n"
    );
    assert_eq!(
        run(&["invoke", "demo/hello/world"]),
        "{\"hello\":\"world\"}\n"
    );
    assert_eq!(run(&["deploy", "demo"]), "no changes\n");
}

#[test]
fn deploy_from_an_https_repository_with_credentials_and_a_plain_http_one() {
    if !common::git_http::git_installed() && common::missing("git") {
        return;
    }
    let (dir, node) = start();
    let cli = Cli::of(dir.path(), &node);
    // A working copy pushed to bare repositories served over https (basic auth)
    // and plain http.
    let work = dir.path().join("work");
    let root = dir.path().join("served");
    std::fs::create_dir_all(&work).expect("mkdir");
    std::fs::create_dir_all(&root).expect("mkdir");
    git(&work, &["init", "-q", "-b", "main"]);
    let app = work.join("app");
    cli.ok(&["init", app.to_str().expect("utf-8"), "--app", "overhttps"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "over the wire"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    for name in ["private.git", "public.git"] {
        common::git_http::publish(&work, &root, name);
    }
    let https = common::git_http::GitServer::start(&root, true, Some(("deployer", "s3cret")));
    let ca = https.ca_file.clone().expect("ca file");
    let ca = ca.to_str().expect("utf-8");
    let url = https.url("private.git");
    let deploy = |envs: &[(&str, &str)], url: &str| {
        cli.run_with(
            envs,
            &[
                "deploy", "--git", url, "--branch", "main", "--path", "app", "--yes",
            ],
        )
    };

    // The certificate authority is not trusted without PICLOUD_GIT_CA_FILE.
    let out = deploy(&[("PICLOUD_GIT_CREDENTIALS", "deployer:s3cret")], &url);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
    // Without credentials: refused, one clear line, nothing deployed.
    let out = deploy(&[("PICLOUD_GIT_CA_FILE", ca)], &url);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs credentials (401)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert_eq!(node.get("/overhttps/hello/git").status, 404);
    // Wrong ones: refused, and never printed.
    let out = deploy(
        &[
            ("PICLOUD_GIT_CA_FILE", ca),
            ("PICLOUD_GIT_CREDENTIALS", "deployer:wrong"),
        ],
        &url,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused the credentials"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("wrong"), "{}", stderr(&out));
    // A missing CA file is named.
    let out = deploy(&[("PICLOUD_GIT_CA_FILE", "/nonexistent/ca.pem")], &url);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("PICLOUD_GIT_CA_FILE"),
        "{}",
        stderr(&out)
    );

    // With both: deployed from the fetched commit.
    let out = deploy(
        &[
            ("PICLOUD_GIT_CA_FILE", ca),
            ("PICLOUD_GIT_CREDENTIALS", "deployer:s3cret"),
        ],
        &url,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&commit[..12]), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    assert_eq!(node.get("/overhttps/hello/git").json()["hello"], "git");
    // Credentials in the URL work too, and are not shown.
    let with_user = url.replace("https://", "https://deployer:s3cret@");
    let out = deploy(&[("PICLOUD_GIT_CA_FILE", ca)], &with_user);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("no changes"), "{}", stdout(&out));
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));

    // Plain http, no credentials needed: the same commit, nothing to change.
    let http = common::git_http::GitServer::start(&root, false, None);
    let out = deploy(&[], &http.url("public.git"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("no changes"), "{}", stdout(&out));
    // Credentials are never sent in clear text.
    let out = deploy(
        &[("PICLOUD_GIT_CREDENTIALS", "deployer:s3cret")],
        &http.url("public.git"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("only sent over https"),
        "{}",
        stderr(&out)
    );
}
