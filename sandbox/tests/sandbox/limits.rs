//! Every knob ends a run that exceeds it, with the knob's name; nothing hangs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use picloud_sandbox::{Limits, LogLevel, NoModules, Outcome};

use crate::common::*;

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::DEFAULT;
    f(&mut l);
    l
}

#[test]
fn infinite_loop_hits_max_operations() {
    let r = run_limited("loop {}", &limits(|l| l.max_operations = 100_000));
    assert_eq!(limit(&r), "max_operations");
}

#[test]
fn infinite_loop_with_huge_max_operations_times_out() {
    let l = limits(|l| {
        l.max_operations = u64::MAX;
        l.timeout_ms = 200;
    });
    let started = Instant::now();
    let r = run_limited("let i = 0; loop { i += 1; }", &l);
    assert_eq!(r.outcome, Outcome::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(r.duration >= Duration::from_millis(200));
}

#[test]
fn a_limit_hit_inside_a_callback_that_swallows_errors_still_ends_the_run() {
    // `sort` ignores its comparator's errors; the run must not go on as if the
    // comparator had returned.
    let source = r#"[2, 1].sort(|a, b| { loop {} }); "finished""#;
    let r = run_limited(source, &limits(|l| l.max_operations = 10_000));
    assert_eq!(limit(&r), "max_operations");
    let r = run_limited(
        source,
        &limits(|l| {
            l.max_operations = u64::MAX;
            l.timeout_ms = 100;
        }),
    );
    assert_eq!(r.outcome, Outcome::Timeout);
}

#[test]
fn a_script_may_use_its_whole_operation_budget() {
    // Count the operations of a fixed script, then run it with exactly that budget.
    let source = "let s = 0; for i in 0..100 { s += i; } s";
    let mut budget = 1;
    let fits = loop {
        let r = run_limited(source, &limits(|l| l.max_operations = budget));
        if matches!(r.outcome, Outcome::Response(_)) {
            break budget;
        }
        assert_eq!(limit(&r), "max_operations");
        budget += 1;
        assert!(budget < 100_000, "never fits");
    };
    assert!(fits > 100, "{fits}");
    assert_eq!(
        body(&run_limited(source, &limits(|l| l.max_operations = fits))),
        "4950"
    );
}

#[test]
fn a_zero_knob_is_the_tightest_limit_not_unlimited() {
    let r = run_limited("loop {}", &limits(|l| l.max_operations = 0));
    assert_eq!(limit(&r), "max_operations");
    let r = run_limited(
        "loop {}",
        &limits(|l| {
            l.max_operations = u64::MAX;
            l.timeout_ms = 0;
        }),
    );
    assert_eq!(r.outcome, Outcome::Timeout);
}

#[test]
fn raising_the_cancel_flag_stops_the_run_as_a_timeout() {
    let cancel = AtomicBool::new(false);
    let l = limits(|l| l.max_operations = u64::MAX);
    let s = script("loop {}");
    let started = Instant::now();
    let r = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            cancel.store(true, Ordering::Relaxed);
        });
        on_slot_thread(|| SANDBOX.run(&s, &NoModules, &l, input(), Some(&cancel)))
    });
    assert_eq!(r.outcome, Outcome::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_already_raised_cancel_flag_stops_at_once() {
    let cancel = AtomicBool::new(true);
    let s = script("let x = 0; for i in 0..1000 { x += i } x");
    let r =
        on_slot_thread(|| SANDBOX.run(&s, &NoModules, &Limits::DEFAULT, input(), Some(&cancel)));
    assert_eq!(r.outcome, Outcome::Timeout);
}

#[test]
fn string_doubling_hits_max_string_size() {
    let r = run(r#"let s = "x"; loop { s += s; }"#);
    assert_eq!(limit(&r), "max_string_size");
    let r = run(r#""x".pad(2_000_000, "y")"#);
    assert_eq!(limit(&r), "max_string_size");
}

#[test]
fn array_growth_hits_max_array_size() {
    let r = run_limited(
        "let a = []; loop { a.push(1); }",
        &limits(|l| l.max_array_size = 1000),
    );
    assert_eq!(limit(&r), "max_array_size");
    let r = run("let a = [1]; loop { a += a; }");
    assert_eq!(limit(&r), "max_array_size");
}

#[test]
fn map_growth_hits_max_map_size() {
    let r = run_limited(
        "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
        &limits(|l| l.max_map_size = 1000),
    );
    assert_eq!(limit(&r), "max_map_size");
}

#[test]
fn literals_past_a_limit_are_limits_too() {
    let r = run_limited("[1, 2, 3, 4]", &limits(|l| l.max_array_size = 3));
    assert_eq!(limit(&r), "max_array_size");
    let r = run_limited(r#""abcdef""#, &limits(|l| l.max_string_size = 3));
    assert_eq!(limit(&r), "max_string_size");
}

#[test]
fn deep_recursion_hits_max_call_levels() {
    let r = run("fn f(n) { f(n + 1) } f(0)");
    assert_eq!(limit(&r), "max_call_levels");
    let r = run_limited(
        "fn f(n) { if n == 0 { 0 } else { f(n - 1) } } f(20)",
        &limits(|l| l.max_call_levels = 10),
    );
    assert_eq!(limit(&r), "max_call_levels");
    let r = run_limited(
        "fn f(n) { if n == 0 { 0 } else { f(n - 1) } } f(9)",
        &limits(|l| l.max_call_levels = 10),
    );
    assert_eq!(body(&r), "0");
}

#[test]
fn deeply_nested_expression_hits_max_expr_depth() {
    let nested = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    assert_eq!(limit(&run(&nested)), "max_expr_depth");
    let err = SANDBOX.compile(&nested).unwrap_err();
    assert!(err.message.contains("maximum"), "{}", err.message);

    // Within the limit it runs; a script's own higher limit is honoured at save time.
    let shallow = format!("{}1{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(body(&run(&shallow)), "1");
    let deeper = format!("{}1{}", "(".repeat(100), ")".repeat(100));
    assert!(SANDBOX.compile(&deeper).is_err());
    assert!(
        SANDBOX
            .compile_with_limits(&deeper, &limits(|l| l.max_expr_depth = 256))
            .is_ok()
    );
}

#[test]
fn compiling_at_the_depth_ceiling_is_safe_on_a_small_stack() {
    // The API compiles on async worker threads (2 MiB stacks).
    let deep = format!("{}1{}", "(".repeat(127), ")".repeat(127));
    let l = limits(|l| l.max_expr_depth = 256);
    let result = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || SANDBOX.compile_with_limits(&deep, &l))
        .unwrap()
        .join()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn limits_and_timeouts_cannot_be_caught() {
    let r = run_limited(
        r#"try { loop {} } catch (e) { "caught" }"#,
        &limits(|l| l.max_operations = 10_000),
    );
    assert_eq!(limit(&r), "max_operations");
    let r = run_limited(
        r#"fn spin() { loop {} } try { spin() } catch (e) { "caught" }"#,
        &limits(|l| {
            l.max_operations = u64::MAX;
            l.timeout_ms = 100;
        }),
    );
    assert_eq!(r.outcome, Outcome::Timeout);
    let r = run(r#"let s = "x"; try { loop { s += s } } catch { "caught" }"#);
    assert_eq!(limit(&r), "max_string_size");
}

#[test]
fn huge_log_spam_is_truncated_never_an_error() {
    let l = limits(|l| l.max_log_bytes = 1000);
    let r = run_limited(
        r#"for i in 0..100000 { log::info("spam spam spam"); print(""); } "done""#,
        &l,
    );
    assert_eq!(body(&r), "done");
    assert!(r.logs_truncated);
    let used: usize = r.logs.iter().map(|line| line.message.len() + 1).sum();
    assert!(used <= 1000, "{used}");
    assert_eq!(r.logs[0].level, LogLevel::Info);
}

#[test]
fn logs_within_the_cap_are_complete() {
    let r = run(r#"print("a"); debug("b"); log::warn("c"); 1"#);
    assert!(!r.logs_truncated);
    let lines = log_lines(&r);
    assert_eq!(
        lines,
        [
            (LogLevel::Info, "a"),
            (LogLevel::Debug, "\"b\""),
            (LogLevel::Warn, "c")
        ]
    );
}

#[test]
fn logs_survive_a_failed_run() {
    let r = run_limited(
        r#"log::info("before"); loop {}"#,
        &limits(|l| l.max_operations = 1000),
    );
    assert_eq!(limit(&r), "max_operations");
    assert_eq!(r.logs.len(), 1);
}
