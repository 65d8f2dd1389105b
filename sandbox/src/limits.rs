//! Sandbox limits: the platform defaults, per-script overrides and the admin ceilings.
//!
//! Every knob has one name (`max_operations`, …, `timeout_ms`, `max_log_bytes`) used in
//! the API (`sandbox` field of a script), in the ceiling environment variables and in
//! the `limit` of a `LimitExceeded` outcome. [`Knob`] is the single table of them, so a
//! new knob is added in one place. One setting of the `sandbox` object is not a
//! knob: `record` ([`RecordSetting`]), whether runs record their answers.

use serde::{Deserialize, Serialize};

/// The limits one run is held to. Engines are cached per distinct `Limits` value.
///
/// A zero never means "unlimited" here (Rhai reads 0 as unlimited): the engine treats a
/// zero knob as 1, the tightest possible limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// Rhai operations per run (each module evaluation counts on its own budget).
    pub max_operations: u64,
    /// Bytes in any one string value.
    pub max_string_size: usize,
    /// Elements in any one array (nested arrays counted in) or bytes in a BLOB.
    pub max_array_size: usize,
    /// Properties in any one object map (nested maps counted in).
    pub max_map_size: usize,
    /// Nested script function calls.
    pub max_call_levels: usize,
    /// Expression nesting at parse time, at top level and in function bodies.
    pub max_expr_depth: usize,
    /// Wall-clock time of one run, in milliseconds.
    pub timeout_ms: u64,
    /// Captured log bytes per run (each line costs its message bytes plus one).
    pub max_log_bytes: usize,
}

impl Limits {
    /// The platform defaults.
    pub const DEFAULT: Limits = Limits {
        max_operations: 10_000_000,
        max_string_size: 1_048_576,
        max_array_size: 100_000,
        max_map_size: 100_000,
        max_call_levels: 128,
        max_expr_depth: 128,
        timeout_ms: 30_000,
        max_log_bytes: 65_536,
    };

    /// These limits with every knob that `o` sets replaced by its value.
    pub fn with_overrides(&self, o: &Overrides) -> Limits {
        let mut limits = *self;
        for knob in Knob::ALL {
            if let Some(value) = knob.get_override(o) {
                knob.set(&mut limits, value);
            }
        }
        limits
    }

    /// The value of one knob, widened to `u64`.
    pub(crate) fn knob(&self, knob: Knob) -> u64 {
        knob.get(self)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Per-script overrides, stored with each script version. Every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_operations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_string_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_array_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_map_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_call_levels: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_expr_depth: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_log_bytes: Option<usize>,
    /// Whether runs of this version record their answers from the outside world
    /// (`"full"`) or not (`"off"`); unset: the app's default (`answers.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSetting>,
}

/// The `record` setting of a script (`sandbox.record`) or an app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordSetting {
    /// Runs are not recorded (the default).
    #[default]
    Off,
    /// Every answer from outside is recorded with the run, up to
    /// [`MAX_RECORDING_BYTES`](crate::MAX_RECORDING_BYTES).
    Full,
}

impl RecordSetting {
    /// `"off"` or `"full"`.
    pub fn parse(text: &str) -> Option<RecordSetting> {
        match text {
            "off" => Some(RecordSetting::Off),
            "full" => Some(RecordSetting::Full),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            RecordSetting::Off => "off",
            RecordSetting::Full => "full",
        }
    }
}

/// The admin ceiling for each knob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ceilings(pub Limits);

impl Ceilings {
    /// The ceilings when no environment variable changes them.
    pub const DEFAULT: Ceilings = Ceilings(Limits {
        max_operations: 1_000_000_000,
        max_string_size: 16 * 1_048_576,
        max_array_size: 1_000_000,
        max_map_size: 1_000_000,
        max_call_levels: 256,
        max_expr_depth: 256,
        timeout_ms: 300_000,
        max_log_bytes: 1_048_576,
    });

    /// Reads `PICLOUD_SANDBOX_CEILING_<KNOB>` (e.g. `PICLOUD_SANDBOX_CEILING_TIMEOUT_MS`)
    /// through `lookup`. An unparsable or zero value keeps the default and yields a
    /// warning naming the variable and the value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Ceilings, Vec<String>) {
        let (limits, found) = Ceilings::DEFAULT.0.overlay_env(CEILING_ENV_PREFIX, lookup);
        (Ceilings(limits), found.warnings)
    }

    /// [`Ceilings::from_lookup`] over the process environment.
    pub fn from_env() -> (Ceilings, Vec<String>) {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// `limits` with every knob lowered to its ceiling. An admin who lowers a ceiling
    /// below a platform default (or below an override stored earlier) gets the ceiling.
    pub fn clamp(&self, limits: &Limits) -> Limits {
        let mut clamped = *limits;
        for knob in Knob::ALL {
            let ceiling = self.0.knob(knob);
            if clamped.knob(knob) > ceiling {
                knob.set(&mut clamped, ceiling);
            }
        }
        clamped
    }
}

impl Default for Ceilings {
    fn default() -> Self {
        Ceilings::DEFAULT
    }
}

