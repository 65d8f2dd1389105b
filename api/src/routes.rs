//! The router: admin API under `/api/v1/admin`, health endpoints, and the
//! invocation edge as the fallback for every other path.

pub mod apps;
pub mod edge;
pub mod events;
pub mod health;
pub mod invocations;
pub mod routes_admin;
pub mod scripts;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::state::ApiState;

/// Every admin route, as (method, path) — the list the authorization tests walk.
pub fn admin_router() -> Router<ApiState> {
    Router::new()
        .route("/apps", post(apps::create).get(apps::list))
        .route("/apps/slug-check", get(apps::slug_check))
        .route(
            "/apps/{app}",
            get(apps::get).patch(apps::update).delete(apps::delete),
        )
        .route("/apps/{app}/domains", post(apps::add_domain))
        .route("/apps/{app}/domains/{domain}", delete(apps::remove_domain))
        .route("/domains/check", get(apps::domain_check))
        .route(
            "/apps/{app}/scripts",
            post(scripts::create).get(scripts::list),
        )
        .route(
            "/scripts/{id}",
            get(scripts::get)
                .put(scripts::update)
                .delete(scripts::delete),
        )
        .route("/scripts/{id}/versions", get(scripts::versions))
        .route("/scripts/{id}/rollback", post(scripts::rollback))
        .route("/scripts/{id}/invoke", post(scripts::invoke))
        .route(
            "/apps/{app}/routes",
            post(routes_admin::create).get(routes_admin::list),
        )
        .route("/routes/{id}", delete(routes_admin::delete))
        .route("/apps/{app}/invocations", get(invocations::list))
        .route("/invocations/{id}", get(invocations::get))
        .route("/events", get(events::browse))
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/version", get(health::version))
        .nest(
            "/api/v1/admin",
            admin_router().fallback(health::admin_not_found),
        )
        .fallback(edge::invoke)
        .with_state(state)
}
