//! Property tests: patterns built from random valid parts, and the table checked
//! against a brute-force reference of the documented match order.

use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;

/// A pattern segment as the test builds it, independent of the parser's types.
#[derive(Clone, Debug)]
enum Part {
    Static(String),
    Param(String),
    Rest(String),
}

fn encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Encodes everything but unreserved characters, as a client would.
fn encode_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn static_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~!$&'()*+,;=:@-]{1,10}|[a-z]{1,4}é"
        .prop_filter("not a capture nor a dot segment", |s| {
            !s.starts_with([':', '*']) && s != "." && s != ".."
        })
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,8}"
}

/// One segment, plus the request text for it and the expected capture value.
fn part_with_request() -> impl Strategy<Value = (Part, String, Option<String>)> {
    prop_oneof![
        (static_text(), any::<bool>()).prop_map(|(text, encode)| {
            let request = if encode {
                encode_all(&text)
            } else {
                text.clone()
            };
            (Part::Static(text), request, None)
        }),
        (name(), "\\PC{1,8}")
            .prop_map(|(name, value)| { (Part::Param(name), encode_value(&value), Some(value)) }),
    ]
}

fn rest_with_request() -> impl Strategy<Value = Option<(Part, String, String)>> {
    proptest::option::of(
        (name(), proptest::collection::vec("\\PC{1,6}", 0..4)).prop_map(|(name, pieces)| {
            let request = pieces
                .iter()
                .map(|p| encode_value(p))
                .collect::<Vec<_>>()
                .join("/");
            (Part::Rest(name), request, pieces.join("/"))
        }),
    )
}

fn pattern_text(parts: &[Part]) -> String {
    if parts.is_empty() {
        return "/".into();
    }
    parts
        .iter()
        .map(|p| match p {
            Part::Static(s) => format!("/{s}"),
            Part::Param(n) => format!("/:{n}"),
            Part::Rest(n) => format!("/*{n}"),
        })
        .collect()
}

proptest! {
    #[test]
    fn generated_pattern_matches_its_generated_path(
        mut segments in proptest::collection::vec(part_with_request(), 0..10),
        rest in rest_with_request(),
        pattern_slash in any::<bool>(),
        request_slash in any::<bool>(),
    ) {
        // Names are made unique by position; the random stem still varies the text.
        let mut parts = Vec::new();
        let mut requests = Vec::new();
        let mut expected = Vec::new();
        for (i, (part, request, value)) in segments.drain(..).enumerate() {
            let part = match part {
                Part::Param(n) => Part::Param(format!("{n}_{i}")),
                other => other,
            };
            if let (Part::Param(n), Some(v)) = (&part, value) {
                expected.push((n.clone(), v));
            }
            parts.push(part);
            requests.push(request);
        }
        let mut path: String = requests.iter().map(|r| format!("/{r}")).collect();
        if let Some((Part::Rest(n), request, value)) = rest {
            let n = format!("{n}_rest");
            expected.push((n.clone(), value));
            parts.push(Part::Rest(n));
            path.push('/');
            path.push_str(&request);
        }
        let mut text = pattern_text(&parts);
        if pattern_slash && text != "/" {
            text.push('/');
        }
        if request_slash && !path.ends_with('/') {
            path.push('/');
        }
        let parsed = RoutePattern::parse(&text);
        prop_assert!(parsed.is_ok(), "{text:?}: {parsed:?}");
        let Ok(pattern) = parsed else { unreachable!() };
        prop_assert_eq!(pattern.matches(&path), Some(expected), "{} vs {}", text, path);
        prop_assert_eq!(RoutePattern::parse(pattern.as_str()), Ok(pattern.clone()));

        // Renaming every capture keeps the shape.
        let renamed: Vec<Part> = parts.iter().map(|p| match p {
            Part::Param(n) => Part::Param(format!("x{n}")),
            Part::Rest(n) => Part::Rest(format!("x{n}")),
            s => s.clone(),
        }).collect();
        let renamed = RoutePattern::parse(&pattern_text(&renamed));
        prop_assert_eq!(renamed.map(|p| p.shape()), Ok(pattern.shape()));
    }

    #[test]
    fn parse_and_match_never_panic(pattern in "\\PC{0,40}|(/[:*a-z%0-9]{0,4}){0,6}", path in "\\PC{0,40}") {
        if let Ok(p) = RoutePattern::parse(&pattern) {
            let _ = p.matches(&path);
            prop_assert_eq!(RoutePattern::parse(p.as_str()), Ok(p.clone()));
        }
    }

    #[test]
    fn table_find_agrees_with_brute_force(
        routes in proptest::collection::vec((method(), small_pattern()), 0..12),
        request_method in prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("PUT")],
        request in proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 0..5),
    ) {
        let path: String = request.iter().map(|s| format!("/{s}")).collect();
        let specs: Vec<(usize, &str, &Vec<Part>)> = routes
            .iter()
            .enumerate()
            .map(|(i, (m, parts))| (i, *m, parts))
            .collect();
        let entries = specs.iter().map(|(i, m, parts)| RouteEntry {
            id: format!("r{i:02}"),
            method: parse_method(m).unwrap_or(MethodMatch::Any),
            pattern: RoutePattern::parse(&pattern_text(parts)).unwrap_or_else(|e| panic!("{e}")),
            target: *i,
            // Creation order deliberately differs from list order.
            seq: (specs.len() - i) as u64,
        }).collect();
        let table = RouteTable::new(entries);

        let reference = |accept: &dyn Fn(&str) -> bool| {
            specs.iter()
                .filter(|(_, m, parts)| accept(m) && reference_matches(parts, &request))
                .min_by(|a, b| reference_order(a, b, specs.len()))
                .map(|(i, _, _)| *i)
        };
        let mut want = reference(&|m| m == "*" || m == request_method);
        if want.is_none() && request_method == "HEAD" {
            want = reference(&|m| m == "GET");
        }
        prop_assert_eq!(table.find(request_method, &path).map(|(e, _)| e.target), want);

        // entries() is sorted by the same rule.
        for pair in table.entries().windows(2) {
            let (a, b) = (&specs[pair[0].target], &specs[pair[1].target]);
            prop_assert_ne!(reference_order(a, b, specs.len()), Ordering::Greater);
        }
    }
}