/// The node-wide sandbox settings: the defaults a script without overrides runs
/// with, and the admin ceilings. The node swaps them whole on a reload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitSettings {
    pub defaults: Limits,
    pub ceilings: Ceilings,
}

impl LimitSettings {
    /// The limits a script version runs with: the defaults, its overrides, and
    /// never above the ceilings (which may have been lowered since it was saved).
    pub fn limits_for(&self, overrides: &Overrides) -> Limits {
        self.ceilings
            .clamp(&self.defaults.with_overrides(overrides))
    }
}

/// The knobs' names, in their documented order (`max_operations`, …, `max_log_bytes`).
pub const KNOB_NAMES: [&str; 8] = {
    let mut names = [""; 8];
    let mut i = 0;
    while i < names.len() {
        names[i] = Knob::ALL[i].name();
        i += 1;
    }
    names
};

/// The prefix of the ceiling variables: `PICLOUD_SANDBOX_CEILING_MAX_OPERATIONS`, …
pub const CEILING_ENV_PREFIX: &str = "PICLOUD_SANDBOX_CEILING_";
/// The prefix of the default variables: `PICLOUD_SANDBOX_DEFAULT_TIMEOUT_MS`, …
pub const DEFAULT_ENV_PREFIX: &str = "PICLOUD_SANDBOX_DEFAULT_";

/// What [`Limits::overlay_env`] found.
#[derive(Debug, Default)]
pub struct EnvOverlay {
    /// The knobs a variable set, by name.
    pub set: Vec<&'static str>,
    /// One line per unusable variable, naming it, its value and the value kept.
    pub warnings: Vec<String>,
}

impl Limits {
    /// These limits with each knob whose variable `{prefix}{KNOB}` (upper-cased)
    /// `lookup` finds set to its value. An unparsable or zero value keeps the knob
    /// as it is and yields a warning naming the variable and the value.
    pub fn overlay_env(
        &self,
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> (Limits, EnvOverlay) {
        let mut limits = *self;
        let mut found = EnvOverlay::default();
        for knob in Knob::ALL {
            let var = format!("{prefix}{}", knob.name().to_ascii_uppercase());
            let Some(raw) = lookup(&var) else { continue };
            match parse_positive(raw.trim()).filter(|v| knob.fits(*v)) {
                Some(value) => {
                    knob.set(&mut limits, value);
                    found.set.push(knob.name());
                }
                None => found.warnings.push(format!(
                    "{var}={raw:?} is not a positive integer; keeping {}",
                    self.knob(knob)
                )),
            }
        }
        (limits, found)
    }

    /// The value of the knob named `name` (one of [`KNOB_NAMES`]).
    pub fn get_knob(&self, name: &str) -> Option<u64> {
        Knob::from_name(name).map(|knob| knob.get(self))
    }

    /// Sets the knob named `name`; `Err` says why `value` cannot be its value
    /// (unknown knob, zero, or too large for this target).
    pub fn set_knob(&mut self, name: &str, value: u64) -> Result<(), String> {
        let knob = Knob::from_name(name)
            .ok_or_else(|| format!("unknown sandbox setting (known: {})", KNOB_NAMES.join(", ")))?;
        if value == 0 || !knob.fits(value) {
            return Err(format!(
                "{value} is not a positive integer this node can hold"
            ));
        }
        knob.set(self, value);
        Ok(())
    }
}

/// Why a `sandbox` object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("sandbox.{field} is not a known sandbox setting")]
    UnknownField { field: String },
    #[error("sandbox.{field} must be a positive integer")]
    InvalidValue { field: String },
    #[error("sandbox.record must be \"full\" or \"off\"")]
    InvalidRecord,
    #[error("sandbox.{field} = {requested} is above the ceiling {ceiling}")]
    AboveCeiling {
        field: String,
        requested: u64,
        ceiling: u64,
    },
    #[error("sandbox must be a JSON object")]
    NotAnObject,
}

/// Parse a JSON value (the `sandbox` field of an API request) into [`Overrides`] and
/// check it against the ceilings. `null` means "no overrides", as does a `null` field.
/// Fields are checked in name order, so the error is the same for the same input.
pub fn parse_overrides(
    value: &serde_json::Value,
    ceilings: &Ceilings,
) -> Result<Overrides, OverrideError> {
    let object = match value {
        serde_json::Value::Null => return Ok(Overrides::default()),
        serde_json::Value::Object(object) => object,
        _ => return Err(OverrideError::NotAnObject),
    };
    let mut fields: Vec<_> = object.iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));

    let mut overrides = Overrides::default();
    for (field, raw) in fields {
        if field == "record" {
            if !raw.is_null() {
                let setting = raw.as_str().and_then(RecordSetting::parse);
                overrides.record = Some(setting.ok_or(OverrideError::InvalidRecord)?);
            }
            continue;
        }
        let knob = Knob::from_name(field).ok_or_else(|| OverrideError::UnknownField {
            field: field.clone(),
        })?;
        if raw.is_null() {
            continue;
        }
        let requested =
            raw.as_u64()
                .filter(|v| *v > 0)
                .ok_or_else(|| OverrideError::InvalidValue {
                    field: field.clone(),
                })?;
        let ceiling = ceilings.0.knob(knob);
        if requested > ceiling || !knob.fits(requested) {
            return Err(OverrideError::AboveCeiling {
                field: field.clone(),
                requested,
                ceiling,
            });
        }
        knob.set_override(&mut overrides, requested);
    }
    Ok(overrides)
}

