//! Many runs at once on several threads against one sandbox: per-run state (logs,
//! deadline, cancel flag, modules, ctx) never leaks from one run into another.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use picloud_sandbox::{Limits, NoModules, Outcome, SLOT_STACK_SIZE};

use crate::common::*;

const THREADS: usize = 6;
const RUNS_PER_THREAD: usize = 25;

#[test]
fn concurrent_runs_keep_their_own_logs_ctx_and_outcomes() {
    // Scripts shared by all threads, so the same cached engines and ASTs are hit.
    let echo =
        script(r#"log::info("run " + ctx.invocation_id); print(ctx.params.n); ctx.params.n"#);
    let spin = script("loop {}");
    let throw = script(r#"log::warn("about to fail"); throw "failed " + ctx.params.n"#);
    let modules = Modules::default().with(module("m", 1, "fn id(x) { x }"));
    let imports = script(r#"import "m" as m; m::id(ctx.params.n)"#);
    let fast = Limits {
        timeout_ms: 30,
        max_operations: u64::MAX,
        ..Limits::DEFAULT
    };

    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (echo, spin, throw, imports, modules) =
                    (&echo, &spin, &throw, &imports, &modules);
                std::thread::Builder::new()
                    .stack_size(SLOT_STACK_SIZE)
                    .spawn_scoped(scope, move || {
                        for i in 0..RUNS_PER_THREAD {
                            let n = format!("{t}-{i}");
                            let mut input = input();
                            input.invocation_id = format!("inv-{n}");
                            input.params.insert("n".into(), n.clone());
                            match (t + i) % 4 {
                                0 => {
                                    let r = SANDBOX.run(
                                        echo,
                                        &NoModules,
                                        &Limits::DEFAULT,
                                        input,
                                        None,
                                    );
                                    assert_eq!(body(&r), n);
                                    let logs: Vec<_> =
                                        r.logs.iter().map(|l| l.message.clone()).collect();
                                    assert_eq!(logs, [format!("run inv-{n}"), n.clone()]);
                                    assert!(!r.logs_truncated);
                                }
                                1 => {
                                    let r = SANDBOX.run(spin, &NoModules, &fast, input, None);
                                    assert_eq!(r.outcome, Outcome::Timeout);
                                    assert!(r.logs.is_empty());
                                    assert!(r.duration < Duration::from_secs(10));
                                }
                                2 => {
                                    let r = SANDBOX.run(
                                        throw,
                                        &NoModules,
                                        &Limits::DEFAULT,
                                        input,
                                        None,
                                    );
                                    assert!(script_error(&r).contains(&format!("failed {n}")));
                                    assert_eq!(r.logs.len(), 1);
                                }
                                _ => {
                                    let r = SANDBOX.run(
                                        imports,
                                        modules,
                                        &Limits::DEFAULT,
                                        input,
                                        None,
                                    );
                                    assert_eq!(body(&r), n);
                                }
                            }
                        }
                    })
                    .unwrap()
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

#[test]
fn a_raised_cancel_flag_stops_only_its_own_run() {
    let cancelled = AtomicBool::new(true);
    let counting = script("let x = 0; for i in 0..20000 { x += 1; } x");
    std::thread::scope(|scope| {
        let stopped = std::thread::Builder::new()
            .stack_size(SLOT_STACK_SIZE)
            .spawn_scoped(scope, || {
                SANDBOX.run(
                    &counting,
                    &NoModules,
                    &Limits::DEFAULT,
                    input(),
                    Some(&cancelled),
                )
            })
            .unwrap();
        let finished = std::thread::Builder::new()
            .stack_size(SLOT_STACK_SIZE)
            .spawn_scoped(scope, || {
                SANDBOX.run(&counting, &NoModules, &Limits::DEFAULT, input(), None)
            })
            .unwrap();
        assert_eq!(stopped.join().unwrap().outcome, Outcome::Timeout);
        assert_eq!(body(&finished.join().unwrap()), "20000");
    });
}

#[test]
fn a_timed_out_run_leaves_nothing_behind_on_its_thread() {
    on_slot_thread(|| {
        let spin = script(r#"log::info("spinning"); loop {}"#);
        let fast = Limits {
            timeout_ms: 20,
            max_operations: u64::MAX,
            ..Limits::DEFAULT
        };
        let r = SANDBOX.run(&spin, &NoModules, &fast, input(), None);
        assert_eq!(r.outcome, Outcome::Timeout);
        assert_eq!(r.logs.len(), 1);

        let next = script(r#"print("next"); let x = 0; for i in 0..50000 { x += 1; } x"#);
        let r = SANDBOX.run(&next, &NoModules, &Limits::DEFAULT, input(), None);
        assert_eq!(body(&r), "50000");
        let logs: Vec<_> = r.logs.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(logs, ["next"]);
    });
}

#[test]
fn the_sandbox_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<picloud_sandbox::Sandbox>();
}
