//! The input rules, case by case and against reference predicates.

use proptest::prelude::*;

use super::*;

fn slug_reason(slug: &str) -> String {
    match validate_slug(slug) {
        Ok(()) => panic!("{slug:?} should be refused"),
        Err(e) => {
            assert_eq!(e.field, "slug");
            e.reason
        }
    }
}

fn domain_reason(domain: &str) -> String {
    match normalize_domain(domain) {
        Ok(d) => panic!("{domain:?} should be refused, got {d:?}"),
        Err(e) => {
            assert_eq!(e.field, "domain");
            e.reason
        }
    }
}

// --- slugs ---

#[test]
fn dns_label_slugs_are_accepted() {
    for slug in ["a", "demo", "my-app-2", "0", "9lives", &"x".repeat(63)] {
        assert_eq!(validate_slug(slug), Ok(()), "{slug}");
    }
}

#[test]
fn slug_length_is_1_to_63() {
    assert!(slug_reason("").contains("empty"));
    assert!(slug_reason(&"x".repeat(64)).contains("63"));
}

#[test]
fn slug_refuses_upper_case_and_other_characters() {
    for slug in ["Demo", "my_app", "a.b", "a b", "é", "a/b"] {
        assert!(slug_reason(slug).contains("lowercase"), "{slug}");
    }
}

#[test]
fn slug_refuses_leading_or_trailing_hyphen() {
    for slug in ["-a", "a-", "-"] {
        assert!(slug_reason(slug).contains("'-'"), "{slug}");
    }
}

#[test]
fn platform_paths_are_reserved_slugs() {
    for slug in [
        "api",
        "hooks",
        "healthz",
        "readyz",
        "version",
        "metrics",
        "admin",
        "dashboard",
    ] {
        assert!(slug_reason(slug).contains("reserved"), "{slug}");
    }
    assert_eq!(validate_slug("apis"), Ok(()));
}

#[test]
fn reserved_slugs_are_sorted_valid_labels() {
    assert!(
        RESERVED_SLUGS.windows(2).all(|w| w[0] < w[1]),
        "binary_search needs order"
    );
    for slug in RESERVED_SLUGS {
        assert!(slug.bytes().all(|b| b.is_ascii_lowercase()), "{slug}");
    }
}

#[test]
fn validation_error_displays_field_and_reason() {
    let e = ValidationError::new("slug", "must not be empty");
    assert_eq!(e.to_string(), "slug: must not be empty");
}

// --- domains ---

#[test]
fn domain_is_lower_cased_and_loses_one_trailing_dot() {
    assert_eq!(
        normalize_domain("Shop.Example.COM"),
        Ok("shop.example.com".into())
    );
    assert_eq!(normalize_domain("example.com."), Ok("example.com".into()));
    assert!(domain_reason("example.com..").contains("empty label"));
}

#[test]
fn domain_needs_two_labels() {
    assert!(domain_reason("example").contains("two labels"));
    assert!(domain_reason("").contains("empty"));
    assert!(domain_reason(".").contains("empty"));
}

#[test]
fn domain_refuses_ip_literals_ports_and_urls() {
    assert!(domain_reason("127.0.0.1").contains("IP address"));
    assert!(domain_reason("[::1]").contains("IP address"));
    assert!(domain_reason("example.com:8080").contains("port"));
    assert!(domain_reason("https://example.com").contains("URL"));
    assert!(domain_reason("example.com/x").contains("URL"));
    assert!(domain_reason("1.2.3").contains("all digits"));
}

#[test]
fn domain_refuses_localhost() {
    for d in ["localhost", "localhost.", "LOCALHOST", "app.localhost"] {
        let reason = domain_reason(d);
        assert!(
            reason.contains("localhost") || reason.contains("two labels"),
            "{d}: {reason}"
        );
    }
    assert_eq!(
        normalize_domain("localhost.example.com"),
        Ok("localhost.example.com".into())
    );
}

#[test]
fn domain_labels_follow_dns_rules() {
    assert!(domain_reason("-a.com").contains("'-'"));
    assert!(domain_reason("a-.com").contains("'-'"));
    assert!(domain_reason("a_b.com").contains("letters, digits"));
    assert!(domain_reason("*.example.com").contains("letters, digits"));
    assert!(domain_reason(&format!("{}.com", "a".repeat(64))).contains("63"));
    assert!(domain_reason("bücher.de").contains("xn--"));
    assert_eq!(
        normalize_domain("xn--bcher-kva.de"),
        Ok("xn--bcher-kva.de".into())
    );
    assert_eq!(normalize_domain("3com.com"), Ok("3com.com".into()));
}

