//! `import "name" as m;` resolves only through the app's module scripts.

use std::sync::atomic::{AtomicUsize, Ordering};

use picloud_sandbox::{Limits, ModuleSource, Outcome, ScriptSource};

use crate::common::*;

fn run_with(source: &str, modules: &Modules) -> picloud_sandbox::RunResult {
    run_full(source, &Limits::DEFAULT, input(), modules)
}

#[test]
fn import_resolves_through_the_module_source() {
    let modules = Modules::default().with(module(
        "greet",
        1,
        r#"export const GREETING = "hi"; fn hello(name) { "hi " + name }"#,
    ));
    let r = run_with(
        r#"import "greet" as g; [g::hello("pi"), g::GREETING]"#,
        &modules,
    );
    assert_eq!(body(&r), r#"["hi pi","hi"]"#);
}

#[test]
fn modules_can_import_modules_and_use_the_sdk() {
    let modules = Modules::default()
        .with(module(
            "a",
            1,
            r#"import "b" as b; fn twice_hash(s) { b::hash(b::hash(s)) }"#,
        ))
        .with(module(
            "b",
            1,
            r#"fn hash(s) { log::info("hashing"); crypto::sha256(s) }"#,
        ));
    let r = run_with(r#"import "a" as a; a::twice_hash("x").len()"#, &modules);
    assert_eq!(body(&r), "64");
    assert_eq!(r.logs.len(), 2);
}

#[test]
fn unknown_module_is_a_script_error_naming_it() {
    let r = run_with(r#"import "nope" as n; 1"#, &Modules::default());
    let message = script_error(&r);
    assert!(message.contains("nope"), "{message}");
    assert!(matches!(
        r.outcome,
        Outcome::ScriptError { line: Some(1), .. }
    ));
}

#[test]
fn import_paths_must_be_literals() {
    let modules = Modules::default().with(module("m", 1, "fn f() { 1 }"));
    let message = script_error(&run_with(
        r#"let name = "m"; import name as m; m::f()"#,
        &modules,
    ));
    assert!(message.contains("Module not found: m"), "{message}");
}

#[test]
fn a_module_importing_itself_fails_instead_of_recursing() {
    let modules =
        Modules::default().with(module("self", 1, r#"import "self" as me; fn f() { 1 }"#));
    let message = script_error(&run_with(r#"import "self" as s; s::f()"#, &modules));
    assert!(message.contains("cyclic import: self -> self"), "{message}");
}

#[test]
fn an_import_cycle_through_several_modules_fails() {
    let modules = Modules::default()
        .with(module("a", 1, r#"import "b" as b;"#))
        .with(module("b", 1, r#"import "c" as c;"#))
        .with(module("c", 1, r#"import "a" as a;"#));
    let message = script_error(&run_with(r#"import "a" as a; 1"#, &modules));
    assert!(
        message.contains("cyclic import: a -> b -> c -> a"),
        "{message}"
    );
}

#[test]
fn a_long_import_chain_is_capped() {
    let mut modules = Modules::default();
    for i in 0..20 {
        modules = modules.with(module(
            &format!("m{i}"),
            1,
            &format!(r#"import "m{}" as next;"#, i + 1),
        ));
    }
    let message = script_error(&run_with(r#"import "m0" as m; 1"#, &modules));
    assert!(message.contains("nested more than"), "{message}");
}

#[test]
fn a_module_is_evaluated_once_per_run() {
    let modules =
        Modules::default().with(module("m", 1, r#"log::info("loading m"); fn f() { 1 }"#));
    let r = run_with(
        r#"import "m" as a; import "m" as b; fn g() { import "m" as c; c::f() } a::f() + b::f() + g()"#,
        &modules,
    );
    assert_eq!(body(&r), "3");
    assert_eq!(r.logs.len(), 1);
}

#[test]
fn a_new_module_version_is_picked_up() {
    let main = script(r#"import "v" as v; v::which()"#);
    for version in 1..=3 {
        let modules = Modules::default().with(ScriptSource {
            id: "module-v".into(),
            version,
            name: "v".into(),
            permissions: None,
            source: format!("fn which() {{ {version} }}").into(),
        });
        let r = on_slot_thread(|| SANDBOX.run(&main, &modules, &Limits::DEFAULT, input(), None));
        assert_eq!(body(&r), version.to_string());
    }
}

#[test]
fn modules_do_not_see_ctx() {
    let modules = Modules::default().with(module("m", 1, "let x = ctx;"));
    let message = script_error(&run_with(r#"import "m" as m; 1"#, &modules));
    assert!(
        message.contains("ctx") && message.contains("in module 'm'"),
        "{message}"
    );
}

#[test]
fn errors_in_module_functions_are_reported_at_the_call_site() {
    let modules = Modules::default().with(module("m", 1, "fn boom() {\n  throw \"bang\";\n}"));
    let r = run_with("import \"m\" as m;\nm::boom()", &modules);
    match r.outcome {
        Outcome::ScriptError { message, line, .. } => {
            assert!(
                message.contains("bang") && message.contains("boom"),
                "{message}"
            );
            assert_eq!(line, Some(2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_module_that_does_not_compile_fails_its_import() {
    let modules = Modules::default().with(module("broken", 1, "fn f( {"));
    let message = script_error(&run_with(r#"import "broken" as b; 1"#, &modules));
    assert!(message.contains("in module 'broken'"), "{message}");
}

#[test]
fn limits_apply_inside_modules() {
    let modules = Modules::default().with(module("spin", 1, "loop {}"));
    let l = Limits {
        max_operations: 10_000,
        ..Limits::DEFAULT
    };
    let r = run_full(
        r#"try { import "spin" as s; } catch { "caught" }"#,
        &l,
        input(),
        &modules,
    );
    assert_eq!(limit(&r), "max_operations");
}

/// Counts lookups: a run only asks for modules its script imports.
struct Counting(Modules, AtomicUsize);

impl ModuleSource for Counting {
    fn module(&self, name: &str) -> Option<ScriptSource> {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.module(name)
    }
}

#[test]
fn scripts_without_imports_never_look_modules_up() {
    let counting = Counting(
        Modules::default().with(module("m", 1, "1")),
        AtomicUsize::new(0),
    );
    let r = run_full("1 + 1", &Limits::DEFAULT, input(), &counting);
    assert_eq!(body(&r), "2");
    assert_eq!(counting.1.load(Ordering::Relaxed), 0);
    run_full(
        r#"import "m" as m; 1"#,
        &Limits::DEFAULT,
        input(),
        &counting,
    );
    assert_eq!(counting.1.load(Ordering::Relaxed), 1);
}
