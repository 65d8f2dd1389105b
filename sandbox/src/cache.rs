//! Compiled scripts, cached per script version.
//!
//! One entry per script id holds the most recently used version: a new version
//! replaces the old one, so the cache is bounded by the number of scripts rather than
//! by the number of saves. A rollback recompiles once. Module scripts live here too.

use std::sync::Arc;

use dashmap::DashMap;
use rhai::{AST, Engine, ParseError};

use crate::resolver;
use crate::script::ScriptSource;

/// A compiled script version.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) version: u64,
    /// Parse-time limit the AST was compiled under: a version run under another
    /// `max_expr_depth` is compiled again, as that limit only acts while parsing.
    pub(crate) expr_depth: usize,
    pub(crate) ast: AST,
    /// Module names this script imports with a literal path.
    pub(crate) imports: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct AstCache {
    scripts: DashMap<String, Arc<Compiled>>,
}

impl AstCache {
    /// The compiled AST of `script`, compiling it with `engine` on a miss.
    pub(crate) fn get_or_compile(
        &self,
        engine: &Engine,
        script: &ScriptSource,
        expr_depth: usize,
    ) -> Result<Arc<Compiled>, ParseError> {
        if let Some(hit) = self.scripts.get(&script.id)
            && hit.version == script.version
            && hit.expr_depth == expr_depth
        {
            return Ok(Arc::clone(&hit));
        }
        // Compile outside the map's lock: two threads may compile the same version at
        // once, which costs a little CPU but never blocks other scripts of the shard.
        let compiled = Arc::new(compile(engine, script, expr_depth)?);
        self.scripts
            .insert(script.id.clone(), Arc::clone(&compiled));
        Ok(compiled)
    }

    /// Drops every cached version of a script.
    pub(crate) fn evict(&self, script_id: &str) {
        self.scripts.remove(script_id);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.scripts.len()
    }
}

fn compile(
    engine: &Engine,
    script: &ScriptSource,
    expr_depth: usize,
) -> Result<Compiled, ParseError> {
    let mut ast = engine.compile(&*script.source)?;
    let imports = resolver::literal_imports(engine, &script.source);
    if !script.name.is_empty() {
        ast.set_source(script.name.as_str());
    }
    Ok(Compiled {
        version: script.version,
        expr_depth,
        ast,
        imports,
    })
}
