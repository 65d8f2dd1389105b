//! Access end to end through the real binary: a member with a scoped token sees only
//! their app; a dashboard login works over real HTTP; `picloud replay` rebuilds the
//! read models offline and a restarted node serves the same state.

mod common;

use std::process::Command;

use common::{Node, request};
use serde_json::json;

const TOKEN: &str = "pc_access_e2e_token_0123456789";

#[test]
fn members_sessions_and_replay_through_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let node = Node::start(&data, None, &[("PICLOUD_BOOTSTRAP_TOKEN", TOKEN)]);

    for slug in ["team", "other"] {
        let r = node.call(
            "POST",
            "/api/v1/admin/apps",
            TOKEN,
            Some(json!({"slug": slug})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = node.call(
        "POST",
        "/api/v1/admin/users",
        TOKEN,
        Some(json!({"username": "mel", "role": "member", "password": "a fine passphrase"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let mel = r.json()["id"].as_str().expect("id").to_owned();
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/team/members",
        TOKEN,
        Some(json!({"user_id": mel, "role": "developer"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = node.call(
        "POST",
        "/api/v1/admin/tokens",
        TOKEN,
        Some(json!({"name": "ci", "scopes": ["scripts:write"], "user_id": mel})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let mel_token = r.json()["token"].as_str().expect("token").to_owned();

    let visible = |node: &Node| -> Vec<String> {
        let r = node.call("GET", "/api/v1/admin/apps", &mel_token, None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["apps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["slug"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(visible(&node), ["team"]);
    // The scoped token may write scripts in its app but not administer it.
    let r = node.call(
        "POST",
        "/api/v1/admin/apps/team/scripts",
        &mel_token,
        Some(json!({"name": "hi", "source": "\"hi\""})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        node.call("DELETE", "/api/v1/admin/apps/team", &mel_token, None)
            .status,
        403
    );
    assert_eq!(
        node.call("GET", "/api/v1/admin/apps/other", &mel_token, None)
            .status,
        404
    );

    // Dashboard login over real HTTP: cookies come back and work.
    let body = json!({"username": "mel", "password": "a fine passphrase"}).to_string();
    let r = request(
        &node.addr,
        "POST",
        "/api/v1/auth/login",
        &[],
        Some(body.as_bytes()),
    )
    .expect("login");
    assert_eq!(r.status, 204, "{}", r.text());
    let session = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.strip_prefix("picloud_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    let cookie = format!("picloud_session={session}");
    let r = request(
        &node.addr,
        "GET",
        "/api/v1/admin/apps",
        &[("cookie", &cookie)],
        None,
    )
    .expect("apps");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(node.stop().code(), Some(0));

    // Offline replay of every read model, then of one; a bad name is a usage error.
    let replay = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_picloud"))
            .arg("replay")
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .env_remove("DATABASE_URL")
            .output()
            .expect("run picloud replay")
    };
    let out = replay(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("catalog: 2 apps, 2 users"), "{stdout}");
    assert!(stdout.contains("invocations: rebuilt"), "{stdout}");
    assert!(replay(&["catalog"]).status.success());
    assert_eq!(replay(&["nonsense"]).status.code(), Some(2));

    // The restarted node (from the rebuilt snapshot) serves the same access.
    let node = Node::start(&data, None, &[]);
    assert_eq!(visible(&node), ["team"]);
    assert_eq!(
        node.call("GET", "/api/v1/admin/apps/other", &mel_token, None)
            .status,
        404
    );
    assert_eq!(node.stop().code(), Some(0));
}
