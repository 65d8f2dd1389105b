//! Tests of the result mapping, on Rhai values built directly.

use proptest::prelude::*;
use rhai::{Array, Dynamic, Map};

use super::*;

fn map(pairs: &[(&str, Dynamic)]) -> Dynamic {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect::<Map>()
        .into()
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn unit_is_204_without_body_or_headers() {
    let r = from_value(&Dynamic::UNIT).unwrap();
    assert_eq!((r.status, r.headers.len(), r.body.len()), (204, 0, 0));
}

#[test]
fn map_and_array_are_200_json() {
    let r = from_value(&map(&[("a", Dynamic::from_int(1))])).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "content-type"), Some(JSON));
    assert_eq!(r.body, r#"{"a":1}"#);
    let r = from_value(&Dynamic::from_array(vec![Dynamic::TRUE, Dynamic::UNIT])).unwrap();
    assert_eq!(r.body, "[true,null]");
}

#[test]
fn float_and_bool_are_text_of_their_string_form() {
    let r = from_value(&Dynamic::from_float(1.5)).unwrap();
    assert_eq!((r.status, r.body.as_ref()), (200, b"1.5".as_ref()));
    assert_eq!(header(&r, "content-type"), Some(TEXT));
    assert_eq!(from_value(&Dynamic::FALSE).unwrap().body, "false");
}

#[test]
fn blob_is_sent_as_octets() {
    let r = from_value(&Dynamic::from_blob(vec![0, 255])).unwrap();
    assert_eq!(r.body.as_ref(), &[0, 255]);
    assert_eq!(header(&r, "content-type"), Some(OCTETS));
}

#[test]
fn status_map_string_body_is_text_unless_headers_say_otherwise() {
    let r = from_value(&map(&[
        ("status", Dynamic::from_int(201)),
        ("body", "<p>hi</p>".into()),
        (
            "headers",
            map(&[
                ("Content-Type", "text/html".into()),
                ("X-N", Dynamic::from_int(3)),
            ]),
        ),
    ]))
    .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.body, "<p>hi</p>");
    assert_eq!(header(&r, "content-type"), Some("text/html"));
    assert_eq!(header(&r, "x-n"), Some("3"));
    assert_eq!(r.headers.len(), 2);
}

#[test]
fn status_map_with_map_body_is_json_and_without_body_is_empty() {
    let r = from_value(&map(&[
        ("status", Dynamic::from_int(404)),
        ("body", map(&[("error", "nope".into())])),
    ]))
    .unwrap();
    assert_eq!((r.status, header(&r, "content-type")), (404, Some(JSON)));
    assert_eq!(r.body, r#"{"error":"nope"}"#);

    for body in [None, Some(Dynamic::UNIT)] {
        let mut pairs = vec![("status", Dynamic::from_int(302))];
        pairs.extend(body.map(|b| ("body", b)));
        pairs.push(("headers", map(&[("location", "/x".into())])));
        let r = from_value(&map(&pairs)).unwrap();
        assert_eq!((r.status, r.body.len()), (302, 0));
        assert_eq!(r.headers, vec![("location".to_owned(), "/x".to_owned())]);
    }
}

#[test]
fn invalid_statuses_are_errors_naming_the_status() {
    for bad in [
        Dynamic::from_int(99),
        Dynamic::from_int(600),
        Dynamic::from_int(-1),
        Dynamic::from("ok"),
        Dynamic::from_float(200.0),
        Dynamic::UNIT,
    ] {
        let err = from_value(&map(&[("status", bad.clone())])).unwrap_err();
        assert!(
            err.contains("status must be an integer from 100 to 599"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn invalid_headers_are_errors_naming_the_header() {
    let cases = [
        (
            map(&[("bad name", "x".into())]),
            "not a valid HTTP header name",
        ),
        (map(&[("", "x".into())]), "not a valid HTTP header name"),
        (map(&[("x-a", "a\r\nb".into())]), "`x-a` has a character"),
        (map(&[("x-a", "é".into())]), "`x-a` has a character"),
        (
            map(&[("x-a", Dynamic::from_array(Array::new()))]),
            "`x-a` must be a string",
        ),
        (
            map(&[("Content-Length", "3".into())]),
            "`content-length` is set by the server",
        ),
        (Dynamic::from("not a map"), "headers must be a map"),
    ];
    for (headers, expected) in cases {
        let err = from_value(&map(&[
            ("status", Dynamic::from_int(200)),
            ("headers", headers),
        ]))
        .unwrap_err();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn unknown_keys_next_to_status_are_an_error_with_a_hint() {
    let err = from_value(&map(&[
        ("status", "ok".into()),
        ("count", Dynamic::from_int(1)),
    ]))
    .unwrap_err();
    assert!(
        err.contains("`count`") && err.contains("#{status: 200, body"),
        "{err}"
    );
}

#[test]
fn a_body_without_json_form_is_an_error() {
    let f = Dynamic::from(rhai::FnPtr::new("f").unwrap());
    let err = from_value(&map(&[("a", f)])).unwrap_err();
    assert!(err.starts_with("response body:"), "{err}");
}

proptest! {
    #[test]
    fn any_string_is_sent_as_is_with_200(text in ".*") {
        let r = from_value(&Dynamic::from(text.clone())).unwrap();
        prop_assert_eq!(r.status, 200);
        prop_assert_eq!(&r.body, &Bytes::from(text));
        prop_assert_eq!(header(&r, "content-type"), Some(TEXT));
    }

    #[test]
    fn any_int_is_its_decimal_text(n in any::<i64>()) {
        let r = from_value(&Dynamic::from_int(n)).unwrap();
        prop_assert_eq!(r.body, Bytes::from(n.to_string()));
    }

    #[test]
    fn a_status_is_valid_iff_in_100_to_599(status in any::<i64>()) {
        let r = from_value(&map(&[("status", Dynamic::from_int(status))]));
        prop_assert_eq!(r.is_ok(), (100..=599).contains(&status));
        if let Ok(r) = r {
            prop_assert_eq!(i64::from(r.status), status);
        }
    }

    #[test]
    fn header_values_are_accepted_iff_visible_ascii_space_or_tab(value in "\\PC{0,8}|[\\x00-\\x7f]{0,8}") {
        let r = from_value(&map(&[
            ("status", Dynamic::from_int(200)),
            ("headers", map(&[("x-v", value.clone().into())])),
        ]));
        let valid = value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        prop_assert_eq!(r.is_ok(), valid);
    }

    #[test]
    fn json_bodies_parse_back_to_the_same_value(
        entries in proptest::collection::btree_map("[a-z]{1,6}", any::<i64>(), 0..8),
    ) {
        let value: Map = entries.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from_int(*v))).collect();
        let r = from_value(&value.into()).unwrap();
        let back: std::collections::BTreeMap<String, i64> = serde_json::from_slice(&r.body).unwrap();
        prop_assert_eq!(back, entries);
    }
}
