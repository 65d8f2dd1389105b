//! Git sync inside a node: deploying the folder an app is bound to when its git
//! host's push webhook arrives (`POST /hooks/git/{app}`, see `routes::git`).
//!
//! A deploy reads the branch tip with the deploy crate's gix reader
//! (`picloud_deploy::git::export`), loads the project folder, and runs the same
//! `fetch_state` → `plan(prune = true)` → `apply` as `picloud deploy`, through
//! [`Loopback`]: an [`AdminApi`] that sends each call through this node's own
//! router in process (no socket, no token), as the principal `git:<slug>`
//! ([`Principal::in_process`]), so every change is checked and recorded exactly as
//! the same call over HTTP would be. Then `GitDeployed{commit}` (or
//! `GitDeployFailed{commit, error}`) is appended.
//!
//! One deploy at a time per app on a node: pushes take a ticket; a deploy waits for
//! the app's lock and is skipped when a later push took a newer ticket meanwhile
//! (that one deploys the branch tip, which includes this push). Across nodes the
//! app stream's expected versions keep concurrent deploys from interleaving
//! silently (a conflicting call fails and the failure is recorded).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use axum::body::Body;
use axum::http::Request;
use picloud_actors::AppCommand;
use picloud_actors::keys::secret_purpose;
use picloud_deploy::git::Checkout;
use picloud_deploy::{AdminApi, ApiCallError, Project};
use picloud_events::domain::GitBinding;
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::{InProcess, Principal};
use crate::state::ApiState;

/// The actor in the metadata of a git deploy's events.
pub fn actor(slug: &str) -> String {
    format!("git:{slug}")
}

#[derive(Default)]
struct Slot {
    lock: tokio::sync::Mutex<()>,
    latest: AtomicU64,
}

/// Per app (by id): its deploy lock and the newest push's ticket.
static SLOTS: LazyLock<Mutex<HashMap<String, Arc<Slot>>>> = LazyLock::new(Default::default);

/// Deploy `app_id`'s binding in the background (a push arrived); returns at once.
pub fn schedule(state: ApiState, app_id: String, request_id: String) {
    let slot = SLOTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(app_id.clone())
        .or_default()
        .clone();
    let ticket = slot.latest.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::spawn(async move {
        let _guard = slot.lock.lock().await;
        if slot.latest.load(Ordering::SeqCst) != ticket {
            // A later push is waiting; it deploys the newer tip.
            return;
        }
        deploy(&state, &app_id, &request_id).await;
    });
}

/// Deploy the branch tip of `app_id`'s binding now and record the outcome.
pub async fn deploy(state: &ApiState, app_id: &str, request_id: &str) {
    state.runtime.sync_with_cluster().await;
    let Some(entry) = state.runtime.catalog.app(app_id) else {
        return;
    };
    let Some(git) = entry.app.git.clone() else {
        return;
    };
    let slug = entry.app.slug.clone();
    let principal = Principal::in_process(
        state.runtime.catalog.clone(),
        actor(&slug),
        request_id.to_owned(),
    );
    let (commit, result) = run(state, &entry.app.id, &slug, &git, &principal).await;
    match &result {
        Ok(applied) => tracing::info!(
            app = %slug, commit = commit.as_deref().unwrap_or(""), changes = applied,
            "git sync deployed"
        ),
        Err(error) => tracing::warn!(
            app = %slug, commit = commit.as_deref().unwrap_or(""), %error,
            "git sync deploy failed"
        ),
    }
    let command = AppCommand::RecordGitDeploy {
        commit,
        error: result.err(),
    };
    let metadata = principal.metadata(&state.runtime.config.node_id);
    if let Err(e) = state.runtime.command(app_id, command, metadata).await {
        tracing::error!(app = %slug, error = %e, "recording a git deploy failed");
    }
}

