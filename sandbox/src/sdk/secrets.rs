//! `secrets::get(name)`: the plaintext of one of the app's secrets.
//!
//! The value is opened on the node for this run only; it is never logged by the
//! node, and an error never contains it. If the script itself logs it or throws it,
//! the run's captured log and error message show `[secret]` in its place (see
//! `Sandbox::run_with_host`); what the script returns as its response is its own.
//! A missing secret throws (a script that needs a token should not silently send an
//! empty one).

use rhai::plugin::*;

use crate::answers::{Keep, pass};
use crate::host::{unavailable, with_run_host};

#[export_module]
pub mod secrets_functions {
    use super::{Keep, pass};

    /// The value of the app's secret `name`; throws if there is none.
    #[rhai_fn(volatile, return_raw)]
    pub fn get(name: &str) -> Result<String, Box<EvalAltResult>> {
        // By reference: a recording keeps the name, never the value.
        pass(
            "secrets::get",
            Keep::Reference,
            || serde_json::json!({ "name": name }),
            || super::read(name),
        )
    }
}

/// The current value of the app's secret `name`, remembered to be masked.
fn read(name: &str) -> Result<String, Box<EvalAltResult>> {
    let (secrets, app_id) = with_run_host("secrets", |host| {
        host.permit(
            "secrets",
            |p| p.allows_secret(name),
            &format!("secret '{name}'"),
        )?;
        let secrets = host
            .services
            .secrets
            .clone()
            .ok_or_else(|| unavailable("secrets"))?;
        Ok((secrets, host.caller.app_id.clone()))
    })?;
    match secrets.get(&app_id, name) {
        Ok(Some(value)) => {
            with_run_host("secrets", |host| {
                if !value.is_empty() && !host.revealed.contains(&value) {
                    host.revealed.push(value.clone());
                }
                Ok(())
            })?;
            Ok(value)
        }
        Ok(None) => Err(format!("secrets: no secret named '{name}' in this app").into()),
        Err(e) => Err(format!("secrets: {e}").into()),
    }
}
