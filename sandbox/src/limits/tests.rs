//! Tests of limits, overrides and ceilings.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;

#[test]
fn defaults_are_the_documented_values() {
    let d = Limits::default();
    assert_eq!(d, Limits::DEFAULT);
    assert_eq!(d.max_operations, 10_000_000);
    assert_eq!(d.max_string_size, 1_048_576);
    assert_eq!((d.max_array_size, d.max_map_size), (100_000, 100_000));
    assert_eq!((d.max_call_levels, d.max_expr_depth), (128, 128));
    assert_eq!((d.timeout_ms, d.max_log_bytes), (30_000, 65_536));
}

#[test]
fn default_ceilings_are_the_documented_values() {
    let c = Ceilings::DEFAULT.0;
    assert_eq!(c.max_operations, 1_000_000_000);
    assert_eq!(c.max_string_size, 16 * 1_048_576);
    assert_eq!((c.max_array_size, c.max_map_size), (1_000_000, 1_000_000));
    assert_eq!((c.max_call_levels, c.max_expr_depth), (256, 256));
    assert_eq!((c.timeout_ms, c.max_log_bytes), (300_000, 1_048_576));
    assert_eq!(Ceilings::default(), Ceilings::DEFAULT);
}

#[test]
fn overrides_replace_only_the_knobs_they_set() {
    let o = Overrides {
        timeout_ms: Some(5),
        max_call_levels: Some(7),
        ..Overrides::default()
    };
    let l = Limits::DEFAULT.with_overrides(&o);
    assert_eq!(l.timeout_ms, 5);
    assert_eq!(l.max_call_levels, 7);
    assert_eq!(l.max_operations, Limits::DEFAULT.max_operations);
    assert_eq!(
        Limits::DEFAULT.with_overrides(&Overrides::default()),
        Limits::DEFAULT
    );
}

#[test]
fn parse_overrides_accepts_every_knob_up_to_its_ceiling() {
    let c = Ceilings::DEFAULT;
    let value = json!({
        "max_operations": 1_000_000_000u64, "max_string_size": 16_777_216, "max_array_size": 1,
        "max_map_size": 2, "max_call_levels": 256, "max_expr_depth": 3, "timeout_ms": 300_000,
        "max_log_bytes": 4
    });
    let o = parse_overrides(&value, &c).unwrap();
    assert_eq!(o.max_operations, Some(1_000_000_000));
    assert_eq!(o.max_string_size, Some(16_777_216));
    assert_eq!(o.max_map_size, Some(2));
    assert_eq!(o.max_log_bytes, Some(4));
}

#[test]
fn unknown_field_is_refused_by_name() {
    let err = parse_overrides(&json!({"max_memory": 1}), &Ceilings::DEFAULT).unwrap_err();
    assert_eq!(
        err,
        OverrideError::UnknownField {
            field: "max_memory".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "sandbox.max_memory is not a known sandbox setting"
    );
}

#[test]
fn non_positive_or_non_integer_values_are_invalid() {
    for bad in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!("10"),
        json!(true),
        json!([1]),
        json!({}),
    ] {
        let err = parse_overrides(&json!({"timeout_ms": bad}), &Ceilings::DEFAULT).unwrap_err();
        assert_eq!(
            err,
            OverrideError::InvalidValue {
                field: "timeout_ms".into()
            },
            "{bad}"
        );
    }
}

#[test]
fn above_ceiling_names_field_value_and_ceiling() {
    let err = parse_overrides(&json!({"max_call_levels": 257}), &Ceilings::DEFAULT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sandbox.max_call_levels = 257 is above the ceiling 256"
    );
}

#[test]
fn null_means_no_overrides_and_other_non_objects_are_refused() {
    assert_eq!(
        parse_overrides(&json!(null), &Ceilings::DEFAULT),
        Ok(Overrides::default())
    );
    assert_eq!(
        parse_overrides(&json!({"timeout_ms": null}), &Ceilings::DEFAULT),
        Ok(Overrides::default())
    );
    for bad in [json!(1), json!("x"), json!([])] {
        assert_eq!(
            parse_overrides(&bad, &Ceilings::DEFAULT),
            Err(OverrideError::NotAnObject)
        );
    }
}

#[test]
fn the_first_bad_field_in_name_order_is_reported() {
    let err = parse_overrides(
        &json!({"zzz": 1, "timeout_ms": 0, "max_array_size": 0}),
        &Ceilings::DEFAULT,
    )
    .unwrap_err();
    assert_eq!(
        err,
        OverrideError::InvalidValue {
            field: "max_array_size".into()
        }
    );
}