/// Read, plan and apply; the commit (when the repository could be read) and the
/// number of changes applied, or why not.
async fn run(
    state: &ApiState,
    app_id: &str,
    slug: &str,
    git: &GitBinding,
    principal: &Principal,
) -> (Option<String>, Result<usize, String>) {
    let reader = SecretReader {
        state: state.clone(),
        app_id: app_id.to_owned(),
    };
    let binding = git.clone();
    let loaded = tokio::task::spawn_blocking(move || load(&binding, &reader)).await;
    let (mut project, checkout) = match loaded {
        Ok(Ok(loaded)) => loaded,
        Ok(Err((commit, error))) => return (commit, Err(error)),
        Err(e) => return (None, Err(format!("reading the repository: {e}"))),
    };
    let commit = Some(checkout.commit);
    // The folder deploys to the bound app, whatever its picloud.toml names.
    project.slug = slug.to_owned();
    let api = Loopback {
        router: crate::app(state.clone()),
        principal: principal.clone(),
    };
    let current = match picloud_deploy::fetch_state(&api, slug).await {
        Ok(current) => current,
        Err(e) => return (commit, Err(format!("reading the app: {e}"))),
    };
    let plan = match picloud_deploy::plan(&project, current.as_ref(), true) {
        Ok(plan) => plan,
        Err(e) => return (commit, Err(e.to_string())),
    };
    match picloud_deploy::apply(&api, &plan, current.as_ref()).await {
        Ok(applied) => (commit, Ok(applied.len())),
        Err(e) => {
            let done = if e.applied.is_empty() {
                String::new()
            } else {
                format!(" (applied before it: {})", e.applied.join("; "))
            };
            (commit, Err(format!("{e}{done}")))
        }
    }
}

/// `secret_env` of a webhook trigger in `picloud.toml`: on the server, the app
/// secret of that name (there is no deploy-time environment).
struct SecretReader {
    state: ApiState,
    app_id: String,
}

impl SecretReader {
    fn get(&self, name: &str) -> Option<String> {
        let entry = self.state.runtime.catalog.app(&self.app_id)?;
        let secret = entry.app.secrets.get(name)?;
        self.state
            .runtime
            .config
            .master_key
            .open_text(&secret_purpose(&self.app_id, name), &secret.sealed)
            .ok()
    }
}

type LoadError = (Option<String>, String);

/// The project at the branch tip, from a temporary copy of the folder.
fn load(git: &GitBinding, secrets: &SecretReader) -> Result<(Project, Checkout), LoadError> {
    let tmp = temp_dir();
    std::fs::create_dir(&tmp)
        .map_err(|e| (None, format!("cannot create {}: {e}", tmp.display())))?;
    let result = load_into(git, secrets, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn load_into(
    git: &GitBinding,
    secrets: &SecretReader,
    tmp: &Path,
) -> Result<(Project, Checkout), LoadError> {
    let path = Some(git.path.as_str()).filter(|p| *p != ".");
    let checkout = picloud_deploy::git::export(&git.url, Some(&git.branch), path, tmp)
        .map_err(|e| (None, e.to_string()))?;
    let env = |name: &str| secrets.get(name);
    match Project::load(tmp, &env) {
        Ok(project) => Ok((project, checkout)),
        Err(e) => {
            // Messages name files inside the repository, not the temporary copy.
            let shown = format!("{}@{}:{}", git.url, git.branch, git.path);
            let message = e.0.replace(&tmp.display().to_string(), &shown);
            Err((Some(checkout.commit), message))
        }
    }
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "picloud-gitsync-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ))
}

/// The admin API of this node, called in process through its router as the
/// principal of a git deploy.
pub struct Loopback {
    router: axum::Router,
    principal: Principal,
}

impl AdminApi for Loopback {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiCallError> {
        let fail = |message: String| ApiCallError {
            status: None,
            message,
        };
        let request = Request::builder()
            .method(method)
            .uri(format!("/api/v1/admin{path}"))
            .header("content-type", "application/json")
            .extension(InProcess(self.principal.clone()))
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .map_err(|e| fail(format!("{method} {path}: {e}")))?;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| fail(format!("{method} {path}: {e}")))?;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| fail(format!("{method} {path}: reading the answer: {e}")))?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if !(200..300).contains(&status) {
            let message = json.as_ref().and_then(|j| j["error"].as_str()).map_or_else(
                || format!("{method} {path} answered {status}"),
                str::to_owned,
            );
            return Err(ApiCallError {
                status: Some(status),
                message,
            });
        }
        Ok(json.unwrap_or(Value::Null))
    }
}
