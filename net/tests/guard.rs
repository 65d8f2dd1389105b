//! End to end through the real client: every bypass attempt is refused, with the
//! category and never the address. No packet leaves loopback: addresses outside it
//! are refused before any connection, and the one server that may be reached runs on
//! 127.0.0.2, exempted with `PICLOUD_HTTP_ALLOW_CIDRS`. A second server listens on
//! 127.0.0.1 (not exempted): the bypass attempts aim at it, and it must never see
//! a connection.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use picloud_net::test_server::TestServer;
use picloud_net::{
    Category, HttpClient, HttpError, HttpPolicy, Method, OutboundRequest, StaticResolver,
};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn resolver() -> StaticResolver {
    StaticResolver::new()
        .with("allowed.test", &[ip("127.0.0.2")])
        .with("rebind.test", &[ip("127.0.0.1")])
        .with("private.test", &[ip("10.0.0.1")])
        .with("meta.test", &[ip("169.254.169.254")])
        .with("v6.test", &[ip("::1")])
        .with("mapped.test", &[ip("::ffff:127.0.0.1")])
        .with("zero.test", &[ip("0.0.0.0")])
        .with("mixed.test", &[ip("10.0.0.1"), ip("127.0.0.1")])
        .with("cgnat.test", &[ip("100.64.0.1")])
        .with("ula.test", &[ip("fd00::1")])
}

fn client(exempt: Option<&str>) -> HttpClient {
    let policy = HttpPolicy::from_settings(None, exempt).expect("policy");
    HttpClient::with_resolver(
        policy,
        tokio::runtime::Handle::current(),
        Arc::new(resolver()),
    )
    .expect("client")
}

fn get(url: &str) -> OutboundRequest {
    OutboundRequest {
        method: Method::GET,
        url: url.to_owned(),
        headers: Vec::new(),
        body: None,
        timeout: Some(Duration::from_secs(5)),
        follow_redirects: true,
        max_response_bytes: None,
        app_slug: "demo".into(),
        script_id: "s1".into(),
        allow_hosts: None,
    }
}

