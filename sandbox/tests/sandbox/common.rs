//! Helpers: scripts with fresh ids, inputs, runs on slot-sized threads.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use picloud_sandbox::{
    HttpRequest, Limits, LogLevel, ModuleSource, NoModules, Outcome, Response, RunInput, RunResult,
    SLOT_STACK_SIZE, Sandbox, ScriptSource,
};

/// One sandbox for the whole test binary, as on a node.
pub static SANDBOX: LazyLock<Sandbox> = LazyLock::new(Sandbox::new);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A script version with an id no other test uses.
pub fn script(source: &str) -> ScriptSource {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    ScriptSource {
        id: format!("script-{n}"),
        version: 1,
        name: "endpoint".into(),
        source: source.into(),
        permissions: None,
    }
}

pub fn module(name: &str, version: u64, source: &str) -> ScriptSource {
    let mut s = script(source);
    s.name = name.into();
    s.version = version;
    s
}

/// An async invocation (no request).
pub fn input() -> RunInput {
    RunInput {
        app_id: "app-1".into(),
        app_slug: "demo".into(),
        invocation_id: "inv-1".into(),
        request: None,
        params: BTreeMap::new(),
        event: serde_json::json!({"kind": "async"}),
    }
}

pub fn http_input(request: HttpRequest) -> RunInput {
    RunInput {
        request: Some(request),
        event: serde_json::json!({"kind": "http"}),
        ..input()
    }
}

/// The app's module scripts, by name.
#[derive(Default)]
pub struct Modules(pub HashMap<String, ScriptSource>);

impl Modules {
    pub fn with(mut self, module: ScriptSource) -> Modules {
        self.0.insert(module.name.clone(), module);
        self
    }
}

impl ModuleSource for Modules {
    fn module(&self, name: &str) -> Option<ScriptSource> {
        self.0.get(name).cloned()
    }
}

/// Runs `f` on a thread with the stack an executor slot has.
pub fn on_slot_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(SLOT_STACK_SIZE)
            .spawn_scoped(scope, f)
            .expect("spawn a slot-sized thread")
            .join()
            .expect("the run panicked")
    })
}

pub fn run_full(
    source: &str,
    limits: &Limits,
    input: RunInput,
    modules: &dyn ModuleSource,
) -> RunResult {
    let script = script(source);
    on_slot_thread(|| SANDBOX.run(&script, modules, limits, input, None))
}

pub fn run(source: &str) -> RunResult {
    run_full(source, &Limits::DEFAULT, input(), &NoModules)
}

pub fn run_limited(source: &str, limits: &Limits) -> RunResult {
    run_full(source, limits, input(), &NoModules)
}

#[track_caller]
pub fn response(result: &RunResult) -> &Response {
    match &result.outcome {
        Outcome::Response(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The body of a successful run, as text.
#[track_caller]
pub fn body(result: &RunResult) -> String {
    String::from_utf8(response(result).body.to_vec()).expect("a UTF-8 body")
}

/// The message of a script error.
#[track_caller]
pub fn script_error(result: &RunResult) -> String {
    match &result.outcome {
        Outcome::ScriptError { message, .. } => message.clone(),
        other => panic!("expected a script error, got {other:?}"),
    }
}

#[track_caller]
pub fn limit(result: &RunResult) -> &'static str {
    match &result.outcome {
        Outcome::LimitExceeded { limit } => limit,
        other => panic!("expected a limit, got {other:?}"),
    }
}

pub fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The captured log of a run, as (level, message) pairs.
pub fn log_lines(result: &RunResult) -> Vec<(LogLevel, &str)> {
    result
        .logs
        .iter()
        .map(|line| (line.level, line.message.as_str()))
        .collect()
}
