//! The dashboard: `GET /` serves its page, `GET /assets/*` its content-hashed files,
//! all embedded at build time from `dashboard/dist/` (see `api/build.rs`).
//!
//! On a host that is one of an app's custom domains, both paths belong to the app
//! and go to the invocation edge instead.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::routes::edge;
use crate::state::ApiState;

include!(concat!(env!("OUT_DIR"), "/dashboard_files.rs"));

/// The page's Content-Security-Policy, with `{nonce}` filled per response: nothing
/// inline but the style elements CodeMirror creates, which carry the nonce (the page
/// reads it from its `picloud-style-nonce` meta tag and hands it to
/// `EditorView.cspNonce`). Scripts are only the page's own files.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The placeholder in `index.html` that each response replaces with its nonce.
const NONCE_PLACEHOLDER: &str = "__PICLOUD_STYLE_NONCE__";

/// A fresh nonce: 16 random bytes, base64. `None` if the OS has no randomness.
fn nonce() -> Option<String> {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// An embedded file by its path under `dist/` (`index.html`, `assets/…`).
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES
        .binary_search_by(|(name, _)| (*name).cmp(path))
        .ok()
        .and_then(|i| FILES.get(i))
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn on_app_domain(state: &ApiState, req: &Request) -> bool {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| edge::strip_port(h).to_ascii_lowercase())
        .is_some_and(|h| state.runtime.catalog.app_by_domain(&h).is_some())
}

fn with_headers(mut response: Response, path: &str, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type(path)),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn page() -> Response {
    let Some(bytes) = file("index.html") else {
        return ApiError::not_found("dashboard").into_response();
    };
    let Some(nonce) = nonce() else {
        return ApiError::unavailable("no randomness for the page's nonce").into_response();
    };
    let html = String::from_utf8_lossy(bytes).replace(NONCE_PLACEHOLDER, &nonce);
    let mut response = with_headers(
        (StatusCode::OK, html).into_response(),
        "index.html",
        "no-cache",
    );
    let csp = CSP.replace("{nonce}", &nonce);
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `GET /`: the dashboard's page (never cached without revalidation, so a new
/// binary's assets are picked up at once).
pub async fn index(State(state): State<ApiState>, req: Request) -> Response {
    if on_app_domain(&state, &req) {
        return edge::invoke(State(state), req).await;
    }
    page()
}

/// `GET /assets/{*path}`: a built file; its name carries a content hash, so it is
/// cached for a year.
pub async fn asset(State(state): State<ApiState>, req: Request) -> Response {
    if on_app_domain(&state, &req) {
        return edge::invoke(State(state), req).await;
    }
    let path = req.uri().path().trim_start_matches('/');
    match file(path) {
        Some(bytes) => with_headers(
            (StatusCode::OK, bytes).into_response(),
            path,
            "public, max-age=31536000, immutable",
        ),
        None => ApiError::not_found("file").into_response(),
    }
}
