//! `json::parse` and `json::stringify`.

use rhai::plugin::*;

#[export_module]
pub mod json_functions {
    use crate::json_value;

    /// Parses a JSON document into a Rhai value: objects become maps, arrays arrays,
    /// `null` becomes `()`. Throws on invalid JSON (or nesting deeper than 128).
    ///
    /// ```rhai
    /// let order = json::parse(`{"id": 7, "items": ["tea"]}`);
    /// order.items.len()   // 1
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parse(text: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        serde_json::from_str::<serde_json::Value>(text)
            .map(|value| json_value::to_dynamic(&value))
            .map_err(|err| format!("json::parse: {err}").into())
    }

    /// Serializes a value as compact JSON. `()` is `null`; throws for values with no
    /// JSON form (function pointers, timestamps) or nested deeper than 128 levels.
    ///
    /// ```rhai
    /// json::stringify(#{ ok: true, n: [1, 2] })   // {"n":[1,2],"ok":true}
    /// ```
    #[rhai_fn(return_raw)]
    pub fn stringify(value: Dynamic) -> Result<String, Box<EvalAltResult>> {
        let json = json_value::to_json(&value).map_err(|err| format!("json::stringify: {err}"))?;
        // Into a byte buffer: twice as fast as `Value`'s `Display`.
        serde_json::to_string(&json).map_err(|err| format!("json::stringify: {err}").into())
    }
}