#[test]
fn overrides_serde_round_trips_and_refuses_unknown_fields() {
    let o = Overrides {
        max_operations: Some(5),
        ..Overrides::default()
    };
    let text = serde_json::to_string(&o).unwrap();
    assert_eq!(text, r#"{"max_operations":5}"#);
    assert_eq!(serde_json::from_str::<Overrides>(&text).unwrap(), o);
    assert_eq!(
        serde_json::from_str::<Overrides>("{}").unwrap(),
        Overrides::default()
    );
    assert!(serde_json::from_str::<Overrides>(r#"{"nope":1}"#).is_err());
}

#[test]
fn ceilings_come_from_env_vars_named_after_the_knobs() {
    let env: HashMap<&str, &str> = [
        ("PICLOUD_SANDBOX_CEILING_MAX_OPERATIONS", "5000"),
        ("PICLOUD_SANDBOX_CEILING_TIMEOUT_MS", " 1000 "),
        ("PICLOUD_SANDBOX_CEILING_MAX_LOG_BYTES", "12"),
    ]
    .into();
    let (c, warnings) = Ceilings::from_lookup(|name| env.get(name).map(|v| v.to_string()));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.0.max_operations, 5000);
    assert_eq!(c.0.timeout_ms, 1000);
    assert_eq!(c.0.max_log_bytes, 12);
    assert_eq!(c.0.max_call_levels, Ceilings::DEFAULT.0.max_call_levels);
}

#[test]
fn unparsable_or_zero_ceiling_keeps_default_with_a_warning() {
    let env: HashMap<&str, &str> = [
        ("PICLOUD_SANDBOX_CEILING_MAX_EXPR_DEPTH", "lots"),
        ("PICLOUD_SANDBOX_CEILING_MAX_MAP_SIZE", "0"),
    ]
    .into();
    let (c, warnings) = Ceilings::from_lookup(|name| env.get(name).map(|v| v.to_string()));
    assert_eq!(c, Ceilings::DEFAULT);
    assert_eq!(warnings.len(), 2);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("PICLOUD_SANDBOX_CEILING_MAX_EXPR_DEPTH") && w.contains("lots"))
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("PICLOUD_SANDBOX_CEILING_MAX_MAP_SIZE") && w.contains("\"0\""))
    );
}

#[test]
fn from_env_without_variables_is_the_default() {
    // The test process sets no PICLOUD_SANDBOX_CEILING_* variable.
    let (c, warnings) = Ceilings::from_env();
    assert_eq!(c, Ceilings::DEFAULT);
    assert!(warnings.is_empty());
}

#[test]
fn clamp_lowers_knobs_above_the_ceiling_only() {
    let mut ceilings = Ceilings::DEFAULT;
    ceilings.0.max_operations = 1000;
    let clamped = ceilings.clamp(&Limits::DEFAULT);
    assert_eq!(clamped.max_operations, 1000);
    assert_eq!(clamped.timeout_ms, Limits::DEFAULT.timeout_ms);
}

fn knob_strategy() -> impl Strategy<Value = Knob> {
    proptest::sample::select(Knob::ALL.to_vec())
}

proptest! {
    #[test]
    fn a_value_is_accepted_iff_positive_and_within_the_ceiling(
        knob in knob_strategy(),
        ceiling in 1u64..10_000,
        value in 0u64..20_000,
    ) {
        let mut ceilings = Ceilings::DEFAULT;
        knob.set(&mut ceilings.0, ceiling);
        let result = parse_overrides(&json!({ knob.name(): value }), &ceilings);
        match result {
            Ok(o) => {
                prop_assert!(value > 0 && value <= ceiling);
                let limits = Limits::DEFAULT.with_overrides(&o);
                prop_assert_eq!(limits.knob(knob), value);
            }
            Err(OverrideError::InvalidValue { field }) => {
                prop_assert_eq!(value, 0);
                prop_assert_eq!(field, knob.name());
            }
            Err(OverrideError::AboveCeiling { field, requested, ceiling: c }) => {
                prop_assert!(value > ceiling);
                prop_assert_eq!((field.as_str(), requested, c), (knob.name(), value, ceiling));
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn overridden_limits_never_exceed_the_ceilings(
        values in proptest::collection::vec(proptest::option::of(1u64..2_000_000_000), 8),
    ) {
        let object: serde_json::Map<String, serde_json::Value> = Knob::ALL
            .iter()
            .zip(&values)
            .filter_map(|(k, v)| v.map(|v| (k.name().to_owned(), json!(v))))
            .collect();
        if let Ok(o) = parse_overrides(&serde_json::Value::Object(object), &Ceilings::DEFAULT) {
            let limits = Limits::DEFAULT.with_overrides(&o);
            for knob in Knob::ALL {
                prop_assert!(limits.knob(knob) <= Ceilings::DEFAULT.0.knob(knob));
            }
        }
    }

    #[test]
    fn garbage_ceiling_values_always_warn_and_keep_defaults(raw in "[^0-9]{1,12}") {
        let (c, warnings) = Ceilings::from_lookup(|name| {
            (name == "PICLOUD_SANDBOX_CEILING_TIMEOUT_MS").then(|| raw.clone())
        });
        prop_assert_eq!(c, Ceilings::DEFAULT);
        prop_assert_eq!(warnings.len(), 1);
    }
}
