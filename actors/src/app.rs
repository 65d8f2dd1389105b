//! `AppActor`: one per app per node, spawned on demand and registered by name.
//!
//! It owns the app aggregate folded from `app-<uuid>`, turns commands into events
//! with `decide`, and appends them with the expected version. Across nodes,
//! optimistic concurrency is the arbiter: on a version conflict the actor reloads
//! its state and decides once more.

pub mod decide;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use picloud_events::domain::{App, AppEvent, ClaimEvent, decode, decode_new, stream};
use picloud_events::{Metadata, Store, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::keys::MasterKey;

pub use decide::{AppCommand, ClaimState, CommandError, SecretText};
use decide::{Context, claims_needed};

/// What a successful command produced.
#[derive(Clone, Debug)]
pub struct CommandOutcome {
    /// Position of the last event appended: wait for the catalog to reach it to
    /// read your own write.
    pub position: i64,
    pub app: Option<App>,
}

pub enum AppMsg {
    Command {
        command: AppCommand,
        metadata: Metadata,
        reply: RpcReplyPort<Result<CommandOutcome, CommandError>>,
    },
}

pub struct AppActor;

pub struct AppActorArgs {
    pub app_id: String,
    pub store: Arc<dyn Store>,
    pub keys: Arc<MasterKey>,
}

pub struct AppState {
    app_id: String,
    store: Arc<dyn Store>,
    keys: Arc<MasterKey>,
    app: Option<App>,
}

/// The registry name of an app's actor.
pub fn actor_name(app_id: &str) -> String {
    format!("app-{app_id}")
}

impl Actor for AppActor {
    type Msg = AppMsg;
    type State = AppState;
    type Arguments = AppActorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: AppActorArgs,
    ) -> Result<AppState, ActorProcessingErr> {
        let app = load_app(args.store.as_ref(), &args.app_id).await?;
        Ok(AppState {
            app_id: args.app_id,
            store: args.store,
            keys: args.keys,
            app,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: AppMsg,
        state: &mut AppState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AppMsg::Command {
                command,
                metadata,
                reply,
            } => {
                let result = execute(state, &command, &metadata).await;
                // The caller may have gone (timeout); nothing to do then.
                let _ = reply.send(result);
            }
        }
        Ok(())
    }
}

async fn execute(
    state: &mut AppState,
    command: &AppCommand,
    metadata: &Metadata,
) -> Result<CommandOutcome, CommandError> {
    // Another node may have changed the app since this actor last looked: decide
    // on the stream as it is now (one read, empty when nothing is new), so a
    // command that refers to something just made elsewhere finds it.
    catch_up(state).await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let claims = load_claims(
            state.store.as_ref(),
            claims_needed(state.app.as_ref(), command),
        )
        .await?;
        let cx = Context {
            app_id: &state.app_id,
            claims: &claims,
            metadata,
            now: Utc::now(),
            keys: &state.keys,
        };
        let writes = decide::decide(state.app.as_ref(), command, &cx)?;
        let app_stream = stream::app(&state.app_id);
        let app_events: Vec<AppEvent> = writes
            .iter()
            .filter(|w| w.stream == app_stream)
            .flat_map(|w| w.events.iter())
            .filter_map(decode_new)
            .collect();
        match state.store.append_many(writes).await {
            Ok(appended) => {
                let position = appended.iter().map(|a| a.last_position).max().unwrap_or(0);
                if let Some(done) = appended.iter().find(|a| a.stream == app_stream) {
                    for (version, event) in (done.first_version..).zip(&app_events) {
                        App::apply(&mut state.app, version, event);
                    }
                }
                return Ok(CommandOutcome {
                    position,
                    app: state.app.clone(),
                });
            }
            Err(StoreError::VersionConflict(conflict)) if attempt < 2 => {
                tracing::debug!(stream = %conflict.stream, "version conflict; reloading and retrying");
                state.app = load_app(state.store.as_ref(), &state.app_id).await?;
            }
            Err(StoreError::VersionConflict(conflict)) => {
                // A claim lost to another app is the user's conflict, not a retry.
                let code = if conflict.stream.starts_with("slug-") {
                    "slug_taken"
                } else if conflict.stream.starts_with("domain-") {
                    "domain_taken"
                } else {
                    "version_conflict"
                };
                return Err(CommandError::Conflict {
                    code,
                    message: format!("concurrent change to {}; retry", conflict.stream),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Fold the app's whole stream.
pub async fn load_app(store: &dyn Store, app_id: &str) -> Result<Option<App>, StoreError> {
    let mut app = None;
    fold_from(store, app_id, &mut app).await?;
    Ok(app)
}

/// Apply what the app's stream holds beyond the actor's state.
async fn catch_up(state: &mut AppState) -> Result<(), StoreError> {
    fold_from(state.store.as_ref(), &state.app_id, &mut state.app).await
}

/// Fold the events of the app's stream after `app`'s version into it.
async fn fold_from(
    store: &dyn Store,
    app_id: &str,
    app: &mut Option<App>,
) -> Result<(), StoreError> {
    let name = stream::app(app_id);
    let mut from = app.as_ref().map_or(1, |a| a.version + 1);
    loop {
        let batch = store.read_stream(&name, from, 1000).await?;
        let Some(last) = batch.last() else {
            break;
        };
        from = last.version + 1;
        for event in &batch {
            if let Some(e) = decode::<AppEvent>(event) {
                App::apply(app, event.version, &e);
            }
        }
    }
    Ok(())
}

async fn load_claims(
    store: &dyn Store,
    names: Vec<String>,
) -> Result<HashMap<String, ClaimState>, StoreError> {
    let mut claims = HashMap::new();
    for name in names {
        let (version, holder) = load_claim(store, &name).await?;
        claims.insert(name, ClaimState { version, holder });
    }
    Ok(claims)
}

/// The version of a claim stream and who holds the name now.
pub(crate) async fn load_claim(
    store: &dyn Store,
    name: &str,
) -> Result<(u64, Option<String>), StoreError> {
    let version = store.stream_version(name).await?.unwrap_or(0);
    if version == 0 {
        return Ok((0, None));
    }
    let last = store.read_stream(name, version, 1).await?;
    let holder = last
        .first()
        .and_then(decode::<ClaimEvent>)
        .and_then(|c| c.holder().map(str::to_owned));
    Ok((version, holder))
}
