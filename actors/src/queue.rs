//! The outbox as scripts see it: `events::emit` and `invoke::later` (the sandbox's
//! [`Queue`]). Called on a slot thread, it blocks on the store append through the
//! runtime's handle (slot threads are not runtime threads, so this never stalls the
//! async workers). Everything stays inside the caller's app.

use std::sync::{OnceLock, Weak};
use std::time::Duration;

use chrono::Utc;
use picloud_events::Metadata;
use picloud_events::domain::{InvocationRequest, ScriptKind, TriggerKind};
use picloud_sandbox::{Caller, Queue};

use crate::runtime::Runtime;

/// How long a script waits for its queued work to be stored.
const APPEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts an `invoke::later` run may make.
const LATER_MAX_ATTEMPTS: u32 = 5;

pub struct OutboxQueue {
    runtime: OnceLock<Weak<Runtime>>,
    handle: tokio::runtime::Handle,
}

impl OutboxQueue {
    /// A queue for the runtime that will be `attach`ed once it exists.
    pub fn new(handle: tokio::runtime::Handle) -> OutboxQueue {
        OutboxQueue {
            runtime: OnceLock::new(),
            handle,
        }
    }

    pub fn attach(&self, runtime: Weak<Runtime>) {
        let _ = self.runtime.set(runtime);
    }

    fn runtime(&self) -> Result<std::sync::Arc<Runtime>, String> {
        self.runtime
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| "the node is shutting down".to_owned())
    }

    fn store(
        &self,
        rt: &Runtime,
        requests: Vec<InvocationRequest>,
        from: &Caller,
    ) -> Result<(), String> {
        if requests.is_empty() {
            return Ok(());
        }
        let metadata = Metadata {
            actor: Some(format!("script:{}", from.script_id)),
            causation_id: Some(from.invocation_id.clone()),
            node: Some(rt.config.node_id.clone()),
            app: Some(from.app_id.clone()),
            ..Metadata::default()
        };
        let writes = requests
            .into_iter()
            .map(|r| Runtime::request_write(r, &metadata))
            .collect();
        let append = rt.store.append_many(writes);
        match self
            .handle
            .block_on(async { tokio::time::timeout(APPEND_TIMEOUT, append).await })
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("could not queue: {e}")),
            Err(_) => Err("could not queue: the store did not answer in time".into()),
        }
    }
}

impl Queue for OutboxQueue {
    fn emit(&self, from: &Caller, name: &str, payload: serde_json::Value) -> Result<i64, String> {
        let rt = self.runtime()?;
        let entry = rt
            .catalog
            .app(&from.app_id)
            .ok_or_else(|| "the app no longer exists".to_owned())?;
        let now = Utc::now();
        let requests: Vec<InvocationRequest> = entry
            .app
            .triggers
            .values()
            .filter(|t| {
                t.enabled && matches!(&t.kind, TriggerKind::Event { event } if event == name)
            })
            .map(|t| {
                let id = uuid::Uuid::now_v7().to_string();
                InvocationRequest {
                    id: id.clone(),
                    app_id: from.app_id.clone(),
                    script_id: t.script_id.clone(),
                    trigger: "event".into(),
                    trigger_id: Some(t.id.clone()),
                    event: serde_json::json!({
                        "kind": "event",
                        "name": name,
                        "payload": payload,
                        "trigger_id": t.id,
                        "emitted_by": from.invocation_id,
                        "depth": from.depth + 1,
                    }),
                    request: None,
                    max_attempts: t.max_attempts,
                    idempotency_key: format!("event:{}:{id}", from.invocation_id),
                    requested_at: now,
                    depth: from.depth + 1,
                    lease: None,
                }
            })
            .collect();
        let n = requests.len() as i64;
        self.store(&rt, requests, from)?;
        Ok(n)
    }

    fn later(
        &self,
        from: &Caller,
        script: &str,
        payload: serde_json::Value,
    ) -> Result<String, String> {
        let rt = self.runtime()?;
        let entry = rt
            .catalog
            .app(&from.app_id)
            .ok_or_else(|| "the app no longer exists".to_owned())?;
        let target = entry
            .app
            .script_by_name(script)
            .filter(|s| s.kind == ScriptKind::Endpoint && s.live().is_some())
            .ok_or_else(|| format!("no endpoint script named {script:?} in this app"))?;
        let id = uuid::Uuid::now_v7().to_string();
        let request = InvocationRequest {
            id: id.clone(),
            app_id: from.app_id.clone(),
            script_id: target.id.clone(),
            trigger: "async".into(),
            trigger_id: None,
            event: serde_json::json!({
                "kind": "async",
                "payload": payload,
                "requested_by": from.invocation_id,
                "depth": from.depth + 1,
            }),
            request: None,
            max_attempts: LATER_MAX_ATTEMPTS,
            idempotency_key: format!("later:{}:{id}", from.invocation_id),
            requested_at: Utc::now(),
            depth: from.depth + 1,
            lease: None,
        };
        self.store(&rt, vec![request], from)?;
        Ok(id)
    }
}
