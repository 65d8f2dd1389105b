//! Route patterns and the route table, rule by rule.

use super::*;

fn pattern(s: &str) -> RoutePattern {
    RoutePattern::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn params(p: &str, path: &str) -> Option<Vec<(String, String)>> {
    pattern(p).matches(path)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_error(s: &str) -> String {
    match RoutePattern::parse(s) {
        Ok(p) => panic!("{s:?} should be refused, parsed as {:?}", p.as_str()),
        Err(e) => e.0,
    }
}

fn entry(id: &str, method: &str, path: &str, seq: u64) -> RouteEntry<String> {
    RouteEntry {
        id: id.to_owned(),
        method: parse_method(method).unwrap_or_else(|e| panic!("{e}")),
        pattern: pattern(path),
        target: format!("script-{id}"),
        seq,
    }
}

fn table(routes: &[(&str, &str, &str)]) -> RouteTable<String> {
    let entries = routes
        .iter()
        .zip(0..)
        .map(|((id, method, path), seq)| entry(id, method, path, seq))
        .collect();
    RouteTable::new(entries)
}

fn hit(table: &RouteTable<String>, method: &str, path: &str) -> Option<String> {
    table.find(method, path).map(|(e, _)| e.id.clone())
}

// --- methods ---

#[test]
fn methods_are_case_insensitive_and_stored_upper_case() {
    assert_eq!(parse_method("get"), Ok(MethodMatch::Only("GET".into())));
    assert_eq!(
        parse_method("Options"),
        Ok(MethodMatch::Only("OPTIONS".into()))
    );
    assert_eq!(parse_method("*"), Ok(MethodMatch::Any));
}

#[test]
fn unknown_method_is_refused_by_name() {
    let error = parse_method("FETCH").unwrap_err().0;
    assert!(error.contains("\"FETCH\""), "{error}");
    assert!(parse_method("").is_err());
    assert!(parse_method(" GET").is_err());
    assert!(parse_method("**").is_err());
}

// --- parsing ---

#[test]
fn trailing_slash_is_ignored_except_for_the_root() {
    assert_eq!(pattern("/users/").as_str(), "/users");
    assert_eq!(pattern("/users/"), pattern("/users"));
    assert_eq!(pattern("/").as_str(), "/");
}

#[test]
fn pattern_must_start_with_a_slash() {
    assert!(parse_error("users").contains("start with \"/\""));
    assert!(parse_error("").contains("empty"));
}

#[test]
fn empty_segments_are_refused() {
    for p in ["//", "/a//b", "/a//", "//a"] {
        assert!(parse_error(p).contains("empty segment"), "{p}");
    }
}

#[test]
fn param_names_follow_identifier_rules() {
    assert!(parse_error("/u/:").contains("needs a parameter name"));
    assert!(parse_error("/u/*").contains("needs a parameter name"));
    assert!(parse_error("/u/:1d").contains("\":1d\""));
    assert!(parse_error("/u/:a-b").contains("invalid parameter name"));
    pattern("/u/:_id9/:Name");
}

#[test]
fn param_names_are_unique_within_a_pattern() {
    assert!(parse_error("/:id/x/:id").contains("\"id\" is used twice"));
    assert!(parse_error("/:id/*id").contains("used twice"));
}

#[test]
fn star_rest_must_be_the_last_segment() {
    assert!(parse_error("/files/*rest/x").contains("must be the last segment"));
}

#[test]
fn static_segments_refuse_non_path_characters() {
    assert!(parse_error("/a b").contains("whitespace"));
    assert!(parse_error("/a\tb").contains("whitespace"));
    assert!(parse_error("/search?q=1").contains("'?'"));
    assert!(parse_error("/page#top").contains("'#'"));
    assert!(parse_error("/users/{id}").contains(":name"));
    assert!(parse_error("/a\\b").contains("'\\'"));
    assert!(parse_error("/100%").contains("percent-encoding"));
    assert!(parse_error("/%zz").contains("percent-encoding"));
    assert!(parse_error("/..").contains("dot segment"));
    assert!(parse_error("/a/%2e").contains("dot segment"));
}

#[test]
fn static_segments_accept_rfc3986_path_characters() {
    for p in [
        "/v1:batch",
        "/a*b",
        "/~me/@x/$&'()+,;=!",
        "/a%20b",
        "/café",
        "/.well-known",
    ] {
        assert_eq!(pattern(p).as_str(), p);
    }
}

#[test]
fn length_and_segment_limits_are_enforced() {
    let long = format!("/{}", "a".repeat(MAX_PATTERN_LEN));
    assert!(parse_error(&long).contains("bytes long"));
    pattern(&"/a".repeat(MAX_SEGMENTS));
    assert!(parse_error(&"/a".repeat(MAX_SEGMENTS + 1)).contains("more than 32 segments"));
}

#[test]
fn long_input_is_cut_short_in_the_message() {
    let error = parse_error(&"x".repeat(1000));
    assert!(error.len() < 200, "{error}");
}

// --- matching ---

#[test]
fn root_matches_empty_and_slash() {
    assert_eq!(params("/", ""), Some(vec![]));
    assert_eq!(params("/", "/"), Some(vec![]));
    assert_eq!(params("/", "/x"), None);
}

#[test]
fn param_captures_one_non_empty_segment() {
    assert_eq!(
        params("/users/:id", "/users/42"),
        Some(pairs(&[("id", "42")]))
    );
    assert_eq!(
        params("/users/:id", "/users/42/"),
        Some(pairs(&[("id", "42")]))
    );
    assert_eq!(params("/users/:id", "/users/"), None);
    assert_eq!(params("/users/:id", "/users"), None);
    assert_eq!(params("/users/:id", "/users/42/posts"), None);
}

#[test]
fn star_rest_captures_slashes() {
    assert_eq!(
        params("/files/*rest", "/files/a/b/c.txt"),
        Some(pairs(&[("rest", "a/b/c.txt")]))
    );
}

#[test]
fn star_rest_may_be_empty() {
    assert_eq!(
        params("/files/*rest", "/files"),
        Some(pairs(&[("rest", "")]))
    );
    assert_eq!(
        params("/files/*rest", "/files/"),
        Some(pairs(&[("rest", "")]))
    );
    assert_eq!(params("/*all", "/"), Some(pairs(&[("all", "")])));
    assert_eq!(params("/files/*rest", "/filesystem"), None);
}

#[test]
fn params_are_percent_decoded() {
    assert_eq!(
        params("/u/:name", "/u/J%C3%BCrgen%20X"),
        Some(pairs(&[("name", "Jürgen X")]))
    );
    assert_eq!(
        params("/f/*p", "/f/a%2Fb/c"),
        Some(pairs(&[("p", "a/b/c")]))
    );
}

#[test]
fn invalid_encoding_in_a_request_is_no_match() {
    assert_eq!(params("/u/:name", "/u/%zz"), None);
    assert_eq!(params("/u/:name", "/u/%FF"), None, "not UTF-8");
    assert_eq!(params("/f/*p", "/f/x/%4"), None);
    assert_eq!(params("/caf%C3%A9", "/caf%C3"), None);
}

#[test]
fn static_segments_compare_decoded() {
    for request in ["/caf%C3%A9", "/caf%c3%a9", "/café"] {
        assert_eq!(params("/café", request), Some(vec![]), "{request}");
        assert_eq!(params("/caf%c3%a9", request), Some(vec![]), "{request}");
    }
    assert_eq!(
        params("/a%2Fb", "/a/b"),
        None,
        "an encoded slash stays inside its segment"
    );
    assert_eq!(params("/a%2Fb", "/a%2fb"), Some(vec![]));
}

#[test]
fn matching_is_case_sensitive() {
    assert_eq!(params("/Users", "/users"), None);
}

#[test]
fn params_come_back_in_pattern_order() {
    assert_eq!(
        params("/:a/x/:b/*c", "/1/x/2/3/4"),
        Some(pairs(&[("a", "1"), ("b", "2"), ("c", "3/4")]))
    );
}

// --- shape and duplicates ---

#[test]
fn duplicate_shape_with_renamed_param_is_a_duplicate() {
    assert_eq!(pattern("/u/:id").shape(), pattern("/u/:name/").shape());
    let t = table(&[("r1", "GET", "/u/:id")]);
    assert!(t.has_duplicate(&MethodMatch::Only("GET".into()), &pattern("/u/:name")));
}

#[test]
fn differently_encoded_static_segments_are_the_same_shape() {
    assert_eq!(
        pattern("/%7e/caf%C3%A9").shape(),
        pattern("/~/café").shape()
    );
    assert_ne!(pattern("/%3Aid").shape(), pattern("/:id").shape());
    assert_ne!(pattern("/%2A").shape(), pattern("/*x").shape());
    assert_ne!(pattern("/a/:x").shape(), pattern("/a/*x").shape());
}

#[test]
fn star_method_duplicates_only_star() {
    let t = table(&[("r1", "*", "/x"), ("r2", "POST", "/y")]);
    assert!(t.has_duplicate(&MethodMatch::Any, &pattern("/x")));
    assert!(!t.has_duplicate(&MethodMatch::Only("GET".into()), &pattern("/x")));
    assert!(!t.has_duplicate(&MethodMatch::Any, &pattern("/y")));
    assert!(!t.has_duplicate(&MethodMatch::Only("POST".into()), &pattern("/y/z")));
}

// --- table order ---

#[test]
fn static_segment_beats_param() {
    let t = table(&[("param", "GET", "/users/:id"), ("me", "GET", "/users/me")]);
    assert_eq!(hit(&t, "GET", "/users/me").as_deref(), Some("me"));
    assert_eq!(hit(&t, "GET", "/users/42").as_deref(), Some("param"));
}

#[test]
fn param_beats_star_rest() {
    let t = table(&[("rest", "GET", "/a/*r"), ("param", "GET", "/a/:x")]);
    assert_eq!(hit(&t, "GET", "/a/1").as_deref(), Some("param"));
    assert_eq!(hit(&t, "GET", "/a/1/2").as_deref(), Some("rest"));
}

#[test]
fn earlier_segments_decide_before_later_ones() {
    let t = table(&[("late", "GET", "/:a/b"), ("early", "GET", "/a/:b")]);
    assert_eq!(hit(&t, "GET", "/a/b").as_deref(), Some("early"));
}

#[test]
fn exact_route_beats_catch_all_that_would_capture_nothing() {
    let t = table(&[("all", "GET", "/files/*rest"), ("index", "GET", "/files")]);
    assert_eq!(hit(&t, "GET", "/files").as_deref(), Some("index"));
    assert_eq!(hit(&t, "GET", "/files/x").as_deref(), Some("all"));
}

#[test]
fn more_segments_come_first_in_entries() {
    let t = table(&[("short", "GET", "/a"), ("long", "GET", "/a/:b")]);
    let ids: Vec<&str> = t.entries().iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["long", "short"]);
}

#[test]
fn method_specific_route_beats_star() {
    let t = table(&[("any", "*", "/x"), ("post", "POST", "/x")]);
    assert_eq!(hit(&t, "POST", "/x").as_deref(), Some("post"));
    assert_eq!(hit(&t, "GET", "/x").as_deref(), Some("any"));
}

#[test]
fn specificity_beats_method() {
    let t = table(&[("get", "GET", "/u/:id"), ("any", "*", "/u/me")]);
    assert_eq!(hit(&t, "GET", "/u/me").as_deref(), Some("any"));
}

#[test]
fn equally_specific_routes_go_by_age() {
    let t = RouteTable::new(vec![
        entry("new", "GET", "/u/:b", 9),
        entry("old", "GET", "/u/:a", 3),
    ]);
    assert_eq!(hit(&t, "GET", "/u/1").as_deref(), Some("old"));
    let (_, params) = t.find("GET", "/u/1").unwrap_or_else(|| panic!("no match"));
    assert_eq!(params, pairs(&[("a", "1")]));
}

#[test]
fn method_must_match() {
    let t = table(&[("get", "GET", "/x")]);
    assert_eq!(hit(&t, "POST", "/x"), None);
    assert_eq!(hit(&t, "get", "/x").as_deref(), Some("get"));
    assert_eq!(hit(&t, "PROPFIND", "/x"), None);
}

#[test]
fn head_falls_back_to_get() {
    let t = table(&[("get", "GET", "/x"), ("post", "POST", "/y")]);
    assert_eq!(hit(&t, "HEAD", "/x").as_deref(), Some("get"));
    assert_eq!(hit(&t, "HEAD", "/y"), None);
}

#[test]
fn head_or_star_route_wins_over_the_get_fallback() {
    let t = table(&[
        ("get", "GET", "/u/me"),
        ("head", "HEAD", "/u/:id"),
        ("any", "*", "/v"),
    ]);
    assert_eq!(hit(&t, "HEAD", "/u/me").as_deref(), Some("head"));
    let t = table(&[("get", "GET", "/v"), ("any", "*", "/v/*r")]);
    assert_eq!(hit(&t, "HEAD", "/v").as_deref(), Some("any"));
}

#[test]
fn empty_table_matches_nothing() {
    let t: RouteTable<String> = RouteTable::new(vec![]);
    assert!(t.find("GET", "/").is_none());
}

// --- app prefix ---

#[test]
fn split_app_path_takes_the_first_segment() {
    assert_eq!(
        split_app_path("/shop/users/42"),
        Some(("shop", "/users/42"))
    );
    assert_eq!(split_app_path("/shop/"), Some(("shop", "/")));
    assert_eq!(split_app_path("/shop"), Some(("shop", "/")));
    assert_eq!(split_app_path("/shop//x"), Some(("shop", "//x")));
}

#[test]
fn split_app_path_without_a_slug_is_none() {
    for path in ["", "/", "//x", "shop/x"] {
        assert_eq!(split_app_path(path), None, "{path:?}");
    }
}
