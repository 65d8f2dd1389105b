//! The configuration file, `picloud config check|show`, and SIGHUP reload, through
//! the real binary.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Node, eventually};
use serde_json::json;

const TOKEN: &str = "config-test-owner-token";

fn picloud(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_picloud"));
    command.args(args);
    // Nothing from the test's own environment may decide a setting.
    for (name, _) in std::env::vars() {
        if name.starts_with("PICLOUD_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command.envs(envs.iter().copied());
    command.output().expect("run picloud")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

#[test]
fn a_bad_value_fails_the_start_naming_the_key_the_file_and_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data").display().to_string();
    let file = write(
        dir.path(),
        "picloud.toml",
        &format!("data_dir = \"{data}\"\n\n# executor threads\nslots = \"four\"\n"),
    );
    let out = picloud(&["serve", "--config", &file], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("{file}:4: slots")), "{err}");
    assert!(err.contains("four"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!Path::new(&data).exists(), "nothing was started");

    // A value clap accepts but the node does not, the same way.
    let file = write(dir.path(), "zero.toml", "queue = 0\n");
    let out = picloud(&["serve"], &[("PICLOUD_CONFIG", &file)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{file}:1: queue")),
        "{}",
        stderr(&out)
    );

    // A sandbox knob that is no positive integer.
    let file = write(
        dir.path(),
        "knob.toml",
        "[sandbox.ceilings]\ntimeout_ms = -5\n",
    );
    let out = picloud(&["serve", "--config", &file], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{file}:2: sandbox.ceilings.timeout_ms")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unknown_key_fails_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "picloud.toml",
        "listen = \"127.0.0.1:0\"\nslot = 2\n",
    );
    let out = picloud(&["serve", "--config", &file], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{file}:2: unknown key `slot`")),
        "{err}"
    );
    assert!(err.contains("slots"), "the known keys are listed: {err}");
}

#[test]
fn config_check_validates_without_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let good = write(
        dir.path(),
        "good.toml",
        &format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nhttp_allow_cidrs = [\"10.1.0.0/16\"]\n\
             log_level = \"info,picloud=debug\"\n\n[sandbox.defaults]\ntimeout_ms = 5000\n",
            data.display()
        ),
    );
    let out = picloud(&["config", "check", &good], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    assert!(!data.exists(), "check starts nothing");

    let bad = write(
        dir.path(),
        "bad.toml",
        "listen = \"127.0.0.1:0\"\nhttp_allow_cidrs = \"10.1.0.0/33\"\n",
    );
    let out = picloud(&["config", "check", &bad], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("{bad}:2: http_allow_cidrs")), "{err}");

    let broken = write(
        dir.path(),
        "broken.toml",
        "listen = \"127.0.0.1:0\nslots = 2\n",
    );
    let out = picloud(&["config", "check", &broken], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{broken}:1:")),
        "{}",
        stderr(&out)
    );

    let out = picloud(&["config", "check", "/nonexistent/picloud.toml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/picloud.toml"));

    // Bad usage: no file.
    let out = picloud(&["config", "check"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_show_masks_secrets_and_names_where_each_setting_came_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "picloud.toml",
        "listen = \"127.0.0.1:9001\"\nslots = 3\n\
         database = \"postgres://picloud:hunter2-db@db.internal/picloud\"\n\
         bootstrap_token = \"file-token-0123456789\"\n\
         master_key = \"KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=\"\n\
         [sandbox.ceilings]\nmax_operations = 5000\n",
    );
    let out = picloud(
        &["config", "show", "--config", &file],
        &[
            ("PICLOUD_SLOTS", "2"),
            ("PICLOUD_SANDBOX_CEILING_TIMEOUT_MS", "9000"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |key: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} in:\n{shown}"))
            .to_owned()
    };
    for secret in ["hunter2-db", "file-token-0123456789", "KioqKioq"] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    assert!(line("database").contains("postgres://picloud:********@db.internal/picloud"));
    assert!(line("bootstrap_token").contains("\"********\""));
    assert!(line("master_key").contains(&format!("# file {file}:5")));
    // File, env over file, default.
    assert!(
        line("listen").contains(&format!("# file {file}:1")),
        "{shown}"
    );
    assert!(line("slots").starts_with("slots = 2 "), "{shown}");
    assert!(line("slots").ends_with("# env PICLOUD_SLOTS"), "{shown}");
    assert!(line("body_limit").ends_with("# default"), "{shown}");
    let ceilings = shown
        .split("[sandbox.ceilings]")
        .nth(1)
        .expect("ceilings table");
    assert!(ceilings.contains("max_operations = 5000"), "{shown}");
    assert!(
        ceilings.contains("timeout_ms = 9000")
            && ceilings.contains("# env PICLOUD_SANDBOX_CEILING_TIMEOUT_MS"),
        "{shown}"
    );

    // The flag wins over env and file: the node (given `--listen` by the helper)
    // answers there, not on the file's or the environment's address.
    let data = dir.path().join("data");
    let file = write(
        dir.path(),
        "node.toml",
        &format!(
            "listen = \"127.0.0.1:1\"\ndata_dir = \"{}\"\nbootstrap_token = \"{TOKEN}\"\n",
            data.display()
        ),
    );
    let node = Node::start(
        &data,
        None,
        &[("PICLOUD_CONFIG", &file), ("PICLOUD_LISTEN", "127.0.0.1:2")],
    );
    let r = node.call("GET", "/api/v1/admin/apps", TOKEN, None);
    assert_eq!(r.status, 200, "the file's token: {}", r.text());
}

/// A node started with `file` as its configuration, and an endpoint `/cfg/loop`
/// that takes about 20,000 operations.
fn node_with_loop(dir: &Path, file: &str) -> Node {
    let node = Node::start(
        &dir.join("data"),
        None,
        &[("PICLOUD_CONFIG", file), ("PICLOUD_LOG", "info")],
    );
    node.create("/api/v1/admin/apps", TOKEN, json!({"slug": "cfg"}));
    let script = node.create(
        "/api/v1/admin/apps/cfg/scripts",
        TOKEN,
        json!({
            "name": "loop",
            "kind": "endpoint",
            "source": "let x = 0; for i in 0..2000 { x += i; } x.to_string()",
        }),
    )["id"]
        .as_str()
        .expect("id")
        .to_owned();
    node.create(
        "/api/v1/admin/apps/cfg/routes",
        TOKEN,
        json!({"method": "GET", "path": "/loop", "script_id": script}),
    );
    let r = node.get("/cfg/loop");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "1999000");
    node
}

fn hangup(node: &Node) {
    let status = Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn sighup_lowers_a_sandbox_ceiling_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("bootstrap_token = \"{TOKEN}\"\ndrain_seconds = 30\n");
    let file = write(dir.path(), "picloud.toml", &base);
    let node = node_with_loop(dir.path(), &file);
    let pid = node.child.id();

    write(
        dir.path(),
        "picloud.toml",
        &format!("{base}slots = 7\n\n[sandbox.ceilings]\nmax_operations = 1000\n"),
    );
    hangup(&node);
    let refused = eventually(Duration::from_secs(30), || {
        let r = node.get("/cfg/loop");
        (r.status == 507).then_some(r)
    })
    .expect("the lowered ceiling is in force");
    assert_eq!(refused.json()["code"], "limit_exceeded");
    assert_eq!(refused.json()["limit"], "max_operations");
    let log = node.stderr();
    assert!(
        log.contains("sandbox.ceilings.max_operations: 1000000000 → 1000"),
        "{log}"
    );
    assert!(log.contains("slots: (unset) → 7 needs a restart"), "{log}");
    // Same process: nothing restarted.
    assert_eq!(node.child.id(), pid);
    assert!(node.get("/readyz").status == 200);
}

#[test]
fn a_bad_file_on_sighup_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("bootstrap_token = \"{TOKEN}\"\n");
    let file = write(dir.path(), "picloud.toml", &base);
    let node = node_with_loop(dir.path(), &file);

    // The ceiling alone would make the script fail; the bad value refuses it all.
    write(
        dir.path(),
        "picloud.toml",
        &format!("{base}drain_seconds = \"soon\"\n\n[sandbox.ceilings]\nmax_operations = 1000\n"),
    );
    hangup(&node);
    let refused = eventually(Duration::from_secs(30), || {
        node.stderr()
            .lines()
            .find(|l| l.contains("configuration reload refused"))
            .map(str::to_owned)
    })
    .expect("the reload is refused in the log");
    assert!(
        refused.contains(&format!("{file}:2: drain_seconds")),
        "{refused}"
    );
    let r = node.get("/cfg/loop");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "1999000");
    assert!(!node.stderr().contains("sandbox.ceilings.max_operations:"));
}
