//! `http::*` end to end: scripts on slot threads, a guarded client on a tokio
//! runtime, a server on 127.0.0.2 (exempted) and one on 127.0.0.1 (never reached).

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use picloud_net::StaticResolver;
use picloud_net::test_server::TestServer;
use picloud_sandbox::{Host, HttpClient, HttpPolicy, Limits, NoModules, Outcome, RunResult};

use crate::common::*;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
});

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

static ALLOWED: LazyLock<TestServer> = LazyLock::new(|| {
    RUNTIME
        .block_on(TestServer::start(ip("127.0.0.2")))
        .expect("server")
});
static VICTIM: LazyLock<TestServer> = LazyLock::new(|| {
    RUNTIME
        .block_on(TestServer::start(ip("127.0.0.1")))
        .expect("server")
});

static HOST: LazyLock<Host> = LazyLock::new(|| {
    let policy = HttpPolicy::from_settings(None, Some("127.0.0.2/32")).expect("policy");
    let resolver = StaticResolver::new()
        .with("allowed.test", &[ip("127.0.0.2")])
        .with("rebind.test", &[ip("127.0.0.1")]);
    let client = HttpClient::with_resolver(policy, RUNTIME.handle().clone(), Arc::new(resolver))
        .expect("client");
    Host::default().with_http(client)
});

fn run_http_limited(source: &str, limits: &Limits) -> RunResult {
    let script = script(source);
    on_slot_thread(|| SANDBOX.run_with_host(&script, &NoModules, limits, input(), None, &HOST))
}

/// Runs `source` with `$ALLOWED` and `$VICTIM_PORT` replaced.
fn run_http(source: &str) -> RunResult {
    let source = source
        .replace("$ALLOWED", &ALLOWED.url(""))
        .replace("$VICTIM_PORT", &VICTIM.addr.port().to_string())
        .replace("$ALLOWED_PORT", &ALLOWED.addr.port().to_string());
    run_http_limited(&source, &Limits::DEFAULT)
}

#[test]
fn get_answers_status_headers_and_body() {
    let r = run_http(
        r#"let r = http::get("$ALLOWED/text");
           `${r.status} ${r.body} ${r.body_raw} ${r.headers["content-type"]}`"#,
    );
    assert_eq!(body(&r), "200 hello hello text/plain");
}

