//! Script-heavy throughput: a script of about 1,000 Rhai operations (a loop, a map,
//! a string built up) served over HTTP, against the engine's own ceiling — the same
//! source compiled once into an AST and evaluated in a tight loop in this process,
//! on as many threads as PiCloud has executor slots (the ceiling × slots).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine, Map, OptimizationLevel, Scope};

use crate::figures::Bench;
use crate::http::{self, Load};
use crate::node::Node;
use crate::report::Figure;
use crate::stats::Pair;

pub const HEAVY: &str = r#"
let counts = #{};
let text = "";
for i in 0..60 {
    let key = "k" + (i % 8);
    counts[key] = i * 2;
    text += key;
}
#{ keys: counts.len(), length: text.len() }
"#;

pub async fn run(bench: &mut Bench) -> anyhow::Result<Vec<Figure>> {
    let s = &bench.settings;
    // PiCloud's default: one executor slot per CPU.
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
    let node = Node::start(&s.picloud, &s.scratch.path().join("script-heavy"), None).await?;
    let mut admin = node.admin().await?;
    admin
        .endpoint("heavy", "heavy", HEAVY, "GET", "/run")
        .await?;
    let raw = Arc::new(http::request("GET", node.addr, "/heavy/run", &[], b""));
    let load = Load {
        connections: 16,
        duration: s.run_time(5_000),
        max_requests: s.scale(5_000_000, 500),
    };
    let engine = Arc::new(engine());
    let ast = Arc::new(
        engine
            .compile(HEAVY)
            .context("compiling the heavy script")?,
    );
    let operations = operations_per_run(HEAVY)?;

    http::run(
        node.addr,
        raw.clone(),
        Load {
            duration: s.run_time(1_000),
            ..load
        },
    )
    .await?
    .check("picloud warm-up")?;
    admin.settle().await?;
    let mut pairs = Vec::new();
    for _ in 0..s.pairs {
        let a = http::run(node.addr, raw.clone(), load)
            .await?
            .check("picloud")?;
        // The runs' records are written before the baseline takes the cores.
        admin.settle().await?;
        let (engine, ast) = (engine.clone(), ast.clone());
        let duration = load.duration;
        let b = tokio::task::spawn_blocking(move || ceiling(&engine, &ast, slots, duration))
            .await
            .context("the in-process loop panicked")??;
        pairs.push(Pair {
            picloud: a.rps(),
            baseline: b,
        });
    }
    node.stop().await?;
    Ok(vec![
        Figure::compared(
            "script-heavy throughput",
            "sqlite",
            "runs/s",
            &format!("same AST in-process × {slots} slots"),
            pairs,
            "≥ 0.7 of ceiling × slots",
            |_, _, r| r >= 0.7,
        )
        .with_note(format!(
            "{operations} Rhai operations per run; 16 connections"
        )),
    ])
}

/// An engine like the sandbox's (standard library, no optimizer) without limits.
fn engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine.set_optimization_level(OptimizationLevel::None);
    engine
}

/// The `ctx` constant the script sees, as small as PiCloud's for this route.
fn ctx_scope() -> Scope<'static> {
    let mut ctx = Map::new();
    ctx.insert("params".into(), Dynamic::from_map(Map::new()));
    let mut scope = Scope::new();
    scope.push_constant("ctx", ctx);
    scope
}

/// How many operations one run of `source` counts (Rhai's own measure).
fn operations_per_run(source: &str) -> anyhow::Result<u64> {
    let mut engine = engine();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    engine.on_progress(move |ops| {
        counter.fetch_max(ops, Ordering::Relaxed);
        None
    });
    let ast = engine.compile(source)?;
    let _value = engine
        .eval_ast_with_scope::<Dynamic>(&mut ctx_scope(), &ast)
        .map_err(|e| anyhow::anyhow!("the heavy script failed: {e}"))?;
    Ok(seen.load(Ordering::Relaxed))
}

/// Runs per second of `ast` evaluated back to back on `threads` threads.
fn ceiling(
    engine: &Engine,
    ast: &rhai::AST,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let deadline = start + duration;
    let runs: anyhow::Result<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || -> anyhow::Result<u64> {
                    let mut scope = ctx_scope();
                    let mut runs = 0u64;
                    while Instant::now() < deadline {
                        let value = engine
                            .eval_ast_with_scope::<Dynamic>(&mut scope, ast)
                            .map_err(|e| anyhow::anyhow!("the heavy script failed: {e}"))?;
                        let _ = std::hint::black_box(value);
                        scope.rewind(1);
                        runs += 1;
                    }
                    Ok(runs)
                })
            })
            .collect();
        let mut total = 0;
        for worker in workers {
            total += worker
                .join()
                .map_err(|_| anyhow::anyhow!("an evaluation thread panicked"))??;
        }
        Ok(total)
    });
    Ok(runs? as f64 / start.elapsed().as_secs_f64())
}