/// `%`-encodes everything but unreserved characters, for URLs inside a query.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bypass_attempt_is_refused() {
    use Category::*;
    let allowed = TestServer::start(ip("127.0.0.2"))
        .await
        .expect("allowed server");
    let victim = TestServer::start(ip("127.0.0.1"))
        .await
        .expect("victim server");
    let p = victim.addr.port();
    let redirect =
        |code: u16, to: &str| allowed.url(&format!("/redirect/{code}?to={}", encode(to)));

    let mut attempts: Vec<(String, Category)> = [
        // Literal forms of loopback, aimed at the victim.
        (format!("http://127.0.0.1:{p}/"), Loopback),
        (format!("http://2130706433:{p}/"), Loopback),
        (format!("http://0x7f000001:{p}/"), Loopback),
        (format!("http://0x7f.1:{p}/"), Loopback),
        (format!("http://0177.0.0.1:{p}/"), Loopback),
        (format!("http://017700000001:{p}/"), Loopback),
        (format!("http://127.1:{p}/"), Loopback),
        (format!("http://127.0.1:{p}/"), Loopback),
        (format!("http://127.0.0.1.:{p}/"), Loopback),
        (format!("http://127.000.000.001:{p}/"), Loopback),
        (format!("http://0x7f.0x0.0x0.0x1:{p}/"), Loopback),
        (format!("http://%31%32%37.0.0.1:{p}/"), Loopback),
        (format!("http://user:pw@127.0.0.1:{p}/"), Loopback),
        (format!("http://example.com@127.0.0.1:{p}/"), Loopback),
        (format!("https://127.0.0.1:{p}/"), Loopback),
        (format!("http://[::1]:{p}/"), Loopback),
        (format!("http://[0:0:0:0:0:0:0:1]:{p}/"), Loopback),
        (format!("http://[::ffff:127.0.0.1]:{p}/"), Ipv4Mapped),
        (format!("http://[::ffff:7f00:1]:{p}/"), Ipv4Mapped),
        (
            format!("http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/"),
            Ipv4Mapped,
        ),
        (format!("http://[::127.0.0.1]:{p}/"), Ipv4Mapped),
        (format!("http://[64:ff9b::127.0.0.1]:{p}/"), Nat64),
        (format!("http://[2002:7f00:1::]:{p}/"), SixToFour),
        (format!("http://localhost:{p}/"), Loopback),
        (format!("http://LOCALHOST:{p}/"), Loopback),
        (format!("http://localhost.:{p}/"), Loopback),
        (format!("http://api.localhost:{p}/"), Loopback),
        (format!("http://0.0.0.0:{p}/"), Unspecified),
        (format!("http://0:{p}/"), Unspecified),
        (format!("http://[::]:{p}/"), Unspecified),
        // Other refused ranges, as literals (never connected to).
        ("http://169.254.169.254/latest/meta-data/".into(), Metadata),
        ("http://0xa9fea9fe/".into(), Metadata),
        ("http://2852039166/".into(), Metadata),
        ("http://[::ffff:169.254.169.254]/".into(), Ipv4Mapped),
        ("http://[fd00:ec2::254]/".into(), Metadata),
        ("http://metadata.google.internal/".into(), Metadata),
        ("http://10.0.0.1/".into(), Private),
        ("http://012.0.0.1/".into(), Private),
        ("http://192.168.1.1/".into(), Private),
        ("http://172.16.0.1/".into(), Private),
        ("http://100.64.0.1/".into(), Cgnat),
        ("http://169.254.1.1/".into(), LinkLocal),
        ("http://[fe80::1]/".into(), LinkLocal),
        ("http://[fc00::1]/".into(), UniqueLocal),
        ("http://[fec0::1]/".into(), SiteLocal),
        ("http://224.0.0.1/".into(), Multicast),
        ("http://[ff02::1]/".into(), Multicast),
        ("http://255.255.255.255/".into(), Broadcast),
        ("http://192.0.2.1/".into(), Documentation),
        ("http://198.18.0.1/".into(), Benchmarking),
        ("http://240.0.0.1/".into(), Reserved),
        // Schemes, ports and unparsable URLs.
        ("ftp://example.com/".into(), Scheme),
        ("file:///etc/passwd".into(), Scheme),
        (format!("gopher://127.0.0.1:{p}/"), Scheme),
        ("data:text/plain,hi".into(), Scheme),
        ("http://example.com:22/".into(), Port),
        ("http://example.com:1023/".into(), Port),
        ("http://example.com:0/".into(), Port),
        ("not a url".into(), InvalidUrl),
        ("http://".into(), InvalidUrl),
        ("//127.0.0.1/".into(), InvalidUrl),
        (format!("http://[::1%25lo]:{p}/"), InvalidUrl),
        // Names a resolver answers with refused addresses (DNS rebinding).
        (format!("http://rebind.test:{p}/"), Loopback),
        ("http://private.test/".into(), Private),
        ("http://meta.test/".into(), Metadata),
        (format!("http://v6.test:{p}/"), Loopback),
        (format!("http://mapped.test:{p}/"), Ipv4Mapped),
        (format!("http://zero.test:{p}/"), Unspecified),
        (format!("http://mixed.test:{p}/"), Private),
        ("http://cgnat.test/".into(), Cgnat),
        ("http://ula.test/".into(), UniqueLocal),
    ]
    .into_iter()
    .collect();
    // Redirects from the exempted server to refused destinations, every redirect code.
    attempts.extend([
        (redirect(302, &format!("http://127.0.0.1:{p}/")), Loopback),
        (redirect(301, &format!("http://2130706433:{p}/")), Loopback),
        (redirect(307, &format!("http://[::1]:{p}/")), Loopback),
        (redirect(308, &format!("http://localhost:{p}/")), Loopback),
        (redirect(303, &format!("http://rebind.test:{p}/")), Loopback),
        (redirect(302, &format!("//127.0.0.1:{p}/")), Loopback),
        (
            redirect(302, &format!("http://[::ffff:127.0.0.1]:{p}/")),
            Ipv4Mapped,
        ),
        (
            redirect(302, "http://169.254.169.254/latest/meta-data/"),
            Metadata,
        ),
        (redirect(302, "http://meta.test/"), Metadata),
        (redirect(302, "ftp://127.0.0.2/"), Scheme),
        (redirect(302, "http://127.0.0.2:22/"), Port),
        (
            redirect(302, &redirect(302, &format!("http://0x7f.1:{p}/"))),
            Loopback,
        ),
    ]);
    assert!(attempts.len() >= 60, "only {} attempts", attempts.len());

    let client = client(Some("127.0.0.2/32"));
    for (url, category) in &attempts {
        let err = client.fetch(get(url)).await.expect_err(url);
        assert_eq!(err, HttpError::Refused(*category), "{url}");
        let message = err.to_string();
        assert_eq!(
            message,
            format!("destination refused ({})", category.name())
        );
    }
    assert_eq!(victim.hits(), 0, "a refused call reached the victim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exempted_server_answers_and_is_refused_without_the_exemption() {
    let allowed = TestServer::start(ip("127.0.0.2")).await.expect("server");
    let exempted = client(Some("127.0.0.2/32"));
    let answer = exempted
        .fetch(get(&allowed.url("/text")))
        .await
        .expect("allowed");
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body[..], b"hello");

    let port = allowed.addr.port();
    let by_name = exempted
        .fetch(get(&format!("http://allowed.test:{port}/json")))
        .await
        .expect("allowed by name");
    assert_eq!(&by_name.body[..], br#"{"ok":true,"n":[1,2]}"#);

    let hits = allowed.hits();
    let err = client(None)
        .fetch(get(&allowed.url("/text")))
        .await
        .expect_err("not exempted");
    assert_eq!(err, HttpError::Refused(Category::Loopback));
    assert_eq!(allowed.hits(), hits);
}

