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
//! One deploy at a time per app across the cluster ([`lease`]): a push takes the
//! app's deploy lease, or is queued behind the running deploy (which then deploys
//! once more: the latest push wins), or needs nothing (that commit is being
//! deployed, or is live). The push is answered with which.
//!
//! http(s) remotes are fetched under the node's outbound guard (the same
//! deny-list and `PICLOUD_HTTP_ALLOW_*` settings as scripts' HTTP), trusting the
//! extra certificates of `PICLOUD_GIT_CA_FILE`, with the credentials of the app
//! secret the binding names (`credentials_secret`).

mod lease;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use picloud_actors::AppCommand;
use picloud_actors::keys::secret_purpose;
use picloud_deploy::git::{Checkout, Credentials, GitHttp, Location};
use picloud_deploy::{AdminApi, ApiCallError, Project};
use picloud_events::domain::GitBinding;
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::{InProcess, Principal};
use crate::error::ApiError;
use crate::state::ApiState;
pub use lease::Push;

/// The longest a deploy may take (fetch, plan and apply); well inside the lease.
const DEPLOY_LIMIT: Duration = Duration::from_secs(5 * 60);

/// The actor in the metadata of a git deploy's events.
pub fn actor(slug: &str) -> String {
    format!("git:{slug}")
}

fn principal(state: &ApiState, slug: &str, request_id: &str) -> Principal {
    Principal::in_process(
        state.runtime.catalog.clone(),
        actor(slug),
        request_id.to_owned(),
    )
}

/// A push of `pushed` (the body's `after`, if any) arrived for `app_id`: take the
/// deploy lease and deploy in the background, or say why not.
pub async fn push(
    state: &ApiState,
    app_id: &str,
    slug: &str,
    pushed: Option<&str>,
    bound_at: chrono::DateTime<chrono::Utc>,
    request_id: &str,
) -> Result<Push, ApiError> {
    let mut metadata = principal(state, slug, request_id).metadata(&state.runtime.config.node_id);
    metadata.app = Some(app_id.to_owned());
    let writer = lease::Writer {
        store: state.runtime.store.as_ref(),
        app_id,
        node: &state.runtime.config.node_id,
        metadata: &metadata,
    };
    let outcome = writer.push(pushed, bound_at).await?;
    if let Push::Start { claim } = &outcome {
        let (state, app_id, claim, request_id) = (
            state.clone(),
            app_id.to_owned(),
            claim.clone(),
            request_id.to_owned(),
        );
        tokio::spawn(async move {
            loop {
                let live = deploy(&state, &app_id, &request_id).await;
                let writer = lease::Writer {
                    store: state.runtime.store.as_ref(),
                    app_id: &app_id,
                    node: &state.runtime.config.node_id,
                    metadata: &metadata,
                };
                match writer.done(&claim, live).await {
                    // A push came while deploying: deploy the newer tip.
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::error!(app = %app_id, error = %e, "releasing the git deploy lease failed");
                        break;
                    }
                }
            }
        });
    }
    Ok(outcome)
}

/// Deploy the branch tip of `app_id`'s binding now and record the outcome; the
/// commit made live and the binding's `bound_at`, if it was.
pub async fn deploy(
    state: &ApiState,
    app_id: &str,
    request_id: &str,
) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
    state.runtime.sync_with_cluster().await;
    let entry = state.runtime.catalog.app(app_id)?;
    let git = entry.app.git.clone()?;
    let slug = entry.app.slug.clone();
    let principal = principal(state, &slug, request_id);
    let (commit, result) = tokio::time::timeout(
        DEPLOY_LIMIT,
        run(state, &entry.app.id, &slug, &git, &principal),
    )
    .await
    .unwrap_or_else(|_| {
        (
            None,
            Err(format!(
                "the deploy took longer than {} s and was stopped",
                DEPLOY_LIMIT.as_secs()
            )),
        )
    });
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
    let live = result
        .is_ok()
        .then(|| commit.clone())
        .flatten()
        .map(|commit| (commit, git.bound_at));
    let command = AppCommand::RecordGitDeploy {
        commit,
        error: result.err(),
    };
    let metadata = principal.metadata(&state.runtime.config.node_id);
    if let Err(e) = state.runtime.command(app_id, command, metadata).await {
        tracing::error!(app = %slug, error = %e, "recording a git deploy failed");
        return None;
    }
    live
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
    let http = match remote_access(state, git, &reader) {
        Ok(http) => http,
        Err(error) => return (None, Err(error)),
    };
    let binding = git.clone();
    let loaded = tokio::task::spawn_blocking(move || load(&binding, &reader, http)).await;
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

/// How this node reaches the binding's remote when it is http(s): under the
/// outbound guard, with the extra trusted certificates and the credentials
/// secret. `None` for a repository on this machine.
fn remote_access(
    state: &ApiState,
    git: &GitBinding,
    secrets: &SecretReader,
) -> Result<Option<GitHttp>, String> {
    if !matches!(
        picloud_deploy::git::locate(&git.url),
        Ok(Location::Http { .. })
    ) {
        return Ok(None);
    }
    let credentials = match &git.credentials_secret {
        Some(name) => Some(Credentials::parse(&secrets.get(name).ok_or_else(|| {
            format!("credentials_secret {name:?}: the app has no secret of that name")
        })?)),
        None => None,
    };
    let http = GitHttp::guarded(
        tokio::runtime::Handle::current(),
        state.runtime.config.http.clone(),
        state.config.git_roots.as_deref(),
    )
    .map_err(|e| e.0)?;
    Ok(Some(http.with_credentials(credentials)))
}

/// The project at the branch tip (blocking: fetches and reads files).
fn load(
    git: &GitBinding,
    secrets: &SecretReader,
    http: Option<GitHttp>,
) -> Result<(Project, Checkout), LoadError> {
    let path = Some(git.path.as_str()).filter(|p| *p != ".");
    let env = |name: &str| secrets.get(name);
    let shown = format!("{}@{}:{}", git.url, git.branch, git.path);
    picloud_deploy::git::load_project(
        &git.url,
        Some(&git.branch),
        path,
        http.as_ref(),
        &env,
        &shown,
    )
    .map_err(|e| (e.commit, e.message))
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
