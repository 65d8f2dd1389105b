//! `import "name" as m;`: module scripts of the app, and nothing else.
//!
//! The engine's resolver is shared by all runs, but the app's modules come with each
//! run as a borrowed `&dyn ModuleSource`, which no `'static` callback can reach. So a
//! run looks up, when it starts, every module its script (and those modules, in turn)
//! imports with a literal path ([`prefetch`]), and the resolver serves those from the
//! run's state. Which literal paths a script imports is found once per version at
//! compile time ([`literal_imports`]).
//!
//! A module is evaluated at most once per run, in a fresh scope (it does not see
//! `ctx`). An import of a module that is still being evaluated is a cycle and fails
//! instead of recursing; nesting is capped at [`MAX_IMPORT_DEPTH`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, ParseError, Position, Scope, Shared};

use crate::cache::{AstCache, Compiled};
use crate::run_state;
use crate::script::ModuleSource;

/// Deepest chain of modules importing modules.
pub(crate) const MAX_IMPORT_DEPTH: usize = 8;

/// Most distinct modules one run may load (bounds the lookups at the start of a run).
pub(crate) const MAX_MODULES_PER_RUN: usize = 64;

thread_local! {
    /// Set while [`literal_imports`] compiles a script to discover its imports.
    static PROBE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// The engine's module resolver (one per engine, stateless).
pub(crate) struct AppModules;

impl ModuleResolver for AppModules {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let probed = PROBE.with(|probe| match probe.try_borrow_mut() {
            Ok(mut probe) => probe.as_mut().map(|names| names.push(path.to_owned())),
            Err(_) => None,
        });
        if probed.is_some() {
            return Ok(Shared::new(Module::new()));
        }
        load(engine, path, pos)
    }
}

/// The modules `source` imports with a string-literal path, in name order.
///
/// Rhai finds these only while compiling a self-contained AST (walking an AST is an
/// `internals` API), calling the resolver for each path; in probe mode our resolver
/// records the path and hands back an empty module, and the probe AST is thrown away.
pub(crate) fn literal_imports(engine: &Engine, source: &str) -> Vec<String> {
    // Cheap pre-check: most scripts import nothing and need no second parse.
    if !source.contains("import") {
        return Vec::new();
    }
    let previous = PROBE.with(|probe| probe.replace(Some(Vec::new())));
    let _ = engine.compile_into_self_contained(&Scope::new(), source);
    let mut names = PROBE
        .with(|probe| probe.replace(previous))
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

/// Looks up and compiles every module `root` may import, transitively, for one run.
/// A name the app has no module for is left out (its import fails when it runs); a
/// module that does not compile is kept as its error (its import fails with it).
pub(crate) fn prefetch(
    root: &Compiled,
    sources: &dyn ModuleSource,
    cache: &AstCache,
    engine: &Engine,
    expr_depth: usize,
) -> HashMap<String, Result<Arc<Compiled>, ParseError>> {
    let mut found = HashMap::new();
    let mut pending: Vec<String> = root.imports.clone();
    while let Some(name) = pending.pop() {
        if found.contains_key(&name) || found.len() >= MAX_MODULES_PER_RUN {
            continue;
        }
        let Some(source) = sources.module(&name) else {
            continue;
        };
        let compiled = cache.get_or_compile(engine, &source, expr_depth);
        if let Ok(compiled) = &compiled {
            pending.extend(compiled.imports.iter().cloned());
        }
        found.insert(name, compiled);
    }
    found
}

/// Evaluates (or recalls) the module `name` for the run on this thread.
fn load(engine: &Engine, name: &str, pos: Position) -> Result<Shared<Module>, Box<EvalAltResult>> {
    let in_module = |err: Box<EvalAltResult>| -> Box<EvalAltResult> {
        EvalAltResult::ErrorInModule(name.to_owned(), err, pos).into()
    };
    let next = run_state::with_state(|state| {
        if let Some(module) = state.loaded.get(name) {
            return Ok(Next::Loaded(Shared::clone(module)));
        }
        if state.importing.iter().any(|n| n == name) {
            let chain = [state.importing.as_slice(), &[name.to_owned()]]
                .concat()
                .join(" -> ");
            return Err(in_module(format!("cyclic import: {chain}").into()));
        }
        if state.importing.len() >= MAX_IMPORT_DEPTH {
            return Err(in_module(
                format!("modules are nested more than {MAX_IMPORT_DEPTH} imports deep").into(),
            ));
        }
        match state.modules.get(name) {
            None => Err(EvalAltResult::ErrorModuleNotFound(name.to_owned(), pos).into()),
            Some(Err(parse_error)) => Err(in_module(parse_error.clone().into())),
            Some(Ok(compiled)) => {
                state.importing.push(name.to_owned());
                Ok(Next::Evaluate(Arc::clone(compiled)))
            }
        }
    })
    .unwrap_or_else(|| Err(EvalAltResult::ErrorModuleNotFound(name.to_owned(), pos).into()))?;

    let compiled = match next {
        Next::Loaded(module) => return Ok(module),
        Next::Evaluate(compiled) => compiled,
    };
    // No borrow of the run state is held here: the module's code logs and imports too.
    let evaluated = Module::eval_ast_as_new(Scope::new(), &compiled.ast, engine);
    run_state::with_state(|state| state.importing.pop());

    match evaluated {
        Ok(module) => {
            let module = Shared::new(module);
            run_state::with_state(|state| {
                state.loaded.insert(name.to_owned(), Shared::clone(&module))
            });
            Ok(module)
        }
        // Limits and termination pass through unwrapped: `ErrorInModule` is catchable,
        // and a script must not be able to catch its own timeout.
        Err(err) if err.is_system_exception() => Err(err),
        Err(err) => Err(in_module(err)),
    }
}

enum Next {
    Loaded(Shared<Module>),
    Evaluate(Arc<Compiled>),
}
