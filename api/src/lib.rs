//! # picloud-api
//!
//! The HTTP face of a node (axum): the invocation edge, the admin API, health.
//!
//! Layout:
//! - `routes`: the router; one file per resource under `routes/`
//!   (`apps`, `scripts`, `routes_admin`, `invocations`, `events`, `audit`, `members`,
//!   `users`, `tokens`, `session`, `projections`, `health`, `edge`).
//! - `error`: `ApiError`, the one error type, with the contract's JSON body.
//! - `extract`: `JsonBody` (size cap, 400/413/422 mapping) and `RequestId`.
//! - `auth`: `Principal` from a bearer token or session cookie (CSRF-checked),
//!   `Capability`, scopes, and `authorize`. `password`: argon2 hashing.
//! - `request_id`: the `x-request-id` middleware.
//! - `views`: JSON shapes of resources. `state`: `ApiState`, `ApiConfig`.

pub mod auth;
pub mod error;
pub mod extract;
pub mod gitsync;
pub mod password;
pub mod request_id;
pub mod routes;
pub mod state;
pub mod views;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
pub use state::{ApiConfig, ApiState};
use tokio::net::TcpListener;

/// Version of the script SDK surface (`ctx` and the SDK modules).
pub const SDK_VERSION: &str = "1.0";

/// The whole HTTP application.
pub fn app(state: ApiState) -> Router {
    routes::router(state)
        // Bodies are read with our own cap (413 JSON); axum's default must not cut first.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(request_id::layer))
}

/// Serve until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
