//! A script's value becomes the response (CONTRACT.md, "Invocation").

use picloud_sandbox::Outcome;

use crate::common::*;

#[test]
fn string_is_200_text_plain() {
    let r = run(r#""hello""#);
    assert_eq!(response(&r).status, 200);
    assert_eq!(
        header(response(&r), "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(body(&r), "hello");
}

#[test]
fn map_is_200_json() {
    let r = run(r#"#{ id: 7, tags: ["a"], nested: #{ ok: true } }"#);
    assert_eq!(response(&r).status, 200);
    assert_eq!(
        header(response(&r), "content-type"),
        Some("application/json")
    );
    let json: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"id": 7, "tags": ["a"], "nested": {"ok": true}})
    );
}

#[test]
fn array_is_200_json() {
    let r = run("[1, 2.5, (), \"x\"]");
    assert_eq!(body(&r), r#"[1,2.5,null,"x"]"#);
}

#[test]
fn unit_is_204_with_empty_body() {
    for source in ["()", "let x = 1;", ""] {
        let r = run(source);
        assert_eq!(response(&r).status, 204, "{source}");
        assert!(response(&r).body.is_empty());
        assert!(response(&r).headers.is_empty());
    }
}

#[test]
fn int_float_and_bool_are_200_text_of_their_string_form() {
    assert_eq!(body(&run("40 + 2")), "42");
    assert_eq!(body(&run("1.5")), "1.5");
    assert_eq!(body(&run("true")), "true");
    assert_eq!(
        header(response(&run("1")), "content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn status_map_sets_status_headers_and_body() {
    let r = run(
        r#"#{ status: 201, headers: #{ "X-Id": "9", "content-type": "text/csv" }, body: "a,b" }"#,
    );
    let resp = response(&r);
    assert_eq!(resp.status, 201);
    assert_eq!(header(resp, "x-id"), Some("9"));
    assert_eq!(header(resp, "content-type"), Some("text/csv"));
    assert_eq!(body(&r), "a,b");
}

#[test]
fn status_map_with_map_body_is_json_and_without_body_is_empty() {
    let r = run(r#"#{ status: 422, body: #{ error: "bad" } }"#);
    assert_eq!(response(&r).status, 422);
    assert_eq!(
        header(response(&r), "content-type"),
        Some("application/json")
    );
    assert_eq!(body(&r), r#"{"error":"bad"}"#);

    let r = run(r#"#{ status: 304 }"#);
    assert_eq!((response(&r).status, body(&r).as_str()), (304, ""));
    assert_eq!(header(response(&r), "content-type"), None);
    let r = run(r#"#{ status: 202, body: () }"#);
    assert_eq!((response(&r).status, body(&r).as_str()), (202, ""));
}

#[test]
fn invalid_status_is_a_script_error() {
    for status in ["99", "600", r#""200""#, "200.0", "()"] {
        let message = script_error(&run(&format!("#{{ status: {status} }}")));
        assert!(
            message.contains("status must be an integer from 100 to 599"),
            "{message}"
        );
    }
}

#[test]
fn invalid_header_is_a_script_error_naming_it() {
    let message = script_error(&run(r#"#{ status: 200, headers: #{ "x-a": "1\n2" } }"#));
    assert!(message.contains("`x-a`"), "{message}");
    let message = script_error(&run(r#"#{ status: 200, headers: #{ "a b": "1" } }"#));
    assert!(message.contains("\"a b\""), "{message}");
}

#[test]
fn script_errors_carry_message_line_and_position() {
    let r = run("let x = 1;\nlet y = x + undefined_thing;");
    match r.outcome {
        Outcome::ScriptError {
            message,
            line,
            position,
        } => {
            assert!(message.contains("undefined_thing"), "{message}");
            assert_eq!(line, Some(2));
            assert_eq!(position, Some(13));
            assert!(
                !message.contains("line 2"),
                "position is not repeated: {message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn thrown_values_are_script_errors() {
    let r = run("\n  throw \"no way\";");
    match r.outcome {
        Outcome::ScriptError {
            message,
            line,
            position,
        } => {
            assert!(message.contains("no way"), "{message}");
            assert_eq!((line, position), (Some(2), Some(3)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_inside_functions_point_into_the_function() {
    let r = run("fn f(x) {\n  x.nope()\n}\nf(1)");
    match r.outcome {
        Outcome::ScriptError { message, line, .. } => {
            assert!(message.contains("in call to function 'f'"), "{message}");
            assert_eq!(line, Some(2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn syntax_errors_are_script_errors_at_run_time_and_compile_errors_at_save_time() {
    let source = "let x = ;";
    let r = run(source);
    assert!(
        matches!(
            r.outcome,
            Outcome::ScriptError {
                line: Some(1),
                position: Some(9),
                ..
            }
        ),
        "{:?}",
        r.outcome
    );
    let err = SANDBOX.compile(source).unwrap_err();
    assert_eq!((err.line, err.position), (Some(1), Some(9)));
    assert!(!err.message.is_empty());
    assert!(SANDBOX.compile("let x = 1; x").is_ok());
}

#[test]
fn exit_ends_the_script_with_its_value() {
    assert_eq!(body(&run(r#"exit("early"); "late""#)), "early");
}
