//! Tests of the engine and AST caches, and of masking secrets in a run's output.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::script::NoModules;

fn script(id: &str, version: u64, source: &str) -> ScriptSource {
    ScriptSource {
        id: id.into(),
        version,
        name: id.into(),
        source: source.into(),
        permissions: None,
    }
}

fn input() -> RunInput {
    RunInput {
        app_id: "app".into(),
        app_slug: "app".into(),
        invocation_id: "inv".into(),
        request: None,
        params: Default::default(),
        event: serde_json::json!({"kind": "async"}),
    }
}

struct Modules(HashMap<String, ScriptSource>);

impl ModuleSource for Modules {
    fn module(&self, name: &str) -> Option<ScriptSource> {
        self.0.get(name).cloned()
    }
}

#[test]
fn one_engine_per_limits_profile() {
    let sandbox = Sandbox::default();
    let fast = Limits {
        timeout_ms: 10,
        ..Limits::DEFAULT
    };
    for limits in [Limits::DEFAULT, Limits::DEFAULT, fast, fast] {
        sandbox.run(&script("s", 1, "1"), &NoModules, &limits, input(), None);
    }
    assert_eq!(sandbox.engines.len(), 2);
    assert!(Arc::ptr_eq(&sandbox.engine(&fast), &sandbox.engine(&fast)));
}

#[test]
fn asts_are_cached_per_version_and_a_new_version_replaces_the_old() {
    let sandbox = Sandbox::new();
    let engine = sandbox.engine(&Limits::DEFAULT);
    let v1 = script("s", 1, "1");
    let a = sandbox.scripts.get_or_compile(&engine, &v1, 128).unwrap();
    let b = sandbox.scripts.get_or_compile(&engine, &v1, 128).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let c = sandbox
        .scripts
        .get_or_compile(&engine, &script("s", 2, "2"), 128)
        .unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(sandbox.scripts.len(), 1);
    // A different parse-time limit compiles again.
    let d = sandbox.scripts.get_or_compile(&engine, &v1, 64).unwrap();
    assert_eq!(d.expr_depth, 64);
}

#[test]
fn evict_drops_every_version_of_the_script_only() {
    let sandbox = Sandbox::new();
    for (id, version) in [("a", 1), ("a", 2), ("b", 1)] {
        sandbox.run(
            &script(id, version, "1"),
            &NoModules,
            &Limits::DEFAULT,
            input(),
            None,
        );
    }
    assert_eq!(sandbox.scripts.len(), 2);
    sandbox.evict("a");
    assert_eq!(sandbox.scripts.len(), 1);
    sandbox.evict("missing");
    assert_eq!(sandbox.scripts.len(), 1);
}

#[test]
fn modules_are_compiled_once_per_version() {
    let sandbox = Sandbox::new();
    let engine = sandbox.engine(&Limits::DEFAULT);
    let module = script("m-id", 3, "fn twice(x) { x * 2 }");
    let modules = Modules([("m".to_owned(), module.clone())].into());
    let main = script("main", 1, r#"import "m" as m; m::twice(21)"#);

    let first = sandbox.run(&main, &modules, &Limits::DEFAULT, input(), None);
    assert!(
        matches!(first.outcome, Outcome::Response(ref r) if r.body == "42"),
        "{:?}",
        first.outcome
    );
    let compiled = sandbox
        .scripts
        .get_or_compile(&engine, &module, 128)
        .unwrap();
    sandbox.run(&main, &modules, &Limits::DEFAULT, input(), None);
    let again = sandbox
        .scripts
        .get_or_compile(&engine, &module, 128)
        .unwrap();
    assert!(Arc::ptr_eq(&compiled, &again));
    assert_eq!(sandbox.scripts.len(), 2);
}

#[test]
fn literal_imports_are_found_at_compile_time() {
    let sandbox = Sandbox::new();
    let engine = sandbox.engine(&Limits::DEFAULT);
    let s = script(
        "s",
        1,
        r#"import "b" as b; fn f() { import "a" as a; } let n = "dyn"; import n as d; // import "c"
        "#,
    );
    let compiled = sandbox.scripts.get_or_compile(&engine, &s, 128).unwrap();
    assert_eq!(compiled.imports, ["a", "b"]);
}

#[test]
fn secrets_are_masked_longest_first_in_logs_and_errors() {
    let revealed = vec!["tok".to_owned(), "tok-extended".to_owned()];
    let mut logs = vec![crate::LogLine {
        level: crate::LogLevel::Info,
        message: "a tok-extended and a tok".into(),
        at: chrono::Utc::now(),
    }];
    let mut outcome = Outcome::script_error("failed: tok");
    mask_secrets(&revealed, &mut logs, &mut outcome);
    assert_eq!(logs[0].message, "a [secret] and a [secret]");
    let Outcome::ScriptError { message, .. } = outcome else {
        panic!("still an error");
    };
    assert_eq!(message, "failed: [secret]");
}
