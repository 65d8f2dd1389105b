//! Recording a run's answers from outside, and replaying them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use picloud_sandbox::{
    Answers, Host, Kv, Limits, MAX_RECORDING_BYTES, NoModules, Reply, RunResult, Secrets,
};

use crate::common::*;

/// An in-memory kv and one secret, for the runs below.
#[derive(Default)]
struct World(Mutex<HashMap<String, serde_json::Value>>);

impl Kv for World {
    fn get(&self, _: &str, key: &str, _: Duration) -> Result<Option<serde_json::Value>, String> {
        Ok(self.0.lock().map_err(|e| e.to_string())?.get(key).cloned())
    }
    fn set(&self, _: &str, key: &str, value: serde_json::Value, _: Duration) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|e| e.to_string())?
            .insert(key.into(), value);
        Ok(())
    }
    fn delete(&self, _: &str, key: &str, _: Duration) -> Result<bool, String> {
        Ok(self
            .0
            .lock()
            .map_err(|e| e.to_string())?
            .remove(key)
            .is_some())
    }
    fn list(&self, _: &str, _: &str, _: usize, _: Duration) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
    fn incr(&self, _: &str, _: &str, _: i64, _: Duration) -> Result<i64, String> {
        Err("not here".into())
    }
}

impl Secrets for World {
    fn get(&self, _: &str, name: &str) -> Result<Option<String>, String> {
        Ok((name == "token").then(|| "s3cr3t-value".to_owned()))
    }
}

fn host(world: Arc<World>) -> Host {
    Host::default().with_kv(world.clone()).with_secrets(world)
}

fn run_with(source: &str, host: &Host, answers: Answers) -> RunResult {
    let script = script(source);
    on_slot_thread(|| {
        SANDBOX.run_answered(
            &script,
            &NoModules,
            &Limits::DEFAULT,
            input(),
            None,
            host,
            answers,
        )
    })
}

const SCRIPT: &str = r#"
    let t = time::now();
    let id = crypto::uuid();
    let r = crypto::random_hex(4);
    let seen = kv::get("k");
    let s = secrets::get("token");
    #{ t: t, id: id, r: r, seen: seen, secret_len: s.len() }
"#;

#[test]
fn a_recorded_run_holds_its_answers_in_order_and_secrets_by_name() {
    let world = Arc::new(World::default());
    world
        .set("a", "k", serde_json::json!(41), Duration::ZERO)
        .ok();
    let result = run_with(SCRIPT, &host(world), Answers::Record);
    let recording = result.recording.expect("a recording");
    let calls: Vec<&str> = recording.answers.iter().map(|a| a.call.as_str()).collect();
    assert_eq!(
        calls,
        [
            "time::now",
            "crypto::uuid",
            "crypto::random_hex",
            "kv::get",
            "secrets::get"
        ]
    );
    assert_eq!(recording.answers[3].ask, serde_json::json!({"key": "k"}));
    assert_eq!(
        recording.answers[3].reply,
        Reply::Ok(serde_json::json!({"value": 41}))
    );
    assert_eq!(recording.answers[4].reply, Reply::Reference);
    assert_eq!(
        recording.answers[4].ask,
        serde_json::json!({"name": "token"})
    );
    let text = serde_json::to_string(&recording).expect("JSON");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!recording.truncated);
}

#[test]
fn a_run_not_recorded_has_no_recording() {
    let result = run_with("time::now()", &Host::default(), Answers::Perform);
    assert!(result.recording.is_none());
}

#[test]
fn the_cap_truncates_a_recording_with_a_marker() {
    let result = run_with(
        "for i in 0..100 { crypto::random_hex(1024); } 1",
        &Host::default(),
        Answers::Record,
    );
    assert_eq!(body(&result), "1");
    let recording = result.recording.expect("a recording");
    assert!(recording.truncated);
    assert!(recording.bytes <= MAX_RECORDING_BYTES);
    assert!(recording.dropped > 0);
    assert_eq!(recording.answers.len() + recording.dropped as usize, 100);
}

#[test]
fn a_replay_answers_from_the_recording_and_reads_the_secret_anew() {
    let world = Arc::new(World::default());
    world
        .set("a", "k", serde_json::json!(41), Duration::ZERO)
        .ok();
    let recorded = run_with(SCRIPT, &host(world.clone()), Answers::Record);
    let recording = recorded.recording.clone().expect("a recording");
    // The world changes: kv rewritten. The replay still answers 41.
    world
        .set("a", "k", serde_json::json!(0), Duration::ZERO)
        .ok();
    let replayed = run_with(SCRIPT, &host(world), Answers::Replay(recording.clone()));
    assert_eq!(replayed.unanswered, None);
    assert_eq!(body(&replayed), body(&recorded));

    // Without secrets the reference cannot be read: it fails clearly.
    let no_secrets = run_with(SCRIPT, &Host::default(), Answers::Replay(recording.clone()));
    assert!(
        script_error(&no_secrets).contains("secrets: not available"),
        "{:?}",
        no_secrets.outcome
    );

    // A script that asks something else is told so, not guessed an answer.
    let changed = run_with(
        r#"let t = time::now(); kv::get("other")"#,
        &Host::default(),
        Answers::Replay(recording),
    );
    let unanswered = changed.unanswered.expect("unanswerable");
    assert!(unanswered.contains("kv::get"), "{unanswered}");
}