fn method() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("*")]
}

/// Patterns over a tiny alphabet so that routes overlap often.
fn small_pattern() -> impl Strategy<Value = Vec<Part>> {
    let segment = prop_oneof![
        Just(Part::Static("a".into())),
        Just(Part::Static("b".into())),
        Just(Part::Param("p".into())),
    ];
    (proptest::collection::vec(segment, 0..4), any::<bool>()).prop_map(|(mut parts, rest)| {
        for (i, part) in parts.iter_mut().enumerate() {
            if let Part::Param(n) = part {
                *n = format!("p{i}");
            }
        }
        if rest {
            parts.push(Part::Rest("r".into()));
        }
        parts
    })
}

fn reference_matches(parts: &[Part], request: &[&str]) -> bool {
    match parts.split_first() {
        None => request.is_empty(),
        Some((Part::Rest(_), _)) => true,
        Some((Part::Static(s), more)) => {
            request.first() == Some(&s.as_str()) && reference_matches(more, &request[1..])
        }
        Some((Part::Param(_), more)) => {
            !request.is_empty() && reference_matches(more, &request[1..])
        }
    }
}

/// The rule as the module doc states it, written independently of `Rank`.
fn reference_order(
    a: &(usize, &str, &Vec<Part>),
    b: &(usize, &str, &Vec<Part>),
    n: usize,
) -> Ordering {
    fn kind(p: &Part) -> u8 {
        match p {
            Part::Static(_) => 0,
            Part::Param(_) => 1,
            Part::Rest(_) => 2,
        }
    }
    let (pa, pb) = (a.2, b.2);
    for (x, y) in pa.iter().zip(pb.iter()) {
        match kind(x).cmp(&kind(y)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    let by_length = match pa.len().cmp(&pb.len()) {
        Ordering::Equal => Ordering::Equal,
        // The shorter one first only when the longer continues with `*rest`.
        Ordering::Less if matches!(pb[pa.len()], Part::Rest(_)) => Ordering::Less,
        Ordering::Greater if matches!(pa[pb.len()], Part::Rest(_)) => Ordering::Greater,
        other => other.reverse(),
    };
    let method = |m: &str| u8::from(m == "*");
    // seq = n - index, so older = larger index.
    by_length
        .then(method(a.1).cmp(&method(b.1)))
        .then((n - a.0).cmp(&(n - b.0)))
}
