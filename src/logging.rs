//! Logging: a `tracing_subscriber` registry of layers, each one concern — the
//! filter (reloadable), the formatter (reloadable: JSON or pretty) — so an exporter
//! layer can be added beside them later without touching the others.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// The filter when none is configured.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,ractor=warn";

/// The registry with the filter in front: what the formatter (and any later
/// layer) sees.
type Filtered = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type Formatter = Box<dyn Layer<Filtered> + Send + Sync>;

/// Handles to change the running filter and format (SIGHUP).
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    format: reload::Handle<Formatter, Filtered>,
}

/// Parses a filter; the error names the setting.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(filter)
        .map_err(|e| format!("--log-level / PICLOUD_LOG: {filter:?} is not a log filter ({e})"))
}

/// Whether lines are JSON: `format` when given (`json` or `pretty`), else JSON
/// unless standard error is a terminal.
fn wants_json(format: Option<&str>) -> bool {
    match format {
        Some(format) => format == "json",
        None => !std::io::stderr().is_terminal(),
    }
}

fn formatter(json: bool) -> Formatter {
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if json {
        layer.json().boxed()
    } else {
        layer.boxed()
    }
}

/// Installs the global subscriber. An invalid filter falls back to
/// [`DEFAULT_FILTER`] with a warning (`serve` refuses one before it gets here).
pub fn init(filter: &str, format: Option<&str>) -> Logging {
    let (parsed, invalid) = match parse_filter(filter) {
        Ok(parsed) => (parsed, None),
        Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(e)),
    };
    let (filter_layer, filter) = reload::Layer::new(parsed);
    let (format_layer, format) = reload::Layer::new(formatter(wants_json(format)));
    // An OpenTelemetry layer goes here, after the formatter.
    let _ = tracing_subscriber::registry()
        .with(filter_layer)
        .with(format_layer)
        .try_init();
    if let Some(e) = invalid {
        tracing::warn!("{e}; using {DEFAULT_FILTER:?}");
    }
    Logging { filter, format }
}

impl Logging {
    /// Replaces the filter.
    pub fn set_filter(&self, filter: &str) -> Result<(), String> {
        let parsed = parse_filter(filter)?;
        self.filter.reload(parsed).map_err(|e| e.to_string())
    }

    /// Replaces the format (`json`, `pretty`, or `None`: by terminal).
    pub fn set_format(&self, format: Option<&str>) -> Result<(), String> {
        self.format
            .reload(formatter(wants_json(format)))
            .map_err(|e| e.to_string())
    }
}
