//! A real runtime over a temporary SQLite store, and the router on top of it.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use picloud_actors::{Runtime, RuntimeConfig};
use picloud_api::{ApiConfig, ApiState};
use serde_json::Value;
use tower::ServiceExt;

pub const TOKEN: &str = "pc_api_test_token_0123456789";

pub struct TestApp {
    pub router: Router,
    pub runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn test_app() -> TestApp {
    test_app_with(RuntimeConfig::default(), ApiConfig::default()).await
}

/// A node whose scripts may call a test server on 127.0.0.2, exempted the way an
/// operator would (`PICLOUD_HTTP_ALLOW_CIDRS`); nothing leaves loopback.
pub async fn test_app_with_http_server() -> (TestApp, picloud_net::test_server::TestServer) {
    let server = picloud_net::test_server::TestServer::start("127.0.0.2".parse().expect("ip"))
        .await
        .expect("server");
    let config = RuntimeConfig {
        http: picloud_sandbox::HttpPolicy::from_settings(None, Some("127.0.0.2/32"))
            .expect("policy"),
        ..RuntimeConfig::default()
    };
    (test_app_with(config, ApiConfig::default()).await, server)
}

pub async fn test_app_with(config: RuntimeConfig, api: ApiConfig) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = picloud_events::open(&picloud_events::store::sqlite_url(dir.path()))
        .await
        .expect("open store");
    picloud_actors::bootstrap::bootstrap(store.as_ref(), Some(TOKEN.into()), "test")
        .await
        .expect("bootstrap");
    let runtime = Runtime::start(store, config).await.expect("runtime");
    let router = picloud_api::app(ApiState {
        runtime: runtime.clone(),
        config: Arc::new(api),
    });
    TestApp {
        router,
        runtime,
        _dir: dir,
    }
}

impl TestApp {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        // An event stream never ends: its body is read by the test itself
        // (`stream`), not here.
        let streaming = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if streaming {
            return Reply {
                status,
                headers,
                body: Vec::new(),
            };
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// An admin call with the owner token; `body` is sent as is.
    pub async fn raw(&self, method: &str, path: &str, body: &str) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("request");
        self.send(req).await
    }

    /// Open an event stream as the owner: the response, its body unread.
    pub async fn stream(&self, path: &str) -> axum::response::Response {
        let req = Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .expect("request");
        self.router.clone().oneshot(req).await.expect("infallible")
    }

    /// An admin call with `token`; `body` as JSON (or empty).
    pub async fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .expect("request");
        self.send(req).await
    }

    /// Create a user with `role`; returns their id.
    pub async fn user(&self, username: &str, role: &str) -> String {
        let r = self
            .admin(
                "POST",
                "/api/v1/admin/users",
                Some(serde_json::json!({ "username": username, "role": role })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().expect("id").to_owned()
    }

    /// Mint a token for `user_id` (as the owner) with `scopes`; returns its value.
    pub async fn token_for(&self, user_id: &str, scopes: &[&str]) -> String {
        let r = self
            .admin(
                "POST",
                "/api/v1/admin/tokens",
                Some(serde_json::json!({ "name": "t", "scopes": scopes, "user_id": user_id })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["token"].as_str().expect("token").to_owned()
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw(method, path, &body).await
    }

    /// The id of app `slug`.
    pub async fn app_id(&self, slug: &str) -> String {
        let r = self
            .admin("GET", &format!("/api/v1/admin/apps/{slug}"), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["id"].as_str().expect("app id").to_owned()
    }

    /// The detail of invocation `id` once it is recorded (the record is written a
    /// moment after the answer); panics after 4 s.
    pub async fn invocation_detail(&self, id: &str) -> Value {
        for _ in 0..400 {
            let r = self
                .admin("GET", &format!("/api/v1/admin/invocations/{id}"), None)
                .await;
            if r.status == 200 {
                return r.json();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("invocation {id} was not recorded in 4 s");
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(
            Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// Create app `slug` with one endpoint script routed at `GET /run` (and `*` at
    /// `/any/*rest`); returns the script id.
    pub async fn deploy(&self, slug: &str, source: &str, sandbox: Option<Value>) -> String {
        self.deploy_with(slug, source, sandbox, None).await
    }

    /// [`TestApp::deploy`] with a permissions manifest.
    pub async fn deploy_with(
        &self,
        slug: &str,
        source: &str,
        sandbox: Option<Value>,
        permissions: Option<Value>,
    ) -> String {
        if self.runtime.catalog.app_by_slug(slug).is_none() {
            let r = self
                .admin(
                    "POST",
                    "/api/v1/admin/apps",
                    Some(serde_json::json!({ "slug": slug })),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
        }
        let mut body = serde_json::json!({ "name": format!("s{}", uuid::Uuid::new_v4().simple()), "source": source });
        if let Some(s) = sandbox {
            body["sandbox"] = s;
        }
        if let Some(p) = permissions {
            body["permissions"] = p;
        }
        let r = self
            .admin(
                "POST",
                &format!("/api/v1/admin/apps/{slug}/scripts"),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().expect("id").to_owned();
        let r = self
            .admin(
                "POST",
                &format!("/api/v1/admin/apps/{slug}/routes"),
                Some(serde_json::json!({ "method": "*", "path": format!("/{id}/*rest"), "script_id": id })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        id
    }
}