/// A reload swaps the allow lists of the running client: by address and by name
/// (the resolver checks with the new policy too), and back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_allow_lists_apply_to_the_next_call() {
    let allowed = TestServer::start(ip("127.0.0.2")).await.expect("server");
    let port = allowed.addr.port();
    let by_name = format!("http://allowed.test:{port}/text");
    let client = client(None);
    for url in [allowed.url("/text"), by_name.clone()] {
        let err = client.fetch(get(&url)).await.expect_err("not yet exempted");
        assert_eq!(err, HttpError::Refused(Category::Loopback));
    }

    let exempt = HttpPolicy::from_settings(None, Some("127.0.0.2/32")).expect("policy");
    client
        .set_allow(exempt.allow_private, exempt.allow_cidrs.clone())
        .expect("swapped");
    assert_eq!(client.policy().allow_cidrs, exempt.allow_cidrs);
    for url in [allowed.url("/text"), by_name.clone()] {
        let answer = client.fetch(get(&url)).await.expect("exempted now");
        assert_eq!(answer.status, 200);
    }

    client.set_allow(false, Vec::new()).expect("swapped");
    let hits = allowed.hits();
    let err = client
        .fetch(get(&by_name))
        .await
        .expect_err("refused again");
    assert_eq!(err, HttpError::Refused(Category::Loopback));
    assert_eq!(allowed.hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_agent_headers_and_body_are_sent() {
    let allowed = TestServer::start(ip("127.0.0.2")).await.expect("server");
    let client = client(Some("127.0.0.2/32"));
    let mut request = get(&allowed.url("/echo"));
    request.method = Method::POST;
    request.headers = vec![("x-token".into(), "t1".into())];
    request.body = Some("payload".into());
    let answer = client.fetch(request).await.expect("echo");
    let echo = String::from_utf8(answer.body.to_vec()).expect("utf-8");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        echo.contains(&format!(
            r#""user-agent":"PiCloud/{version} (app demo; script s1)""#
        )),
        "{echo}"
    );
    assert!(echo.contains(r#""x-token":"t1""#), "{echo}");
    assert!(echo.contains(r#""method":"POST""#), "{echo}");
    assert!(echo.contains(r#""body":"payload""#), "{echo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_within_the_allowed_set_and_303_becomes_get() {
    let allowed = TestServer::start(ip("127.0.0.2")).await.expect("server");
    let client = client(Some("127.0.0.2/32"));
    let to = encode(&allowed.url("/echo"));
    let mut request = get(&allowed.url(&format!("/redirect/303?to={to}")));
    request.method = Method::POST;
    request.body = Some("gone after 303".into());
    let answer = client.fetch(request).await.expect("redirected");
    let echo = String::from_utf8(answer.body.to_vec()).expect("utf-8");
    assert!(echo.contains(r#""method":"GET""#), "{echo}");
    assert!(echo.contains(r#""body":"""#), "{echo}");

    let mut no_follow = get(&allowed.url(&format!("/redirect/302?to={to}")));
    no_follow.follow_redirects = false;
    let answer = client.fetch(no_follow).await.expect("not followed");
    assert_eq!(answer.status, 302);

    // A redirect to itself, forever: stopped after the cap.
    let mut url = allowed.url("/text");
    for _ in 0..8 {
        url = allowed.url(&format!("/redirect/302?to={}", encode(&url)));
    }
    let err = client.fetch(get(&url)).await.expect_err("too many");
    assert_eq!(err, HttpError::TooManyRedirects(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_bodies_are_capped_while_streaming() {
    let allowed = TestServer::start(ip("127.0.0.2")).await.expect("server");
    let client = client(Some("127.0.0.2/32"));
    let capped = |path: &str| {
        let mut request = get(&allowed.url(path));
        request.max_response_bytes = Some(1000);
        request
    };
    let exact = client.fetch(capped("/big/1000")).await.expect("at the cap");
    assert_eq!(exact.body.len(), 1000);
    for path in ["/big/1001", "/chunked/100000"] {
        let err = client.fetch(capped(path)).await.expect_err(path);
        assert_eq!(err, HttpError::ResponseTooLarge(1000), "{path}");
    }
    let mut big_request = get(&allowed.url("/echo"));
    big_request.body = Some(vec![b'x'; 4 * 1024 * 1024 + 1].into());
    let err = client
        .fetch(big_request)
        .await
        .expect_err("request too large");
    assert_eq!(err, HttpError::RequestTooLarge(4 * 1024 * 1024));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_and_invalid_headers_are_refused() {
    let client = client(Some("127.0.0.2/32"));
    for (name, value) in [
        ("host", "example.com"),
        ("User-Agent", "curl"),
        ("content-length", "1"),
        ("bad name", "x"),
        ("x-ok", "line\nbreak"),
    ] {
        let mut request = get("http://127.0.0.2:8080/");
        request.headers = vec![(name.into(), value.into())];
        let err = client.fetch(request).await.expect_err(name);
        assert!(matches!(err, HttpError::InvalidRequest(_)), "{name}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_times_out_and_a_stopped_run_stops_waiting() {
    let allowed = TestServer::start(ip("127.0.0.2")).await.expect("server");
    let client = client(Some("127.0.0.2/32"));
    let mut request = get(&allowed.url("/hang"));
    request.timeout = Some(Duration::from_millis(200));
    assert_eq!(
        client
            .fetch(request.clone())
            .await
            .expect_err("per-request"),
        HttpError::Timeout
    );

    // From a thread outside the runtime, as an executor slot calls it.
    request.timeout = None;
    let blocking = client.clone();
    let slow = request.clone();
    let budget = tokio::task::spawn_blocking(move || {
        blocking.fetch_blocking(slow, Duration::from_millis(200), &|| false)
    })
    .await
    .expect("join");
    assert_eq!(budget.expect_err("budget"), HttpError::Timeout);

    let stopped = tokio::task::spawn_blocking(move || {
        client.fetch_blocking(request, Duration::from_secs(30), &|| true)
    });
    let stopped = tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("returns promptly")
        .expect("join");
    assert_eq!(stopped.expect_err("stopped"), HttpError::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_answers_are_dropped_and_the_allowed_ones_kept() {
    let allowed = TestServer::start(ip("127.0.0.2")).await.expect("server");
    let policy = HttpPolicy::from_settings(None, Some("127.0.0.2/32")).expect("policy");
    let resolver = StaticResolver::new().with("both.test", &[ip("10.0.0.1"), ip("127.0.0.2")]);
    let client = HttpClient::with_resolver(
        policy,
        tokio::runtime::Handle::current(),
        Arc::new(resolver),
    )
    .expect("client");
    let port = allowed.addr.port();
    let answer = client
        .fetch(get(&format!("http://both.test:{port}/text")))
        .await
        .expect("reached the allowed address");
    assert_eq!(&answer.body[..], b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_private_lifts_the_deny_list_for_development() {
    let local = TestServer::start(ip("127.0.0.1")).await.expect("server");
    let policy = HttpPolicy::from_settings(Some("1"), None).expect("policy");
    let client = HttpClient::with_resolver(
        policy,
        tokio::runtime::Handle::current(),
        Arc::new(resolver()),
    )
    .expect("client");
    let port = local.addr.port();
    for url in [
        local.url("/text"),
        format!("http://2130706433:{port}/text"),
        format!("http://rebind.test:{port}/text"),
    ] {
        let answer = client.fetch(get(&url)).await.expect(&url);
        assert_eq!(answer.status, 200, "{url}");
    }
    // Schemes and ports are still checked.
    let err = client
        .fetch(get("http://127.0.0.1:22/"))
        .await
        .expect_err("port");
    assert_eq!(err, HttpError::Refused(Category::Port));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_do_not_follow_a_redirect_to_another_origin() {
    let allowed = TestServer::start(ip("127.0.0.2")).await.expect("server");
    let client = client(Some("127.0.0.2/32"));
    let port = allowed.addr.port();
    let with_credentials = |to: &str| {
        let mut request = get(&allowed.url(&format!("/redirect/307?to={}", encode(to))));
        request.headers = vec![
            ("authorization".into(), "Bearer secret".into()),
            ("x-kept".into(), "yes".into()),
        ];
        request
    };
    let same = client
        .fetch(with_credentials(&allowed.url("/echo")))
        .await
        .expect("same origin");
    let same = String::from_utf8(same.body.to_vec()).expect("utf-8");
    assert!(
        same.contains(r#""authorization":"Bearer secret""#),
        "{same}"
    );

    // `allowed.test` resolves to the same server, but it is another origin.
    let other = client
        .fetch(with_credentials(&format!(
            "http://allowed.test:{port}/echo"
        )))
        .await
        .expect("other origin");
    let other = String::from_utf8(other.body.to_vec()).expect("utf-8");
    assert!(!other.contains("authorization"), "{other}");
    assert!(other.contains(r#""x-kept":"yes""#), "{other}");
}