#[test]
fn domain_is_at_most_253_characters() {
    let label = "a".repeat(63);
    let name = format!("{label}.{label}.{label}.{}", "b".repeat(61)); // 253
    assert_eq!(normalize_domain(&name), Ok(name.clone()));
    assert_eq!(normalize_domain(&format!("{name}.")), Ok(name.clone()));
    assert!(domain_reason(&format!("x{name}")).contains("253"));
}

// --- script names ---

#[test]
fn script_names_are_identifier_like() {
    for name in ["utils", "_private", "api-v2", "A1_b-c", &"s".repeat(64)] {
        assert_eq!(validate_script_name(name), Ok(()), "{name}");
    }
    for name in ["", "1st", "-x", "a.b", "a b", "ü", &"s".repeat(65)] {
        assert!(validate_script_name(name).is_err(), "{name}");
    }
}

// --- app names ---

#[test]
fn app_names_are_1_to_200_characters_without_control_characters() {
    assert_eq!(validate_app_name("My Shop — Ünïcode ✓"), Ok(()));
    assert_eq!(
        validate_app_name(&"é".repeat(200)),
        Ok(()),
        "characters, not bytes"
    );
    assert!(validate_app_name(&"a".repeat(201)).is_err());
    assert!(validate_app_name("").is_err());
    assert!(validate_app_name("   ").is_err());
    assert!(validate_app_name("a\nb").is_err());
    assert!(validate_app_name("a\u{7f}").is_err());
}

// --- properties ---

/// The slug rule restated without the validator's structure.
fn reference_slug(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    (1..=63).contains(&chars.len())
        && chars
            .iter()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
        && chars.first() != Some(&'-')
        && chars.last() != Some(&'-')
        && !RESERVED_SLUGS.contains(&s)
}

fn slug_candidates() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,70}",
        "[a-z]{1,3}-?[a-z]{0,3}",
        "[a-zA-Z0-9_.-]{0,10}",
        "\\PC{0,10}",
        proptest::sample::select(RESERVED_SLUGS).prop_map(str::to_owned),
    ]
}

fn domain_candidates() -> impl Strategy<Value = String> {
    prop_oneof![
        "([a-zA-Z0-9-]{0,8}\\.){0,4}[a-zA-Z0-9-]{0,8}\\.?",
        "([a-z0-9]{1,63}\\.){1,5}[a-z]{2,6}",
        "[0-9.:\\[\\]]{0,16}",
        "\\PC{0,30}",
    ]
}

proptest! {
    #[test]
    fn validate_slug_accepts_exactly_the_reference(slug in slug_candidates()) {
        prop_assert_eq!(validate_slug(&slug).is_ok(), reference_slug(&slug), "{:?}", slug);
    }

    #[test]
    fn normalize_domain_is_idempotent(domain in domain_candidates()) {
        if let Ok(normal) = normalize_domain(&domain) {
            prop_assert_eq!(normalize_domain(&normal), Ok(normal.clone()));
            prop_assert_eq!(&normal, &domain.trim_end_matches('.').to_ascii_lowercase());
        }
    }

    #[test]
    fn normalized_domains_are_lower_case_dns_names(domain in domain_candidates()) {
        if let Ok(normal) = normalize_domain(&domain) {
            prop_assert!(normal.len() <= 253);
            let labels: Vec<&str> = normal.split('.').collect();
            prop_assert!(labels.len() >= 2);
            for label in &labels {
                prop_assert!((1..=63).contains(&label.len()));
                prop_assert!(label.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-')));
                prop_assert!(!label.starts_with('-') && !label.ends_with('-'));
            }
        }
    }

    #[test]
    fn well_formed_host_names_are_accepted(labels in proptest::collection::vec("[a-zA-Z]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?", 2..5)) {
        let name = labels.join(".");
        prop_assume!(!name.to_ascii_lowercase().ends_with("localhost"));
        prop_assert_eq!(normalize_domain(&name), Ok(name.to_ascii_lowercase()));
    }

    #[test]
    fn script_names_accept_exactly_the_reference(name in "[a-zA-Z0-9_-]{0,70}|\\PC{0,8}") {
        let reference = (1..=64).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        prop_assert_eq!(validate_script_name(&name).is_ok(), reference);
    }
}