fn parse_positive(raw: &str) -> Option<u64> {
    raw.parse::<u64>().ok().filter(|v| *v > 0)
}

/// One sandbox knob. Values travel as `u64`; `usize` knobs saturate on narrow targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Knob {
    MaxOperations,
    MaxStringSize,
    MaxArraySize,
    MaxMapSize,
    MaxCallLevels,
    MaxExprDepth,
    TimeoutMs,
    MaxLogBytes,
}

impl Knob {
    pub(crate) const ALL: [Knob; 8] = [
        Knob::MaxOperations,
        Knob::MaxStringSize,
        Knob::MaxArraySize,
        Knob::MaxMapSize,
        Knob::MaxCallLevels,
        Knob::MaxExprDepth,
        Knob::TimeoutMs,
        Knob::MaxLogBytes,
    ];

    /// The knob's name in the API, in outcomes and (upper-cased) in env vars.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Knob::MaxOperations => "max_operations",
            Knob::MaxStringSize => "max_string_size",
            Knob::MaxArraySize => "max_array_size",
            Knob::MaxMapSize => "max_map_size",
            Knob::MaxCallLevels => "max_call_levels",
            Knob::MaxExprDepth => "max_expr_depth",
            Knob::TimeoutMs => "timeout_ms",
            Knob::MaxLogBytes => "max_log_bytes",
        }
    }

    fn from_name(name: &str) -> Option<Knob> {
        Knob::ALL.into_iter().find(|k| k.name() == name)
    }

    const fn is_usize(self) -> bool {
        !matches!(self, Knob::MaxOperations | Knob::TimeoutMs)
    }

    /// Whether `value` can be stored in this knob's field on this target.
    fn fits(self, value: u64) -> bool {
        !self.is_usize() || usize::try_from(value).is_ok()
    }

    fn get(self, l: &Limits) -> u64 {
        let wide = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        match self {
            Knob::MaxOperations => l.max_operations,
            Knob::MaxStringSize => wide(l.max_string_size),
            Knob::MaxArraySize => wide(l.max_array_size),
            Knob::MaxMapSize => wide(l.max_map_size),
            Knob::MaxCallLevels => wide(l.max_call_levels),
            Knob::MaxExprDepth => wide(l.max_expr_depth),
            Knob::TimeoutMs => l.timeout_ms,
            Knob::MaxLogBytes => wide(l.max_log_bytes),
        }
    }

    fn set(self, l: &mut Limits, value: u64) {
        let narrow = usize::try_from(value).unwrap_or(usize::MAX);
        match self {
            Knob::MaxOperations => l.max_operations = value,
            Knob::MaxStringSize => l.max_string_size = narrow,
            Knob::MaxArraySize => l.max_array_size = narrow,
            Knob::MaxMapSize => l.max_map_size = narrow,
            Knob::MaxCallLevels => l.max_call_levels = narrow,
            Knob::MaxExprDepth => l.max_expr_depth = narrow,
            Knob::TimeoutMs => l.timeout_ms = value,
            Knob::MaxLogBytes => l.max_log_bytes = narrow,
        }
    }

    fn get_override(self, o: &Overrides) -> Option<u64> {
        let wide = |v: Option<usize>| v.map(|v| u64::try_from(v).unwrap_or(u64::MAX));
        match self {
            Knob::MaxOperations => o.max_operations,
            Knob::MaxStringSize => wide(o.max_string_size),
            Knob::MaxArraySize => wide(o.max_array_size),
            Knob::MaxMapSize => wide(o.max_map_size),
            Knob::MaxCallLevels => wide(o.max_call_levels),
            Knob::MaxExprDepth => wide(o.max_expr_depth),
            Knob::TimeoutMs => o.timeout_ms,
            Knob::MaxLogBytes => wide(o.max_log_bytes),
        }
    }

    fn set_override(self, o: &mut Overrides, value: u64) {
        let narrow = Some(usize::try_from(value).unwrap_or(usize::MAX));
        match self {
            Knob::MaxOperations => o.max_operations = Some(value),
            Knob::MaxStringSize => o.max_string_size = narrow,
            Knob::MaxArraySize => o.max_array_size = narrow,
            Knob::MaxMapSize => o.max_map_size = narrow,
            Knob::MaxCallLevels => o.max_call_levels = narrow,
            Knob::MaxExprDepth => o.max_expr_depth = narrow,
            Knob::TimeoutMs => o.timeout_ms = Some(value),
            Knob::MaxLogBytes => o.max_log_bytes = narrow,
        }
    }
}

#[cfg(test)]
mod tests;
