//! Conversions between JSON values and Rhai values.
//!
//! Used for `ctx` (request JSON, event payload), `json::parse`/`json::stringify` and
//! for map/array responses. Both directions stop at [`MAX_JSON_DEPTH`] levels: a Rhai
//! value can be nested as deep as `max_array_size` allows, and walking it recursively
//! without a bound could overflow the executor thread's stack.

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

/// Deepest nesting converted in either direction. serde_json refuses to parse deeper
/// documents too (its recursion limit is 128), so what we emit can be read back.
pub(crate) const MAX_JSON_DEPTH: usize = 128;

/// Why a Rhai value cannot become JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToJsonError {
    TooDeep,
    Unsupported(&'static str),
}

impl std::fmt::Display for ToJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToJsonError::TooDeep => {
                write!(f, "value is nested more than {MAX_JSON_DEPTH} levels deep")
            }
            ToJsonError::Unsupported(ty) => write!(f, "a value of type {ty} has no JSON form"),
        }
    }
}

/// A JSON value as a Rhai value: objects become maps, arrays arrays, integers that fit
/// `i64` become ints and other numbers floats, `null` becomes `()`. Levels past
/// [`MAX_JSON_DEPTH`] become `()` (only host-built values can be that deep).
pub(crate) fn to_dynamic(value: &Value) -> Dynamic {
    to_dynamic_at(value, 0)
}

fn to_dynamic_at(value: &Value, depth: usize) -> Dynamic {
    if depth > MAX_JSON_DEPTH {
        return Dynamic::UNIT;
    }
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => {
            let array: Array = items.iter().map(|v| to_dynamic_at(v, depth + 1)).collect();
            Dynamic::from_array(array)
        }
        Value::Object(object) => {
            let map: Map = object
                .iter()
                .map(|(k, v)| (k.as_str().into(), to_dynamic_at(v, depth + 1)))
                .collect();
            Dynamic::from_map(map)
        }
    }
}

/// A Rhai value as JSON. `()` is `null`, a non-finite float is `null` (as in
/// JavaScript), a BLOB is an array of byte values, a char a one-character string.
/// Function pointers, timestamps and other host types have no JSON form.
pub(crate) fn to_json(value: &Dynamic) -> Result<Value, ToJsonError> {
    to_json_at(value, 0)
}

fn to_json_at(value: &Dynamic, depth: usize) -> Result<Value, ToJsonError> {
    if depth > MAX_JSON_DEPTH {
        return Err(ToJsonError::TooDeep);
    }
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = value.as_float() {
        return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if let Ok(s) = value.as_immutable_string_ref() {
        return Ok(Value::String(s.as_str().to_owned()));
    }
    if let Ok(array) = value.as_array_ref() {
        return array
            .iter()
            .map(|v| to_json_at(v, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Ok(map) = value.as_map_ref() {
        let mut object = serde_json::Map::new();
        for (k, v) in map.iter() {
            object.insert(k.to_string(), to_json_at(v, depth + 1)?);
        }
        return Ok(Value::Object(object));
    }
    if let Ok(blob) = value.as_blob_ref() {
        return Ok(Value::Array(blob.iter().map(|b| Value::from(*b)).collect()));
    }
    Err(ToJsonError::Unsupported(value.type_name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_rhai_values() {
        let value =
            json!({"a": [1, 2.5, "x", null, true], "b": {"c": {}}, "big": 18446744073709551615u64});
        let back = to_json(&to_dynamic(&value)).unwrap();
        assert_eq!(back["a"], json!([1, 2.5, "x", null, true]));
        assert_eq!(back["b"], json!({"c": {}}));
        // u64 past i64::MAX has no Rhai int: it becomes a float.
        assert!(back["big"].is_f64());
    }

    #[test]
    fn nesting_past_the_limit_is_refused() {
        let mut value = Dynamic::from_array(vec![]);
        for _ in 0..=MAX_JSON_DEPTH {
            value = Dynamic::from_array(vec![value]);
        }
        assert_eq!(to_json(&value), Err(ToJsonError::TooDeep));
    }

    #[test]
    fn function_pointers_have_no_json_form() {
        let f = Dynamic::from(rhai::FnPtr::new("f").unwrap());
        assert!(matches!(to_json(&f), Err(ToJsonError::Unsupported(_))));
    }

    #[test]
    fn non_finite_floats_become_null() {
        assert_eq!(to_json(&Dynamic::from_float(f64::NAN)), Ok(Value::Null));
    }
}
