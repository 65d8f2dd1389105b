//! The router: admin API under `/api/v1/admin`, login under `/api/v1/auth`, health
//! endpoints, and the invocation edge as the fallback for every other path.
//!
//! Admin routes are registered through [`AdminRoutes`], which also records each
//! (method, path): the authorization matrix test walks that list and fails for a
//! route it has no row for, so no endpoint ships without a decided capability.

pub mod apps;
pub mod audit;
pub mod cron;
pub mod dashboard;
pub mod edge;
pub mod events;
pub mod git;
pub mod health;
pub mod hooks;
pub mod invocations;
pub mod kv;
pub mod logs;
pub mod members;
pub mod nodes;
pub mod projections;
pub mod routes_admin;
pub mod scripts;
pub mod secrets;
pub mod session;
pub mod tokens;
pub mod triggers;
pub mod users;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, get, post};

use crate::state::ApiState;

/// The admin router under construction, and the (method, path) of every route in it.
pub struct AdminRoutes {
    router: Router<ApiState>,
    list: Vec<(Method, &'static str)>,
}

macro_rules! verb {
    ($name:ident, $method:ident, $route:path) => {
        fn $name<H, T>(mut self, path: &'static str, handler: H) -> Self
        where
            H: Handler<T, ApiState>,
            T: 'static,
        {
            self.list.push((Method::$method, path));
            self.router = self.router.route(path, $route(handler));
            self
        }
    };
}

impl AdminRoutes {
    fn new() -> Self {
        AdminRoutes {
            router: Router::new(),
            list: Vec::new(),
        }
    }
    verb!(get, GET, routing::get);
    verb!(post, POST, routing::post);
    verb!(put, PUT, routing::put);
    verb!(patch, PATCH, routing::patch);
    verb!(delete, DELETE, routing::delete);
}

/// Every admin route (paths relative to `/api/v1/admin`).
fn admin_routes() -> AdminRoutes {
    AdminRoutes::new()
        .post("/apps", apps::create)
        .get("/apps", apps::list)
        .get("/apps/slug-check", apps::slug_check)
        .get("/apps/{app}", apps::get)
        .patch("/apps/{app}", apps::update)
        .delete("/apps/{app}", apps::delete)
        .post("/apps/{app}/domains", apps::add_domain)
        .delete("/apps/{app}/domains/{domain}", apps::remove_domain)
        .get("/domains/check", apps::domain_check)
        .get("/cron/preview", cron::preview)
        .post("/apps/{app}/scripts", scripts::create)
        .get("/apps/{app}/scripts", scripts::list)
        .get("/scripts/{id}", scripts::get)
        .put("/scripts/{id}", scripts::update)
        .delete("/scripts/{id}", scripts::delete)
        .get("/scripts/{id}/versions", scripts::versions)
        .post("/scripts/{id}/rollback", scripts::rollback)
        .post("/scripts/{id}/invoke", scripts::invoke)
        .post("/apps/{app}/routes", routes_admin::create)
        .get("/apps/{app}/routes", routes_admin::list)
        .delete("/routes/{id}", routes_admin::delete)
        .get("/apps/{app}/invocations", invocations::list)
        .get("/invocations/{id}", invocations::get)
        .post("/invocations/{id}/redrive", invocations::redrive)
        .post("/apps/{app}/triggers/webhook", triggers::create_webhook)
        .post("/apps/{app}/triggers/cron", triggers::create_cron)
        .post("/apps/{app}/triggers/event", triggers::create_event)
        .get("/apps/{app}/triggers", triggers::list)
        .get("/apps/{app}/logs/stream", logs::stream)
        .patch("/triggers/{id}", triggers::update)
        .delete("/triggers/{id}", triggers::delete)
        .get("/apps/{app}/secrets", secrets::list)
        .put("/apps/{app}/secrets/{name}", secrets::set)
        .delete("/apps/{app}/secrets/{name}", secrets::delete)
        .get("/apps/{app}/kv", kv::list)
        .get("/apps/{app}/kv/{key}", kv::get)
        .put("/apps/{app}/kv/{key}", kv::put)
        .delete("/apps/{app}/kv/{key}", kv::delete)
        .get("/apps/{app}/members", members::list)
        .post("/apps/{app}/members", members::add)
        .patch("/apps/{app}/members/{user}", members::update)
        .delete("/apps/{app}/members/{user}", members::remove)
        .get("/users", users::list)
        .post("/users", users::create)
        .patch("/users/{id}", users::update)
        .delete("/users/{id}", users::delete)
        .post("/tokens", tokens::create)
        .get("/tokens", tokens::list)
        .delete("/tokens/{id}", tokens::revoke)
        .get("/events", events::browse)
        .get("/audit", audit::list)
        .get("/projections", projections::list)
        .get("/me", session::me)
        .post("/projections/{name}/rebuild", projections::rebuild)
        .get("/nodes", nodes::list)
        .post("/apps/{app}/git", git::bind)
        .get("/apps/{app}/git", git::get)
        .delete("/apps/{app}/git", git::unbind)
}

/// (method, path) of every admin route, for the authorization matrix test.
pub fn admin_route_list() -> Vec<(Method, &'static str)> {
    admin_routes().list
}

pub fn admin_router() -> Router<ApiState> {
    admin_routes().router
}

/// Before an admin request: the catalog shows every write already committed,
/// whichever node made it (`Runtime::sync_with_cluster`).
async fn sync_with_cluster(
    axum::extract::State(state): axum::extract::State<ApiState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    state.runtime.sync_with_cluster().await;
    next.run(request).await
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/version", get(health::version))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/auth/login", post(session::login))
        .route("/api/v1/auth/logout", post(session::logout))
        .route("/hooks/{id}", post(hooks::deliver))
        .route("/hooks/git/{app}", post(git::push))
        .route("/", get(dashboard::index).fallback(edge::invoke))
        .route(
            "/assets/{*path}",
            get(dashboard::asset).fallback(edge::invoke),
        )
        .nest(
            "/api/v1/admin",
            admin_router().fallback(health::admin_not_found).layer(
                axum::middleware::from_fn_with_state(state.clone(), sync_with_cluster),
            ),
        )
        .fallback(edge::invoke)
        .with_state(state)
}
