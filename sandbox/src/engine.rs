//! Building a locked-down Rhai engine for one limits profile.
//!
//! Starts from `Engine::new_raw` (no file resolver, no stdout printing), adds the
//! standard library and the SDK, and removes what reaches the host: `eval` is disabled
//! and `sleep` (which would block the thread where no deadline can interrupt it)
//! is replaced by a function that throws.

use rhai::packages::{Package, StandardPackage};
use rhai::{Engine, EvalAltResult, FLOAT, INT, Module, OptimizationLevel, Shared};

use crate::limits::Limits;
use crate::outcome::LogLevel;
use crate::resolver::AppModules;
use crate::{data_guard, run_state, sdk};

/// Function libraries built once and shared by every engine.
pub(crate) struct Libraries {
    standard: Shared<Module>,
    sdk: Vec<(&'static str, Shared<Module>)>,
}

impl Libraries {
    pub(crate) fn new() -> Libraries {
        Libraries {
            standard: StandardPackage::new().as_shared_module(),
            sdk: sdk::modules(),
        }
    }
}

/// An engine enforcing `limits`, with the SDK registered.
pub(crate) fn build(limits: &Limits, libraries: &Libraries) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(Shared::clone(&libraries.standard));
    for (name, module) in &libraries.sdk {
        engine.register_static_module(*name, Shared::clone(module));
    }

    // Functions registered on the engine itself are found before the standard
    // library's, so these shadow its blocking `sleep`.
    engine.register_fn("sleep", |_: INT| -> Result<(), Box<EvalAltResult>> {
        Err(SLEEP_REFUSED.into())
    });
    engine.register_fn("sleep", |_: FLOAT| -> Result<(), Box<EvalAltResult>> {
        Err(SLEEP_REFUSED.into())
    });
    engine.disable_symbol("eval");
    // The optimizer takes exponential time on some nestings (e.g. `switch` inside
    // `switch` arms), and compilation cannot be interrupted: a script could hold a
    // thread for hours at save time. Evaluation semantics are the same without it.
    engine.set_optimization_level(OptimizationLevel::None);
    engine.set_module_resolver(AppModules);

    engine.on_print(|text| run_state::log(LogLevel::Info, text));
    engine.on_debug(|text, _source, _pos| run_state::log(LogLevel::Debug, text));

    // Rhai reads 0 as "unlimited"; here it is the tightest limit instead.
    let limits = Limits {
        max_operations: limits.max_operations.max(1),
        max_string_size: limits.max_string_size.max(1),
        max_array_size: limits.max_array_size.max(1),
        max_map_size: limits.max_map_size.max(1),
        max_call_levels: limits.max_call_levels.max(1),
        max_expr_depth: limits.max_expr_depth.max(1),
        ..*limits
    };
    // The operation budget is enforced by `on_progress`, where stopping is sticky
    // (see `run_state.rs`): Rhai's own limit is off.
    let max_operations = limits.max_operations;
    engine.on_progress(move |operations| run_state::on_progress(operations, max_operations));
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    // `on_var` is marked deprecated only to say its signature may change.
    #[allow(deprecated)]
    engine.on_var(move |name, _index, context| data_guard::on_var(name, &context, &limits));
    engine
}

const SLEEP_REFUSED: &str = "sleep is not available: a script must not block its executor";
