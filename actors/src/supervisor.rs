//! The root supervisor of a node: it spawns the executor slots and the projectors
//! linked to itself, and restarts any child that fails, with a growing backoff, and
//! logs why. App actors are spawned on demand, also linked to it; a failed app
//! actor is simply respawned by the next command.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};

/// How to (re)spawn one child, linked to the given supervisor.
pub type ChildSpec = Arc<
    dyn Fn(ActorCell) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>
        + Send
        + Sync,
>;

pub struct NodeSupervisor;

pub enum SupervisorMsg {
    /// Spawn a child under this name now and restart it whenever it fails.
    Start {
        name: String,
        spec: ChildSpec,
        reply: ractor::RpcReplyPort<Result<(), String>>,
    },
    /// Restart a child after its backoff.
    Restart { name: String },
}

struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    restarts: u32,
    last_start: Instant,
}

#[derive(Default)]
pub struct SupervisorState {
    children: HashMap<String, Child>,
}

impl SupervisorState {
    fn name_of(&self, cell: &ActorCell) -> Option<String> {
        self.children
            .iter()
            .find(|(_, c)| c.cell.as_ref().map(|x| x.get_id()) == Some(cell.get_id()))
            .map(|(n, _)| n.clone())
    }
}

impl Actor for NodeSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        _args: (),
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Start { name, spec, reply } => {
                let result = (spec)(myself.get_cell()).await;
                let answer = match result {
                    Ok(cell) => {
                        state.children.insert(
                            name,
                            Child {
                                spec,
                                cell: Some(cell),
                                restarts: 0,
                                last_start: Instant::now(),
                            },
                        );
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(answer);
            }
            SupervisorMsg::Restart { name } => {
                if let Some(child) = state.children.get_mut(&name) {
                    match (child.spec)(myself.get_cell()).await {
                        Ok(cell) => {
                            child.cell = Some(cell);
                            child.last_start = Instant::now();
                            tracing::info!(child = %name, "restarted");
                        }
                        Err(e) => {
                            tracing::error!(child = %name, error = %e, "restart failed; retrying");
                            schedule_restart(&myself, name, child);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some(name) = state.name_of(&cell) {
                    tracing::error!(child = %name, %error, "child failed");
                    if let Some(child) = state.children.get_mut(&name) {
                        child.cell = None;
                        schedule_restart(&myself, name, child);
                    }
                } else {
                    // An on-demand app actor: the next command respawns it.
                    tracing::warn!(actor = ?cell.get_name(), %error, "actor failed");
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(name) = state.name_of(&cell) {
                    tracing::debug!(child = %name, ?reason, "child stopped");
                    if let Some(child) = state.children.get_mut(&name) {
                        child.cell = None;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Restart after a delay that doubles with each quick failure (capped at 30 s) and
/// resets once a child has run for a minute.
fn schedule_restart(myself: &ActorRef<SupervisorMsg>, name: String, child: &mut Child) {
    if child.last_start.elapsed() > Duration::from_secs(60) {
        child.restarts = 0;
    }
    child.restarts = child.restarts.saturating_add(1);
    let delay = Duration::from_millis(100)
        .saturating_mul(1u32 << child.restarts.min(9))
        .min(Duration::from_secs(30));
    let me = myself.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = me.cast(SupervisorMsg::Restart { name });
    });
}
