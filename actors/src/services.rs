//! The node's side of the script SDK's `secrets` and `kv` modules (the sandbox's
//! [`Secrets`] and [`Kv`] host services). Both are called on a slot thread and
//! block on the runtime through its handle (slot threads are not runtime
//! threads), bounded by [`STORE_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use picloud_events::{KvError, Store};
use picloud_sandbox::{Kv, Secrets};

use crate::catalog::Catalog;
use crate::keys::{MasterKey, secret_purpose};

/// The longest a script waits for the store (less if its run has less time left).
const STORE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest kv key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest kv value, in bytes of its JSON text.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one app may hold.
pub const MAX_KEYS_PER_APP: usize = 10_000;

/// Secrets opened from the catalog's copy of the app (sealed values) with the
/// master key.
pub struct CatalogSecrets {
    catalog: Arc<Catalog>,
    keys: Arc<MasterKey>,
}

impl CatalogSecrets {
    pub fn new(catalog: Arc<Catalog>, keys: Arc<MasterKey>) -> CatalogSecrets {
        CatalogSecrets { catalog, keys }
    }
}

impl Secrets for CatalogSecrets {
    fn get(&self, app_id: &str, name: &str) -> Result<Option<String>, String> {
        let Some(entry) = self.catalog.app(app_id) else {
            return Ok(None);
        };
        let Some(secret) = entry.app.secrets.get(name) else {
            return Ok(None);
        };
        self.keys
            .open_text(&secret_purpose(app_id, name), &secret.sealed)
            .map(Some)
            .map_err(|_| format!("the secret '{name}' cannot be opened with this node's key"))
    }
}

/// The `kv` table of the store.
pub struct StoreKv {
    store: Arc<dyn Store>,
    handle: tokio::runtime::Handle,
}

impl StoreKv {
    pub fn new(store: Arc<dyn Store>, handle: tokio::runtime::Handle) -> StoreKv {
        StoreKv { store, handle }
    }

    /// Waits for `work` at most `wait` (the run's remaining time), and never
    /// longer than [`STORE_TIMEOUT`].
    fn block<T, E: std::fmt::Display>(
        &self,
        wait: Duration,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        let wait = wait.min(STORE_TIMEOUT);
        match self
            .handle
            .block_on(async { tokio::time::timeout(wait, work).await })
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the store did not answer in time".into()),
        }
    }
}

/// A key a script or an admin may use: 1 to 512 bytes, no control characters.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("a key is 1 to {MAX_KEY_BYTES} bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err("a key has no control characters".into());
    }
    Ok(())
}

/// A value's JSON text, within the size cap.
pub fn value_text(value: &serde_json::Value) -> Result<String, String> {
    let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
    if text.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "a value is at most {MAX_VALUE_BYTES} bytes of JSON (this one is {})",
            text.len()
        ));
    }
    Ok(text)
}

/// A kv refusal as a script reads it.
pub fn kv_message(e: &KvError) -> String {
    match e {
        KvError::TooManyKeys(max) => format!("the app holds {max} keys, the most it may"),
        other => other.to_string(),
    }
}

impl Kv for StoreKv {
    fn get(
        &self,
        app_id: &str,
        key: &str,
        wait: Duration,
    ) -> Result<Option<serde_json::Value>, String> {
        check_key(key)?;
        let entry = self.block(wait, self.store.kv_get(app_id, key))?;
        entry
            .map(|e| serde_json::from_str(&e.value).map_err(|_| "stored value is not JSON".into()))
            .transpose()
    }

    fn set(
        &self,
        app_id: &str,
        key: &str,
        value: serde_json::Value,
        wait: Duration,
    ) -> Result<(), String> {
        check_key(key)?;
        let text = value_text(&value)?;
        self.block(wait, async {
            self.store
                .kv_put(app_id, key, &text, MAX_KEYS_PER_APP)
                .await
                .map_err(|e| kv_message(&e))
        })
    }

    fn delete(&self, app_id: &str, key: &str, wait: Duration) -> Result<bool, String> {
        check_key(key)?;
        self.block(wait, self.store.kv_delete(app_id, key))
    }

    fn list(
        &self,
        app_id: &str,
        prefix: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<String>, String> {
        if prefix.len() > MAX_KEY_BYTES {
            return Err(format!("a prefix is at most {MAX_KEY_BYTES} bytes"));
        }
        let entries = self.block(wait, self.store.kv_list(app_id, prefix, None, limit))?;
        Ok(entries.into_iter().map(|e| e.key).collect())
    }

    fn incr(&self, app_id: &str, key: &str, by: i64, wait: Duration) -> Result<i64, String> {
        check_key(key)?;
        self.block(wait, async {
            self.store
                .kv_incr(app_id, key, by, MAX_KEYS_PER_APP)
                .await
                .map_err(|e| kv_message(&e))
        })
    }
}
