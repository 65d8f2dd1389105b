//! No script overflows a `SLOT_STACK_SIZE` stack, even at the ceilings, in any build.
//!
//! The worst case is recursion to the `max_call_levels` ceiling where every level is
//! itself deep inside an expression nested to the `max_expr_depth` ceiling; in a
//! debug build that needs about 1 GiB of stack, so the sandbox's stack guard must
//! stop it (as `max_call_levels`) before the thread overflows.

use std::time::Duration;

use picloud_sandbox::{Ceilings, Limits, Outcome};

use crate::common::*;

fn at_ceilings() -> Limits {
    let c = Ceilings::DEFAULT.0;
    Limits {
        max_call_levels: c.max_call_levels,
        max_expr_depth: c.max_expr_depth,
        max_operations: c.max_operations,
        max_array_size: c.max_array_size,
        max_map_size: c.max_map_size,
        timeout_ms: 60_000,
        ..Limits::DEFAULT
    }
}

/// `fn f(n) { E }` with `template` (containing `E`) nested as deep as the parser
/// accepts at the ceiling, and the recursive call innermost.
fn deepest_recursion(template: &str, limits: &Limits) -> String {
    for nest in (1..=255).rev() {
        let mut e = String::from("f(n + 1)");
        for _ in 0..nest {
            e = template.replace('E', &e);
        }
        let source = format!("fn f(n) {{ {e} }} f(0)");
        if SANDBOX.compile_with_limits(&source, limits).is_ok() {
            assert!(nest > 20, "{template} nests only {nest} deep");
            return source;
        }
    }
    panic!("{template} never compiles");
}

#[test]
fn plain_recursion_at_the_call_level_ceiling_is_a_limit() {
    let r = run_limited("fn f(n) { f(n + 1) } f(0)", &at_ceilings());
    assert_eq!(limit(&r), "max_call_levels");
}

#[test]
fn recursion_at_the_ceiling_inside_the_deepest_expressions_is_a_limit() {
    let limits = at_ceilings();
    for template in [
        "(1 + E)",
        "E + 1",
        "!E",
        "E in [1]",
        "g(E)",
        "{ E }",
        "[E][0]",
        "#{a: E}",
        "if true { E } else { 0 }",
        "switch n { _ => E }",
        "`${E}`",
        "(|| E).call()",
    ] {
        let source = deepest_recursion(template, &limits);
        let r = run_limited(&source, &limits);
        assert_eq!(
            r.outcome,
            Outcome::LimitExceeded {
                limit: "max_call_levels"
            },
            "{template}"
        );
    }
}

#[test]
fn recursion_through_native_callbacks_is_a_limit() {
    let r = run_limited("fn f(a) { a.map(|x| f([x])) } f([1])", &at_ceilings());
    assert_eq!(limit(&r), "max_call_levels");
    // `sort` swallows its comparator's errors, so the call-depth error does not end
    // the run; with several comparisons per level the work grows exponentially with
    // depth and the deadline (or the operation budget) has to stop it.
    let limits = Limits {
        timeout_ms: 1_000,
        ..at_ceilings()
    };
    let r = run_limited(
        r#"fn f(x) { [x, x, x, x].sort(|a, b| { f(a); 0 }) } f(1)"#,
        &limits,
    );
    assert!(
        matches!(r.outcome, Outcome::Timeout | Outcome::LimitExceeded { .. }),
        "{:?}",
        r.outcome
    );
    assert!(r.duration < Duration::from_secs(30));
}

#[test]
fn deeply_nested_data_built_until_the_deadline_does_not_overflow() {
    // Each step re-measures the whole value, so nesting grows only as fast as the
    // square root of the time allowed: a deadline bounds the depth.
    let limits = Limits {
        timeout_ms: 2_000,
        ..at_ceilings()
    };
    for source in [
        "let a = []; loop { a = [a]; }",
        "let m = #{}; loop { m = #{ m: m }; }",
        "let a = []; loop { a = [#{ a: a }]; }",
    ] {
        let r = run_limited(source, &limits);
        assert!(
            matches!(r.outcome, Outcome::Timeout | Outcome::LimitExceeded { .. }),
            "{source}: {:?}",
            r.outcome
        );
        assert!(r.duration < Duration::from_secs(30));
    }
}

#[test]
fn the_stack_guard_resets_between_runs_on_one_thread() {
    on_slot_thread(|| {
        for _ in 0..3 {
            let deep = script("fn f(n) { f(n + 1) } f(0)");
            let r = SANDBOX.run(
                &deep,
                &picloud_sandbox::NoModules,
                &at_ceilings(),
                input(),
                None,
            );
            assert_eq!(limit(&r), "max_call_levels");
            let ok = script("fn f(n) { if n == 0 { 0 } else { f(n - 1) } } f(100)");
            let r = SANDBOX.run(
                &ok,
                &picloud_sandbox::NoModules,
                &at_ceilings(),
                input(),
                None,
            );
            assert_eq!(body(&r), "0");
        }
    });
}
