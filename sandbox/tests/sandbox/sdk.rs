//! The script SDK: json, log, time, crypto; kv calls bounded by the run's time.

use picloud_sandbox::LogLevel;

use crate::common::*;

#[test]
fn json_parse_and_stringify_round_trip() {
    let r =
        run(r#"let v = json::parse(`{"a":[1,2.5,null,true],"b":{"c":"d"}}`); json::stringify(v)"#);
    assert_eq!(body(&r), r#"{"a":[1,2.5,null,true],"b":{"c":"d"}}"#);
    assert_eq!(body(&run(r#"json::parse("[1, 2]").len()"#)), "2");
    assert_eq!(body(&run(r#"json::stringify("q\"")"#)), r#""q\"""#);
}

#[test]
fn json_parse_throws_a_catchable_error_on_invalid_json() {
    let message = script_error(&run(r#"json::parse("{nope")"#));
    assert!(message.contains("json::parse"), "{message}");
    let caught = r#"let r = "no"; try { json::parse("{"); } catch (e) { r = "caught"; } r"#;
    assert_eq!(body(&run(caught)), "caught");
}

#[test]
fn json_stringify_throws_for_values_without_json_form() {
    let message = script_error(&run(r#"json::stringify(#{ f: Fn("x") })"#));
    assert!(message.contains("no JSON form"), "{message}");
    let message = script_error(&run(
        "let a = []; for i in 0..200 { a = [a]; } json::stringify(a)",
    ));
    assert!(message.contains("nested more than"), "{message}");
}

#[test]
fn json_parse_respects_data_limits() {
    let items = vec!["1"; 2000].join(",");
    let l = picloud_sandbox::Limits {
        max_array_size: 1000,
        ..Default::default()
    };
    let r = run_limited(&format!("json::parse(\"[{items}]\")"), &l);
    assert_eq!(limit(&r), "max_array_size");
}

#[test]
fn log_functions_capture_lines_at_their_level() {
    let r =
        run(r#"debug("d"); log::info("i"); log::warn("w"); log::error("e"); log::info(42); ()"#);
    let lines = log_lines(&r);
    assert_eq!(
        lines,
        [
            (LogLevel::Debug, "\"d\""),
            (LogLevel::Info, "i"),
            (LogLevel::Warn, "w"),
            (LogLevel::Error, "e"),
            (LogLevel::Info, "42"),
        ]
    );
    let before = chrono::Utc::now() - chrono::Duration::seconds(60);
    assert!(r.logs.iter().all(|l| l.at > before));
}

#[test]
fn log_lines_serialize_with_lowercase_levels() {
    let r = run(r#"log::warn("w")"#);
    let json = serde_json::to_value(&r.logs[0]).unwrap();
    assert_eq!(json["level"], "warn");
    assert_eq!(json["message"], "w");
}

#[test]
fn time_now_is_unix_milliseconds() {
    let before = chrono::Utc::now().timestamp_millis();
    let now: i64 = body(&run("time::now()")).parse().unwrap();
    let after = chrono::Utc::now().timestamp_millis();
    assert!(before <= now && now <= after);
}

#[test]
fn time_format_and_parse() {
    assert_eq!(body(&run("time::format(0)")), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        body(&run("time::format(1714557600123)")),
        "2024-05-01T10:00:00.123Z"
    );
    assert_eq!(
        body(&run(r#"time::format(86400000, "%Y-%m-%d %H:%M")"#)),
        "1970-01-02 00:00"
    );
    assert_eq!(
        body(&run(r#"time::parse("2024-05-01T12:00:00+02:00")"#)),
        "1714557600000"
    );
    assert_eq!(
        body(&run(r#"time::parse(time::format(123456789))"#)),
        "123456789"
    );
}

#[test]
fn time_errors_are_catchable_script_errors() {
    for source in [
        r#"time::parse("yesterday")"#,
        r#"time::format(0, "%Q")"#,
        "time::format(9223372036854775807)",
    ] {
        let message = script_error(&run(source));
        assert!(message.contains("time"), "{source}: {message}");
    }
    let caught = r#"let r = "no"; try { time::parse("x"); } catch { r = "caught"; } r"#;
    assert_eq!(body(&run(caught)), "caught");
}

#[test]
fn crypto_hashes_match_known_vectors() {
    assert_eq!(
        body(&run(r#"crypto::sha256("abc")"#)),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // RFC 4231, test case 2.
    assert_eq!(
        body(&run(
            r#"crypto::hmac_sha256("Jefe", "what do ya want for nothing?")"#
        )),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn crypto_uuid_is_a_fresh_v4() {
    let r = run("[crypto::uuid(), crypto::uuid()]");
    let ids: Vec<String> = serde_json::from_str(&body(&r)).unwrap();
    let parsed = uuid::Uuid::parse_str(&ids[0]).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn crypto_random_hex_has_twice_n_chars_and_a_cap() {
    assert_eq!(body(&run("crypto::random_hex(16).len()")), "32");
    assert_eq!(body(&run("crypto::random_hex(0)")), "");
    assert_eq!(body(&run("crypto::random_hex(1024).len()")), "2048");
    for n in ["1025", "-1"] {
        let message = script_error(&run(&format!("crypto::random_hex({n})")));
        assert!(message.contains("between 0 and 1024"), "{message}");
    }
}

/// A kv whose store stalls: every call waits as long as it is allowed to, and
/// remembers the longest wait it was given.
struct StalledKv(std::sync::Mutex<std::time::Duration>);

impl StalledKv {
    fn stall<T>(&self, wait: std::time::Duration) -> Result<T, String> {
        let mut longest = self.0.lock().expect("lock");
        *longest = (*longest).max(wait);
        drop(longest);
        std::thread::sleep(wait);
        Err("the store did not answer in time".into())
    }
}

impl picloud_sandbox::Kv for StalledKv {
    fn get(
        &self,
        _: &str,
        _: &str,
        wait: std::time::Duration,
    ) -> Result<Option<serde_json::Value>, String> {
        self.stall(wait)
    }
    fn set(
        &self,
        _: &str,
        _: &str,
        _: serde_json::Value,
        wait: std::time::Duration,
    ) -> Result<(), String> {
        self.stall(wait)
    }
    fn delete(&self, _: &str, _: &str, wait: std::time::Duration) -> Result<bool, String> {
        self.stall(wait)
    }
    fn list(
        &self,
        _: &str,
        _: &str,
        _: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<String>, String> {
        self.stall(wait)
    }
    fn incr(&self, _: &str, _: &str, _: i64, wait: std::time::Duration) -> Result<i64, String> {
        self.stall(wait)
    }
}

#[test]
fn a_kv_call_waits_no_longer_than_the_run_has_left() {
    let kv = std::sync::Arc::new(StalledKv(Default::default()));
    let host = picloud_sandbox::Host::default().with_kv(kv.clone());
    let limits = picloud_sandbox::Limits {
        timeout_ms: 300,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    // A script that catches the error still ends: its time is up.
    let r = on_slot_thread(|| {
        SANDBOX.run_with_host(
            &script(r#"try { kv::incr("n", 1) } catch (e) { } "finished""#),
            &picloud_sandbox::NoModules,
            &limits,
            input(),
            None,
            &host,
        )
    });
    assert!(
        matches!(r.outcome, picloud_sandbox::Outcome::Timeout),
        "{:?}",
        r.outcome
    );
    let longest = *kv.0.lock().expect("lock");
    assert!(
        longest <= std::time::Duration::from_millis(300),
        "waited up to {longest:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
