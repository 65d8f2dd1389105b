//! What the host hands the sandbox to run: a script version and the app's module scripts.

use std::sync::Arc;

/// One version of a script, as stored. `id` + `version` identify the compiled AST.
#[derive(Clone, Debug)]
pub struct ScriptSource {
    pub id: String,
    pub version: u64,
    /// Shown in error messages of functions defined in this script.
    pub name: String,
    pub source: Arc<str>,
    /// The permissions manifest of this version (entry scripts only; an imported
    /// module runs under its importer's).
    pub permissions: Option<Arc<crate::Permissions>>,
}

/// The module scripts of one app at their live versions.
///
/// `import "name" as m;` resolves only through this: there is no file resolver. Import
/// paths must be string literals, because the modules a run may need are looked up
/// when the run starts (see `resolver.rs`).
pub trait ModuleSource: Send + Sync {
    /// The live version of the module script called `name`, if the app has one.
    fn module(&self, name: &str) -> Option<ScriptSource>;
}

/// A [`ModuleSource`] with no modules: every `import` fails with "Module not found".
#[derive(Clone, Copy, Debug, Default)]
pub struct NoModules;

impl ModuleSource for NoModules {
    fn module(&self, _name: &str) -> Option<ScriptSource> {
        None
    }
}
