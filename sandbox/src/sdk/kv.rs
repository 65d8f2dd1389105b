//! `kv::get/set/delete/list/incr`: the app's key-value store.
//!
//! Values are any JSON-able Rhai value (`()` is stored as `null`); `kv::get` of a
//! missing key answers `()`. Caps on key size, value size and keys per app are the
//! host's; past them a call throws with the cap in the message. A call waits on the
//! store at most for what is left of the run's wall-clock budget: a run whose time
//! runs out while it waits ends as a timeout. With a
//! permissions manifest, `"kv": true` is needed.

use rhai::plugin::*;

use crate::host::{Kv, unavailable, with_run_host};
use crate::json_value;
use crate::run_state::{self, remaining};

/// Most keys one `kv::list` answers.
pub const MAX_LIST: usize = 1000;

#[export_module]
pub mod kv_functions {
    use serde_json::json;

    use crate::answers::{Keep, pass};

    /// The value at `key`, or `()`.
    #[rhai_fn(volatile, return_raw)]
    pub fn get(key: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let found = pass(
            "kv::get",
            Keep::Value,
            || json!({ "key": key }),
            || {
                let (kv, app) = super::service()?;
                run_state::after_wait(kv.get(&app, key, remaining()).map_err(super::error))
            },
        )?;
        match found {
            Some(value) => Ok(json_value::to_dynamic(&value)),
            None => Ok(Dynamic::UNIT),
        }
    }

    /// Store `value` at `key` (replacing what was there).
    #[rhai_fn(volatile, return_raw)]
    pub fn set(key: &str, value: Dynamic) -> Result<(), Box<EvalAltResult>> {
        let json = json_value::to_json(&value)
            .map_err(|e| -> Box<EvalAltResult> { format!("kv: value: {e}").into() })?;
        pass(
            "kv::set",
            Keep::Value,
            || json!({ "key": key }),
            || {
                let (kv, app) = super::service()?;
                run_state::after_wait(kv.set(&app, key, json, remaining()).map_err(super::error))
            },
        )
    }

    /// Remove `key`; answers whether it existed.
    #[rhai_fn(volatile, return_raw)]
    pub fn delete(key: &str) -> Result<bool, Box<EvalAltResult>> {
        pass(
            "kv::delete",
            Keep::Value,
            || json!({ "key": key }),
            || {
                let (kv, app) = super::service()?;
                run_state::after_wait(kv.delete(&app, key, remaining()).map_err(super::error))
            },
        )
    }

    /// The keys starting with `prefix`, in byte order (at most 1,000).
    #[rhai_fn(volatile, return_raw)]
    pub fn list(prefix: &str) -> Result<rhai::Array, Box<EvalAltResult>> {
        let keys = pass(
            "kv::list",
            Keep::Value,
            || json!({ "prefix": prefix }),
            || {
                let (kv, app) = super::service()?;
                run_state::after_wait(
                    kv.list(&app, prefix, super::MAX_LIST, remaining())
                        .map_err(super::error),
                )
            },
        )?;
        Ok(keys.into_iter().map(Dynamic::from).collect())
    }

    /// Every key (at most 1,000).
    #[rhai_fn(name = "list", volatile, return_raw)]
    pub fn list_all() -> Result<rhai::Array, Box<EvalAltResult>> {
        list("")
    }

    /// Add `by` to the integer at `key` (missing counts as 0), atomically across
    /// every run and node; answers the new value.
    #[rhai_fn(volatile, return_raw)]
    pub fn incr(key: &str, by: i64) -> Result<i64, Box<EvalAltResult>> {
        pass(
            "kv::incr",
            Keep::Value,
            || json!({ "key": key, "by": by }),
            || {
                let (kv, app) = super::service()?;
                run_state::after_wait(kv.incr(&app, key, by, remaining()).map_err(super::error))
            },
        )
    }

    /// `kv::incr(key, 1)`.
    #[rhai_fn(name = "incr", volatile, return_raw)]
    pub fn incr_one(key: &str) -> Result<i64, Box<EvalAltResult>> {
        incr(key, 1)
    }
}

fn service() -> Result<(std::sync::Arc<dyn Kv>, String), Box<EvalAltResult>> {
    with_run_host("kv", |host| {
        host.permit("kv", |p| p.kv, "kv")?;
        let kv = host.services.kv.clone().ok_or_else(|| unavailable("kv"))?;
        Ok((kv, host.caller.app_id.clone()))
    })
}

fn error(message: String) -> Box<EvalAltResult> {
    format!("kv: {message}").into()
}
