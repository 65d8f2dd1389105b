//! SIGHUP: read the settings again (file, environment, the same command line) and
//! apply what a running node can change — the log filter and format, the sandbox
//! defaults and ceilings, the outbound HTTP allow lists, the drain deadline. Each
//! change is logged, old → new. Settings a node binds at start (listen address,
//! store, data directory, slots …) are reported as needing a restart and left as
//! they are. A file that does not load is refused whole: nothing changes.
//!
//! No polling: one task waits on the signal.

use std::ffi::OsString;
use std::sync::{Arc, Mutex, PoisonError};

use picloud_actors::Runtime;

use crate::config::{self, Settings, mask};
use crate::logging::Logging;

/// What a reload needs besides the node: how it was started, and the logger.
pub struct Reloader {
    /// The command line the node was started with.
    pub argv: Vec<OsString>,
    pub logging: Logging,
}

/// Keys applied to a running node; every other key needs a restart.
fn is_live(key: &str) -> bool {
    matches!(
        key,
        "log_level" | "log_format" | "http_allow_private" | "http_allow_cidrs" | "drain_seconds"
    ) || key.starts_with("sandbox.")
}

/// What one reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Settings changed on the running node.
    pub applied: Vec<String>,
    /// Settings whose new value waits for a restart.
    pub needs_restart: Vec<String>,
}

/// Waits for SIGHUP and reloads, until the task is aborted.
pub fn spawn(
    reloader: Reloader,
    runtime: Arc<Runtime>,
    current: Arc<Mutex<Settings>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = match signal(SignalKind::hangup()) {
                Ok(hangups) => hangups,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; settings reload is off");
                    return;
                }
            };
            while hangups.recv().await.is_some() {
                reloader.reload(&runtime, &current);
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (reloader, runtime, current);
        }
    })
}

impl Reloader {
    /// Loads the settings again and applies the live ones.
    pub fn reload(&self, runtime: &Runtime, current: &Mutex<Settings>) -> Option<Outcome> {
        let new = match config::load(&self.argv) {
            Ok(new) => new,
            Err(e) => {
                let message = e.to_string();
                tracing::error!(
                    "configuration reload refused, the running settings stay: {}",
                    message.trim()
                );
                return None;
            }
        };
        let mut running = current.lock().unwrap_or_else(PoisonError::into_inner);
        for warning in &new.warnings {
            tracing::warn!("{warning}");
        }
        let mut outcome = Outcome::default();
        let mut changes = Vec::new();
        for setting in &new.origins {
            let old = running.origin(&setting.key).and_then(|s| s.value.clone());
            if old == setting.value {
                continue;
            }
            let shown = |value: &Option<String>| {
                value
                    .as_deref()
                    .map_or_else(|| "(unset)".to_owned(), |v| mask(&setting.key, v))
            };
            let (old, value) = (shown(&old), shown(&setting.value));
            if is_live(&setting.key) {
                outcome.applied.push(setting.key.clone());
                changes.push((setting.key.clone(), old, value));
            } else {
                outcome.needs_restart.push(setting.key.clone());
                tracing::warn!(
                    setting = %setting.key,
                    "{}: {old} → {value} needs a restart; keeping {old}",
                    setting.key
                );
            }
        }
        self.apply(runtime, &mut running, &new);
        for (key, old, value) in changes {
            tracing::info!(setting = %key, old = %old, new = %value, "{key}: {old} → {value}");
        }
        if outcome.applied.is_empty() && outcome.needs_restart.is_empty() {
            tracing::info!("configuration reloaded: nothing changed");
        }
        Some(outcome)
    }

    /// Puts the live settings of `new` in force and into `running`.
    fn apply(&self, runtime: &Runtime, running: &mut Settings, new: &Settings) {
        if new.log != running.log {
            if let Err(e) = self.logging.set_filter(&new.log.level) {
                tracing::warn!("log filter not changed: {e}");
            }
            if let Err(e) = self.logging.set_format(new.log.format.as_deref()) {
                tracing::warn!("log format not changed: {e}");
            }
            running.log = new.log.clone();
        }
        if new.serve.sandbox != running.serve.sandbox {
            // Outbox leases taken from now on are sized from the new time-limit
            // ceiling (`dispatcher::lease_span`).
            runtime.set_limit_settings(new.serve.sandbox);
            running.serve.sandbox = new.serve.sandbox;
        }
        if (&new.serve.http_allow_private, &new.serve.http_allow_cidrs)
            != (
                &running.serve.http_allow_private,
                &running.serve.http_allow_cidrs,
            )
        {
            // Validated by `load`.
            let applied = new.serve.http_policy().and_then(|policy| {
                runtime.set_http_allow(&policy)?;
                Ok(policy.allow_private)
            });
            match applied {
                Ok(allow_private) => {
                    if allow_private {
                        crate::warn_allow_private();
                    }
                    running.serve.http_allow_private = new.serve.http_allow_private.clone();
                    running.serve.http_allow_cidrs = new.serve.http_allow_cidrs.clone();
                }
                Err(e) => tracing::error!("outbound HTTP allow lists not changed: {e}"),
            }
        }
        running.serve.drain_seconds = new.serve.drain_seconds;
        for setting in running.origins.iter_mut() {
            if is_live(&setting.key)
                && let Some(fresh) = new.origin(&setting.key)
            {
                *setting = fresh.clone();
            }
        }
    }
}
