//! Secrets, kv and permissions manifests through a whole node: admin writes,
//! scripts reading them, and what never leaves the node.

mod common;

use common::{TestApp, test_app};
use serde_json::{Value, json};

const PLAINTEXT: &str = "gh-token-4f1c9e2b7d";

async fn app_with_script(
    app: &TestApp,
    slug: &str,
    source: &str,
    permissions: Option<Value>,
) -> String {
    app.deploy_with(slug, source, None, permissions).await
}

/// `PUT /apps/{slug}/secrets/{name}` with `value`.
async fn put_secret(app: &TestApp, slug: &str, name: &str, value: Value) -> common::Reply {
    app.admin(
        "PUT",
        &format!("/api/v1/admin/apps/{slug}/secrets/{name}"),
        Some(json!({ "value": value })),
    )
    .await
}

/// Every event of the log, as the admin API shows it, as one text.
async fn whole_log(app: &TestApp) -> String {
    let mut text = String::new();
    let mut after = 0;
    loop {
        let r = app
            .admin(
                "GET",
                &format!("/api/v1/admin/events?after={after}&limit=500"),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json();
        text.push_str(&page["events"].to_string());
        match page["next"].as_i64() {
            Some(next) if next > after => after = next,
            _ => return text,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_readable_by_scripts_and_nowhere_else() {
    let app = test_app().await;
    let id = app_with_script(&app, "sec", r#"secrets::get("GH_TOKEN")"#, None).await;
    let r = put_secret(&app, "sec", "GH_TOKEN", json!(PLAINTEXT)).await;
    assert_eq!(r.status, 204, "{}", r.text());

    let r = app.get(&format!("/sec/{id}/")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), PLAINTEXT);

    // The list gives names and times only.
    let r = app
        .admin("GET", "/api/v1/admin/apps/sec/secrets", None)
        .await;
    assert_eq!(r.status, 200);
    let listed = r.json();
    assert_eq!(listed["secrets"][0]["name"], "GH_TOKEN");
    assert!(listed["secrets"][0]["updated_at"].is_string());
    assert!(!r.text().contains(PLAINTEXT));

    // The log holds only ciphertext, and the audit names the secret, not its value.
    let log = whole_log(&app).await;
    assert!(log.contains("SecretSet"), "the change is an event");
    assert!(log.contains(r#""sealed":"[sealed]""#), "{log}");
    assert!(
        !log.contains(PLAINTEXT),
        "the log never holds the plaintext"
    );
    let r = app.admin("GET", "/api/v1/admin/audit?app=sec", None).await;
    assert!(r.text().contains("set the secret GH_TOKEN"), "{}", r.text());
    assert!(!r.text().contains(PLAINTEXT));

    // Replacing keeps the creation time and changes the value.
    let r = put_secret(&app, "sec", "GH_TOKEN", json!("second")).await;
    assert_eq!(r.status, 204);
    assert_eq!(app.get(&format!("/sec/{id}/")).await.text(), "second");

    // Deleted: the script's call throws a clear, catchable error.
    let r = app
        .admin("DELETE", "/api/v1/admin/apps/sec/secrets/GH_TOKEN", None)
        .await;
    assert_eq!(r.status, 204);
    let r = app.get(&format!("/sec/{id}/")).await;
    assert_eq!(r.status, 500);
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("secrets: no secret named 'GH_TOKEN' in this app")),
        "{}",
        r.text()
    );
    let r = app
        .admin("DELETE", "/api/v1/admin/apps/sec/secrets/GH_TOKEN", None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_a_script_logs_or_throws_is_masked_in_its_record() {
    let app = test_app().await;
    let id = app_with_script(
        &app,
        "leak",
        r#"let t = secrets::get("GH_TOKEN");
           log::info("token is " + t);
           print(`again ${t}!`);
           throw "failed with " + t;"#,
        None,
    )
    .await;
    let r = put_secret(&app, "leak", "GH_TOKEN", json!(PLAINTEXT)).await;
    assert_eq!(r.status, 204, "{}", r.text());

    let r = app.get(&format!("/leak/{id}/")).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(!r.text().contains(PLAINTEXT), "{}", r.text());
    assert!(r.text().contains("failed with [secret]"), "{}", r.text());
    let invocation = r
        .header("x-invocation-id")
        .expect("invocation id")
        .to_owned();

    let detail = app.invocation_detail(&invocation).await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert_eq!(
        detail["logs"][0]["message"], "token is [secret]",
        "{detail}"
    );
    assert_eq!(detail["logs"][1]["message"], "again [secret]!", "{detail}");
    assert!(
        detail["error"].to_string().contains("failed with [secret]"),
        "{detail}"
    );
    assert!(!detail.to_string().contains(PLAINTEXT), "{detail}");
    assert!(!whole_log(&app).await.contains(PLAINTEXT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_secret_writes_are_refused_and_change_nothing() {
    let app = test_app().await;
    app_with_script(&app, "bad", "1", None).await;
    for name in ["1STARTS_WITH_DIGIT", "has%20space", &"A".repeat(65)] {
        let r = put_secret(&app, "bad", name, json!("x")).await;
        assert_eq!(r.status, 422, "{name}: {}", r.text());
        assert_eq!(r.json()["field"], "name");
    }
    let r = put_secret(&app, "bad", "BIG", json!("x".repeat(64 * 1024 + 1))).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "value_too_large");
    let r = put_secret(&app, "bad", "OK", json!(3)).await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = app
        .admin("DELETE", "/api/v1/admin/apps/bad/secrets/has%20space", None)
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["field"], "name");
    let r = app
        .admin("GET", "/api/v1/admin/apps/bad/secrets", None)
        .await;
    assert_eq!(r.json()["secrets"], json!([]), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_secret_is_sealed_and_still_verifies() {
    let app = test_app().await;
    let script = app_with_script(&app, "hook", "ctx.event.json", None).await;
    let secret = "it-is-a-shared-secret";
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/apps/hook/triggers/webhook",
            Some(json!({ "script_id": script, "secret": secret })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["signed"], true);
    let hook = r.json()["url"].as_str().expect("url").to_owned();
    let log = whole_log(&app).await;
    assert!(log.contains(r#""sealed_secret":"[sealed]""#), "{log}");
    assert!(
        !log.contains(secret),
        "the webhook secret is sealed in the log"
    );

    let body = r#"{"n":1}"#;
    let unsigned = app.raw("POST", &hook, body).await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());
    // GitHub's form: HMAC-SHA256 of the body under the secret's bytes.
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(&hook)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(axum::body::Body::from(body))
        .expect("request");
    let r = app.send(req).await;
    assert_eq!(r.status, 202, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_keep_state_in_kv() {
    let app = test_app().await;
    let source = r#"
        kv::set("user:1", #{ name: "ada", tags: ["a", "b"] });
        kv::set("user:2", 42);
        kv::set("other", ());
        let before = kv::get("missing");
        let n = kv::incr("hits", 5);
        n = kv::incr("hits");
        let listed = kv::list("user:");
        let gone = kv::delete("user:2");
        let again = kv::delete("user:2");
        #{ user: kv::get("user:1"), n: n, listed: listed, gone: gone, again: again,
           missing: before == (), other: kv::get("other") }
    "#;
    let id = app_with_script(&app, "kvapp", source, None).await;
    let r = app.get(&format!("/kvapp/{id}/")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "user": {"name": "ada", "tags": ["a", "b"]},
            "n": 6,
            "listed": ["user:1", "user:2"],
            "gone": true,
            "again": false,
            "missing": true,
            "other": null
        })
    );

    // Admins see and change the same data.
    let r = app
        .admin("GET", "/api/v1/admin/apps/kvapp/kv/hits", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["key"], "hits");
    assert_eq!(r.json()["value"], 6);
    let r = app
        .admin(
            "PUT",
            "/api/v1/admin/apps/kvapp/kv/hits",
            Some(json!({ "value": 100 })),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let id2 = app_with_script(&app, "kvapp", r#"kv::incr("hits", 1)"#, None).await;
    assert_eq!(app.get(&format!("/kvapp/{id2}/")).await.text(), "101");
    let r = app
        .admin("GET", "/api/v1/admin/apps/kvapp/kv?prefix=u&limit=1", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["entries"][0]["key"], "user:1");
    assert_eq!(r.json()["next"], "user:1");
    let r = app
        .admin("DELETE", "/api/v1/admin/apps/kvapp/kv/hits", None)
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .admin("GET", "/api/v1/admin/apps/kvapp/kv/hits", None)
        .await;
    assert_eq!(r.status, 404);

    // Deleting the app removes its data.
    let app_id = app
        .runtime
        .catalog
        .app_by_slug("kvapp")
        .expect("app")
        .app
        .id
        .clone();
    assert!(
        !app.runtime
            .store
            .kv_list(&app_id, "", None, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        app.admin("DELETE", "/api/v1/admin/apps/kvapp", None)
            .await
            .status,
        204
    );
    let left = app
        .runtime
        .store
        .kv_list(&app_id, "", None, 10)
        .await
        .expect("list");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_caps_are_clear_errors() {
    let app = test_app().await;
    let source = r#"
        let long_key = "";
        long_key.pad(513, 'k');
        let big = "";
        big.pad(70000, 'v');
        let errors = [];
        try { kv::set(long_key, 1) } catch (e) { errors.push(e) }
        try { kv::set("big", big) } catch (e) { errors.push(e) }
        try { kv::set("", 1) } catch (e) { errors.push(e) }
        kv::set("text", "x");
        try { kv::incr("text", 1) } catch (e) { errors.push(e) }
        errors
    "#;
    let id = app_with_script(&app, "caps", source, None).await;
    let r = app.get(&format!("/caps/{id}/")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let errors: Vec<String> = r
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e.as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors[0].contains("kv: a key is 1 to 512 bytes"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("kv: a value is at most 65536 bytes"),
        "{errors:?}"
    );
    assert!(
        errors[2].contains("kv: a key is 1 to 512 bytes"),
        "{errors:?}"
    );
    assert!(
        errors[3].contains("kv: the value at this key is not an integer"),
        "{errors:?}"
    );

    let r = app
        .admin(
            "PUT",
            "/api/v1/admin/apps/caps/kv/big",
            Some(json!({ "value": "v".repeat(70_000) })),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = app
        .admin(
            "PUT",
            "/api/v1/admin/apps/caps/kv/a%01b",
            Some(json!({ "value": 1 })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["field"], "key");
    let r = app
        .admin(
            "PUT",
            "/api/v1/admin/apps/caps/kv/ok",
            Some(json!({ "nope": 1 })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_per_app_cap_is_a_clear_error_for_scripts_and_admins() {
    use picloud_actors::services::MAX_KEYS_PER_APP;
    let app = test_app().await;
    let id = app_with_script(
        &app,
        "full",
        r#"kv::set("last", 1);
           let out = "stored";
           try { kv::set("one-too-many", 1) } catch (e) { out = e }
           kv::set("last", 2);
           out"#,
        None,
    )
    .await;
    let app_id = app.app_id("full").await;
    // All but one key, straight into the store (the caps are the store's to keep).
    for n in 0..MAX_KEYS_PER_APP - 1 {
        app.runtime
            .store
            .kv_put(&app_id, &format!("k{n}"), "0", MAX_KEYS_PER_APP)
            .await
            .expect("below the cap");
    }
    let r = app.get(&format!("/full/{id}/")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let message = r.text();
    assert!(
        message.contains(&format!(
            "kv: the app holds {MAX_KEYS_PER_APP} keys, the most it may"
        )),
        "{message}"
    );
    let r = app
        .admin("GET", "/api/v1/admin/apps/full/kv/last", None)
        .await;
    assert_eq!(r.json()["value"], 2, "a key it holds can still change");

    let r = app
        .admin(
            "PUT",
            "/api/v1/admin/apps/full/kv/new",
            Some(json!({ "value": 1 })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "too_many_keys");
    assert_eq!(r.json()["limit"], MAX_KEYS_PER_APP);
    let r = app
        .admin("DELETE", "/api/v1/admin/apps/full/kv/k0", None)
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .admin(
            "PUT",
            "/api/v1/admin/apps/full/kv/new",
            Some(json!({ "value": 1 })),
        )
        .await;
    assert_eq!(r.status, 204, "room again after a delete: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_increments_count_a_thousand() {
    let app = std::sync::Arc::new(test_app().await);
    let id = app_with_script(&app, "count", r#"kv::incr("hits", 1)"#, None).await;
    // 40 clients × 25 calls: concurrent, within the executor's queue.
    let mut clients = Vec::new();
    for _ in 0..40 {
        let app = app.clone();
        let path = format!("/count/{id}/");
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..25 {
                let r = app.get(&path).await;
                assert_eq!(r.status, 200, "{}", r.text());
                seen.push(r.text().parse::<i64>().expect("a count"));
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.expect("client"));
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=1000).collect::<Vec<i64>>(),
        "each increment saw its own count"
    );
    let r = app
        .admin("GET", "/api/v1/admin/apps/count/kv/hits", None)
        .await;
    assert_eq!(r.json()["value"], 1000);
}

/// The error message of a script run that failed.
fn failure(r: &common::Reply) -> String {
    assert_eq!(r.status, 500, "{}", r.text());
    r.json()["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_grants_exactly_what_it_lists() {
    let (app, server) = common::test_app_with_http_server().await;
    for (name, value) in [("A", "a-value"), ("B", "b-value")] {
        let r = app
            .admin(
                "POST",
                "/api/v1/admin/apps",
                Some(json!({ "slug": "perm" })),
            )
            .await;
        assert!(r.status == 201 || r.status == 409, "{}", r.text());
        let r = put_secret(&app, "perm", name, json!(value)).await;
        assert_eq!(r.status, 204);
    }
    let manifest = json!({
        "http": {"allow_hosts": ["127.0.0.2"]},
        "secrets": ["A"],
        "kv": false
    });
    let allowed = format!(
        r#"let r = http::get("{}"); #{{ a: secrets::get("A"), up: r.status }}"#,
        server.url("/json")
    );
    let id = app_with_script(&app, "perm", &allowed, Some(manifest.clone())).await;
    let r = app.get(&format!("/perm/{id}/")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({ "a": "a-value", "up": 200 }));

    let id = app_with_script(&app, "perm", r#"secrets::get("B")"#, Some(manifest.clone())).await;
    let message = failure(&app.get(&format!("/perm/{id}/")).await);
    assert!(
        message
            .contains("secrets: permission_denied: secret 'B' is not in this script's permissions"),
        "{message}"
    );
    assert!(!message.contains("b-value"));

    let id = app_with_script(&app, "perm", r#"kv::set("k", 1)"#, Some(manifest.clone())).await;
    let message = failure(&app.get(&format!("/perm/{id}/")).await);
    assert!(
        message.contains("kv: permission_denied: kv is not in this script's permissions"),
        "{message}"
    );

    // A host outside the list, and a redirect that leaves it, are refused before
    // any packet goes to them.
    let hits = server.hits();
    let id = app_with_script(
        &app,
        "perm",
        r#"http::get("http://example.com/")"#,
        Some(manifest.clone()),
    )
    .await;
    let message = failure(&app.get(&format!("/perm/{id}/")).await);
    assert!(
        message.contains(
            "http: permission_denied: host 'example.com' is not in this script's http.allow_hosts"
        ),
        "{message}"
    );
    assert_eq!(server.hits(), hits, "nothing was sent");
    // A denied address is refused by the guard, by its category: the manifest's
    // refusal would name it.
    let id = app_with_script(
        &app,
        "perm",
        r#"http::get("http://169.254.169.254/latest/meta-data/")"#,
        Some(manifest.clone()),
    )
    .await;
    let message = failure(&app.get(&format!("/perm/{id}/")).await);
    assert!(
        message.contains("http: destination refused (metadata)"),
        "{message}"
    );
    assert!(!message.contains("169.254"), "{message}");
    let redirect = server.url("/redirect/302?to=http%3A%2F%2Fexample.com%2Fjson");
    let id = app_with_script(
        &app,
        "perm",
        &format!(r#"http::get("{redirect}")"#),
        Some(manifest.clone()),
    )
    .await;
    let message = failure(&app.get(&format!("/perm/{id}/")).await);
    assert!(
        message.contains("permission_denied: host 'example.com'"),
        "{message}"
    );

    // A manifest without http denies every call.
    let id = app_with_script(
        &app,
        "perm",
        &format!(r#"http::get("{}").status"#, server.url("/json")),
        Some(json!({"kv": true})),
    )
    .await;
    let message = failure(&app.get(&format!("/perm/{id}/")).await);
    assert!(
        message.contains("http: permission_denied: http is not in this script's permissions"),
        "{message}"
    );

    // Removing the manifest (null) gives the app's defaults back.
    let r = app
        .admin(
            "PUT",
            &format!("/api/v1/admin/scripts/{id}"),
            Some(json!({ "permissions": null })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app.get(&format!("/perm/{id}/")).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_manifest_is_refused_naming_the_field() {
    let app = test_app().await;
    let id = app_with_script(&app, "man", "1", Some(json!({"kv": true}))).await;
    let cases = [
        (json!({"net": true}), "permissions.net"),
        (
            json!({"http": {"allow_hosts": ["ok.com", "bad host"]}}),
            "permissions.http.allow_hosts[1]",
        ),
        (json!({"secrets": "A"}), "permissions.secrets"),
        (json!({"kv": 1}), "permissions.kv"),
    ];
    for (manifest, path) in cases {
        let r = app
            .admin(
                "PUT",
                &format!("/api/v1/admin/scripts/{id}"),
                Some(json!({ "permissions": manifest })),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(r.json()["field"], "permissions");
        assert!(
            r.json()["error"].as_str().is_some_and(|e| e.contains(path)),
            "{path}: {}",
            r.text()
        );
        let r = app
            .admin(
                "POST",
                "/api/v1/admin/apps/man/scripts",
                Some(json!({ "name": "x", "source": "1", "permissions": manifest })),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text());
    }
    // Nothing changed: still version 1 with its manifest.
    let r = app
        .admin("GET", &format!("/api/v1/admin/scripts/{id}"), None)
        .await;
    assert_eq!(r.json()["version"], 1, "{}", r.text());
}
