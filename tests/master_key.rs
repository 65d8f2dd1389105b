//! The master key through the real binary: generated once into the data
//! directory (mode 0600), secrets sealed under it on disk, and a node started with
//! another key (or a malformed one) refusing to start with a clear error; and the
//! warning a node gives at start when the outbound HTTP guard is lifted.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Node, eventually};
use serde_json::json;

const PLAINTEXT: &str = "plaintext-secret-91b2c7";

/// Start `picloud serve` expecting it to fail; its exit code and stderr.
fn failed_start(data: &Path, key: &str) -> (Option<i32>, String) {
    let stderr = data.join("failed-start.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_picloud"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", common::free_port()))
        .env_remove("DATABASE_URL")
        .env("PICLOUD_MASTER_KEY", key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn");
    let status = eventually(Duration::from_secs(30), || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("a node with the wrong master key kept running");
    };
    (
        status.code(),
        std::fs::read_to_string(&stderr).unwrap_or_default(),
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_key_file_seals_secrets_and_a_wrong_key_stops_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let node = Node::start(&data, None, &[("PICLOUD_MASTER_KEY", "")]);
    let key_file = data.join("master-key");
    assert!(
        key_file.exists(),
        "the key is generated into the data directory"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = std::fs::read_to_string(data.join("bootstrap-token")).expect("token");
    let token = token.trim();
    let r = node.call(
        "POST",
        "/api/v1/admin/apps",
        token,
        Some(json!({"slug": "keys"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = node.call(
        "PUT",
        "/api/v1/admin/apps/keys/secrets/TOKEN",
        token,
        Some(json!({"value": PLAINTEXT})),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/keys/scripts",
        token,
        Some(json!({"name": "read", "source": r#"secrets::get("TOKEN")"#})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let script = r.json()["id"].as_str().expect("id").to_owned();
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/keys/routes",
        token,
        Some(json!({"method": "GET", "path": "/read", "script_id": script})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(node.get("/keys/read").text(), PLAINTEXT);
    assert!(node.stop().success());

    // On disk, the store holds only ciphertext.
    for name in ["picloud.db", "picloud.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(name)) {
            assert!(
                !contains(&bytes, PLAINTEXT.as_bytes()),
                "{name} holds the plaintext"
            );
        }
    }

    // Another key: a clear error, and the node does not start.
    let other = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let (code, stderr) = failed_start(&data, other);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("is not the key this store's secrets are sealed with"),
        "{stderr}"
    );
    // A malformed key.
    let (code, stderr) = failed_start(&data, "not-a-key");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("PICLOUD_MASTER_KEY: the master key must be base64 of exactly 32 bytes"),
        "{stderr}"
    );

    // The original key (the file) still opens everything.
    let node = Node::start(&data, None, &[("PICLOUD_MASTER_KEY", "")]);
    assert_eq!(node.get("/keys/read").text(), PLAINTEXT);
}

#[test]
fn lifting_the_outbound_guard_is_warned_about_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warning = "PICLOUD_HTTP_ALLOW_PRIVATE=1: scripts may reach private";
    let node = Node::start(&dir.path().join("guarded"), None, &[]);
    let text = format!(
        "{}{}",
        node.stdout(),
        std::fs::read_to_string(&node.stderr).unwrap_or_default()
    );
    assert!(!text.contains(warning), "{text}");
    node.stop();

    let node = Node::start(
        &dir.path().join("open"),
        None,
        &[("PICLOUD_HTTP_ALLOW_PRIVATE", "1")],
    );
    let text = format!(
        "{}{}",
        node.stdout(),
        std::fs::read_to_string(&node.stderr).unwrap_or_default()
    );
    let line = text
        .lines()
        .find(|l| l.contains(warning))
        .unwrap_or_else(|| panic!("no warning at start: {text}"));
    assert!(line.contains("WARN"), "{line}");
    node.stop();
}
