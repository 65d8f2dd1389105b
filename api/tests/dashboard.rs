//! The dashboard's serving rules: `GET /` and `/assets/*`, and what stays the edge's.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::test_app;
use serde_json::json;

fn asset_path(html: &str, ext: &str) -> String {
    html.split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(ext))
        .unwrap_or_else(|| panic!("no {ext} asset in the page: {html}"))
        .to_owned()
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_csp_and_no_cache() {
    let app = test_app().await;
    let r = app.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    let csp = r.header("content-security-policy").expect("csp").to_owned();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = r.text();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(
        !html.contains("__PICLOUD_STYLE_NONCE__"),
        "the nonce is filled"
    );
    // The style nonce in the header is the one in the page, and new each time.
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("nonce");
    assert!(html.contains(&format!("content=\"{nonce}\"")));
    let again = app.get("/").await;
    assert_ne!(again.header("content-security-policy"), Some(csp.as_str()));
}

#[tokio::test]
async fn assets_are_immutable_and_typed() {
    let app = test_app().await;
    let html = app.get("/").await.text();
    let js = asset_path(&html, ".js");
    let r = app.get(&js).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let css = app.get(&asset_path(&html, ".css")).await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let missing = app.get("/assets/nope-123.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "not_found");
}

#[tokio::test]
async fn invocation_paths_still_reach_the_edge() {
    let app = test_app().await;
    let id = app.deploy("shop", "\"hi\"", None).await;
    let r = app.get(&format!("/shop/{id}/run")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "hi");
    let r = app.get("/nosuchapp/x").await;
    assert_eq!(r.status, 404);
    // Other methods on `/` are the edge's, as before.
    let r = app.raw("POST", "/", "").await;
    assert_eq!(r.status, 404);
    assert!(r.json()["code"].is_string());
}

#[tokio::test]
async fn an_app_domain_keeps_its_root_and_assets() {
    let app = test_app().await;
    let script = app.deploy("site", "\"home\"", None).await;
    let r = app
        .admin(
            "POST",
            "/api/v1/admin/apps/site/domains",
            Some(json!({"domain": "site.example.com"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    for path in ["/", "/assets/logo.png"] {
        let r = app
            .admin(
                "POST",
                "/api/v1/admin/apps/site/routes",
                Some(json!({"method": "GET", "path": path, "script_id": script})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let req = Request::builder()
            .uri(path)
            .header("host", "site.example.com")
            .body(Body::empty())
            .expect("request");
        let r = app.send(req).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.text(), "home", "{path}");
    }
}
