//! Closes a gap in Rhai's data-size checks: growing a map through an index.
//!
//! Rhai checks the size of a value when a function returns it or when it is assigned
//! as a whole, but `m[key] = value` with a new key only checks `value`: a loop can
//! grow `m` past `max_map_size` until memory runs out (and map keys count nowhere).
//! Every assignment like that first reads the variable `m`, so the engine's variable
//! callback ([`on_var`]) checks the value being read:
//!
//! - always, in O(1): a map with more than `max_map_size` entries;
//! - every so often, fully: arrays, maps and string bytes (keys included) counted as
//!   Rhai counts them. How often adapts to the size of the last value measured, so
//!   the cost stays a few element visits per variable read however large values get.

use std::cell::Cell;

use rhai::{Dynamic, EvalAltResult, EvalContext, Position};

use crate::limits::Limits;

/// Full checks happen at most this many variable reads apart...
const MAX_INTERVAL: u32 = 256;
/// ...at least this many apart...
const MIN_INTERVAL: u32 = 8;
/// ...and otherwise after one read per this many elements of the last value measured.
const ELEMENTS_PER_READ: usize = 8;
/// Nesting deeper than this is not measured (Rhai's own checks recurse over it too).
const MAX_DEPTH: usize = 4096;

thread_local! {
    static READS_UNTIL_CHECK: Cell<u32> = const { Cell::new(0) };
}

/// The engine's variable callback: never resolves a variable itself (`Ok(None)`),
/// only refuses to hand out one that has outgrown the limits.
pub(crate) fn on_var(
    name: &str,
    context: &EvalContext,
    limits: &Limits,
) -> Result<Option<Dynamic>, Box<EvalAltResult>> {
    let scope = context.scope();
    // Constants (`ctx`) cannot grow, and `ctx` may hold more than a script's limits
    // allow (the request body twice, as text and as parsed JSON).
    if scope.is_constant(name).unwrap_or(true) {
        return Ok(None);
    }
    let Some(value) = scope.get(name) else {
        return Ok(None);
    };
    if let Ok(map) = value.as_map_ref()
        && map.len() > limits.max_map_size
    {
        return Err(too_large(MAP));
    }
    let due = READS_UNTIL_CHECK.with(|reads| match reads.get() {
        0 => true,
        n => {
            reads.set(n - 1);
            false
        }
    });
    if due {
        let sizes = measure(value, limits);
        let interval = (sizes.elements / ELEMENTS_PER_READ)
            .clamp(MIN_INTERVAL as usize, MAX_INTERVAL as usize);
        READS_UNTIL_CHECK.with(|reads| reads.set(u32::try_from(interval).unwrap_or(MAX_INTERVAL)));
        sizes.check(limits)?;
    }
    Ok(None)
}

const STRING: &str = "Length of string";
const ARRAY: &str = "Size of array/BLOB";
const MAP: &str = "Size of object map";

fn too_large(what: &str) -> Box<EvalAltResult> {
    EvalAltResult::ErrorDataTooLarge(what.to_owned(), Position::NONE).into()
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Sizes {
    arrays: usize,
    maps: usize,
    string_bytes: usize,
    /// Everything visited, for pacing the next check.
    elements: usize,
}

impl Sizes {
    fn over(&self, limits: &Limits) -> bool {
        self.string_bytes > limits.max_string_size
            || self.arrays > limits.max_array_size
            || self.maps > limits.max_map_size
    }

    fn check(&self, limits: &Limits) -> Result<(), Box<EvalAltResult>> {
        if self.string_bytes > limits.max_string_size {
            Err(too_large(STRING))
        } else if self.arrays > limits.max_array_size {
            Err(too_large(ARRAY))
        } else if self.maps > limits.max_map_size {
            Err(too_large(MAP))
        } else {
            Ok(())
        }
    }
}

/// Sizes of `value`, stopping early once a limit is passed.
fn measure(value: &Dynamic, limits: &Limits) -> Sizes {
    let mut sizes = Sizes::default();
    walk(value, 0, limits, &mut sizes);
    sizes
}

fn walk(value: &Dynamic, depth: usize, limits: &Limits, sizes: &mut Sizes) {
    if depth > MAX_DEPTH || sizes.over(limits) {
        return;
    }
    sizes.elements += 1;
    if let Ok(text) = value.as_immutable_string_ref() {
        sizes.string_bytes += text.len();
    } else if let Ok(array) = value.as_array_ref() {
        for item in array.iter() {
            sizes.arrays += 1;
            walk(item, depth + 1, limits, sizes);
            if sizes.over(limits) {
                return;
            }
        }
    } else if let Ok(map) = value.as_map_ref() {
        for (key, item) in map.iter() {
            sizes.maps += 1;
            sizes.string_bytes += key.len();
            walk(item, depth + 1, limits, sizes);
            if sizes.over(limits) {
                return;
            }
        }
    } else if let Ok(blob) = value.as_blob_ref() {
        sizes.arrays += blob.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Map;

    #[test]
    fn sizes_count_nested_elements_and_key_bytes() {
        let mut inner = Map::new();
        inner.insert("key".into(), Dynamic::from("value"));
        let value = Dynamic::from_array(vec![Dynamic::from_map(inner), Dynamic::from_int(1)]);
        let sizes = measure(&value, &Limits::DEFAULT);
        assert_eq!((sizes.arrays, sizes.maps, sizes.string_bytes), (2, 1, 8));
    }

    #[test]
    fn measuring_stops_once_a_limit_is_passed() {
        let value = Dynamic::from_array(vec![Dynamic::from_int(1); 1000]);
        let limits = Limits {
            max_array_size: 10,
            ..Limits::DEFAULT
        };
        let sizes = measure(&value, &limits);
        assert_eq!(sizes.arrays, 11);
        assert!(sizes.check(&limits).is_err());
    }
}
