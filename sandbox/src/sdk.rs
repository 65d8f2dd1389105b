//! The script SDK: one static module per file, registered under its namespace.
//!
//! Each library is an `#[export_module]` registered with `register_static_module`, so
//! scripts call `json::parse(..)`, `log::info(..)` and so on. Fallible functions are
//! `#[rhai_fn(return_raw)]` and throw catchable runtime errors.

use rhai::exported_module;
use rhai::{Module, Shared};

mod crypto;
mod http;
mod json;
mod kv;
mod log;
mod queue;
mod secrets;
mod time;

/// The SDK modules with the namespace each is registered under.
pub(crate) fn modules() -> Vec<(&'static str, Shared<Module>)> {
    vec![
        ("json", exported_module!(json::json_functions).into()),
        ("log", exported_module!(log::log_functions).into()),
        ("time", exported_module!(time::time_functions).into()),
        ("crypto", exported_module!(crypto::crypto_functions).into()),
        ("http", exported_module!(http::http_functions).into()),
        ("events", exported_module!(queue::events_functions).into()),
        ("invoke", exported_module!(queue::invoke_functions).into()),
        (
            "secrets",
            exported_module!(secrets::secrets_functions).into(),
        ),
        ("kv", exported_module!(kv::kv_functions).into()),
    ]
}