#[test]
fn json_answers_are_parsed_and_the_raw_text_kept() {
    let r = run_http(
        r#"let r = http::get("$ALLOWED/json", #{ timeout_ms: 5000 });
           `${r.body.ok} ${r.body.n[1]} ${r.body_raw}`"#,
    );
    assert_eq!(body(&r), r#"true 2 {"ok":true,"n":[1,2]}"#);
}

#[test]
fn a_non_2xx_status_is_an_answer_not_an_error() {
    let r = run_http(r#"http::get("$ALLOWED/status/404").status"#);
    assert_eq!(body(&r), "404");
    let r = run_http(r#"http::delete("$ALLOWED/status/503", #{}).status"#);
    assert_eq!(body(&r), "503");
}

#[test]
fn every_calling_form_of_get_and_delete_is_accepted() {
    let r = run_http(
        r#"let a = http::delete("$ALLOWED/echo").body;
           let b = http::get("$ALLOWED/echo", #{ a: 1 }, #{ headers: #{ "x-form": "3" } }).body;
           let c = http::get("$ALLOWED/echo", #{ headers: #{ "x-form": "2" } }).body;
           [a.method, b.method, b.body, b.headers["x-form"], c.method, c.headers["x-form"]]"#,
    );
    let value: serde_json::Value = serde_json::from_str(&body(&r)).expect("json");
    assert_eq!(
        value,
        serde_json::json!(["DELETE", "GET", r#"{"a":1}"#, "3", "GET", "2"])
    );
}

#[test]
fn bodies_are_sent_by_type() {
    let r = run_http(
        r#"let m = http::post("$ALLOWED/echo", #{ a: [1, 2] }).body;
           let s = http::put("$ALLOWED/echo", "plain").body;
           let b = http::patch("$ALLOWED/echo", blob(3, 65)).body;
           let d = http::delete("$ALLOWED/echo", "x", #{ headers: #{ "content-type": "text/csv" } }).body;
           [m.method, m.headers["content-type"], m.body,
            s.method, s.headers["content-type"], s.body,
            b.method, b.headers["content-type"], b.body,
            d.method, d.headers["content-type"]]"#,
    );
    let value: serde_json::Value = serde_json::from_str(&body(&r)).expect("json");
    assert_eq!(
        value,
        serde_json::json!([
            "POST",
            "application/json",
            r#"{"a":[1,2]}"#,
            "PUT",
            "text/plain; charset=utf-8",
            "plain",
            "PATCH",
            "application/octet-stream",
            "AAA",
            "DELETE",
            "text/csv"
        ])
    );
}

#[test]
fn the_user_agent_names_the_app_and_the_script() {
    let source = r#"http::get("$ALLOWED/echo").body.headers["user-agent"]"#;
    let script_source = source.replace("$ALLOWED", &ALLOWED.url(""));
    let script = script(&script_source);
    let id = script.id.clone();
    let r = on_slot_thread(|| {
        SANDBOX.run_with_host(&script, &NoModules, &Limits::DEFAULT, input(), None, &HOST)
    });
    assert_eq!(
        body(&r),
        format!(
            "PiCloud/{} (app demo; script {id})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn refusals_are_catchable_errors_naming_the_category() {
    let hits = VICTIM.hits();
    for (url, category) in [
        ("http://127.0.0.1:$VICTIM_PORT/", "loopback"),
        ("http://2130706433:$VICTIM_PORT/", "loopback"),
        ("http://0x7f.1:$VICTIM_PORT/", "loopback"),
        ("http://[::1]:$VICTIM_PORT/", "loopback"),
        ("http://[::ffff:127.0.0.1]:$VICTIM_PORT/", "ipv4_mapped"),
        ("http://localhost:$VICTIM_PORT/", "loopback"),
        ("http://0.0.0.0:$VICTIM_PORT/", "unspecified"),
        ("http://rebind.test:$VICTIM_PORT/", "loopback"),
        ("http://169.254.169.254/", "metadata"),
        ("ftp://allowed.test/", "scheme"),
        ("http://allowed.test:22/", "port"),
        (
            "$ALLOWED/redirect/302?to=http%3A%2F%2F127.0.0.1%3A$VICTIM_PORT%2F",
            "loopback",
        ),
    ] {
        let source = format!(
            r#"let out = "not refused"; try {{ http::get("{url}"); }} catch (e) {{ out = e; }} out"#
        );
        let r = run_http(&source);
        assert_eq!(
            body(&r),
            format!("http: destination refused ({category})"),
            "{url}"
        );
    }
    // Uncaught, a refusal is a script error (500), not a crash.
    let r = run_http(r#"http::get("http://127.0.0.1:$VICTIM_PORT/")"#);
    assert!(script_error(&r).contains("http: destination refused (loopback)"));
    assert_eq!(VICTIM.hits(), hits, "a refused call reached 127.0.0.1");
}

#[test]
fn unknown_options_and_bad_values_throw() {
    for (opts, expected) in [
        ("#{ nope: 1 }", r#"http: unknown option "nope""#),
        (
            "#{ timeout_ms: 0 }",
            "timeout_ms must be a positive integer",
        ),
        (
            "#{ follow_redirects: 1 }",
            "follow_redirects must be true or false",
        ),
        ("#{ headers: 1 }", "headers must be a map"),
        (
            "#{ headers: #{ host: \"x\" } }",
            "header host is set by PiCloud",
        ),
        ("#{ max_response_bytes: 1073741824 }", "above the ceiling"),
    ] {
        let r = run_http(&format!(
            r#"let out = "no error"; try {{ http::get("$ALLOWED/text", {opts}); }} catch (e) {{ out = e; }} out"#
        ));
        let message = body(&r);
        assert!(message.contains(expected), "{opts}: {message}");
    }
    let r = run_http(
        r#"let out = "sent"; try { http::post("$ALLOWED/echo", 42); } catch (e) { out = e; } out"#,
    );
    assert!(body(&r).contains("body must be a map"), "{}", body(&r));
}

#[test]
fn redirects_can_be_left_unfollowed() {
    let r = run_http(
        r#"let r = http::get("$ALLOWED/redirect/302?to=%2Ftext", #{ follow_redirects: false });
           `${r.status} ${r.headers.location}`"#,
    );
    assert_eq!(body(&r), "302 /text");
    let r = run_http(r#"http::get("$ALLOWED/redirect/302?to=%2Ftext").body"#);
    assert_eq!(body(&r), "hello");
}

#[test]
fn response_bodies_over_the_cap_throw() {
    let r = run_http(
        r#"let out = "read";
           try { http::get("$ALLOWED/chunked/5000", #{ max_response_bytes: 1000 }); }
           catch (e) { out = e; }
           out"#,
    );
    assert_eq!(
        body(&r),
        "http: response body larger than 1000 bytes (raise max_response_bytes)"
    );
}

#[test]
fn an_invocation_has_a_cap_on_calls() {
    // Refused calls count too, and cost no network.
    let r = run_http(
        r#"let refused = 0;
           for i in 0..60 {
               try { http::get("http://127.0.0.1:1/"); }
               catch (e) { if e.contains("refused") { refused += 1 } else { return `${refused}: ${e}` } }
           }
           "no cap""#,
    );
    assert_eq!(body(&r), "50: http: more than 50 calls in one invocation");
}

#[test]
fn waiting_on_a_call_counts_against_the_wall_clock_limit() {
    let limits = Limits {
        timeout_ms: 300,
        ..Limits::DEFAULT
    };
    let source = format!(
        r#"try {{ http::get("{}", #{{ timeout_ms: 30000 }}) }} catch (e) {{ }} "finished""#,
        ALLOWED.url("/hang")
    );
    let r = run_http_limited(&source, &limits);
    assert_eq!(r.outcome, Outcome::Timeout);
    assert!(r.duration < Duration::from_secs(3), "{:?}", r.duration);
    // The slot is free again and the node healthy.
    let r = run_http(r#"http::get("$ALLOWED/text").status"#);
    assert_eq!(body(&r), "200");
}

#[test]
fn without_a_host_http_is_unavailable_but_catchable() {
    let r = run(
        r#"let out = "sent"; try { http::get("http://example.com/"); } catch (e) { out = e; } out"#,
    );
    assert_eq!(body(&r), "http: not available on this host");
}

#[test]
fn a_response_at_the_default_cap_fits_the_default_limits() {
    let r = run_http(
        r#"let r = http::get("$ALLOWED/big/262144");
           `${r.body.len()} ${r.body_raw.len()}`"#,
    );
    assert_eq!(body(&r), "262144 262144");
    let r = run_http(
        r#"let out = "read"; try { http::get("$ALLOWED/big/262145"); } catch (e) { out = e; } out"#,
    );
    assert_eq!(
        body(&r),
        "http: response body larger than 262144 bytes (raise max_response_bytes)"
    );
}
