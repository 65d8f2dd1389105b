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
    #[cfg(feature = "otlp")]
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// The OTLP/HTTP (protobuf) span exporter, batched on its own thread.
#[cfg(feature = "otlp")]
fn otlp_provider(endpoint: &str) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, String> {
    use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
    let url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|e| format!("--otlp-endpoint / PICLOUD_OTLP_ENDPOINT: {endpoint:?}: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("picloud")
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
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
pub fn init(filter: &str, format: Option<&str>, otlp: Option<&str>) -> Logging {
    let (parsed, invalid) = match parse_filter(filter) {
        Ok(parsed) => (parsed, None),
        Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(e)),
    };
    let (filter_layer, filter) = reload::Layer::new(parsed);
    let (format_layer, format) = reload::Layer::new(formatter(wants_json(format)));
    #[cfg(feature = "otlp")]
    let (traces, otlp_invalid) = match otlp.map(otlp_provider).transpose() {
        Ok(traces) => (traces, None),
        Err(e) => (None, Some(e)),
    };
    #[cfg(feature = "otlp")]
    let otlp_layer = traces.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("picloud"))
    });
    #[cfg(not(feature = "otlp"))]
    let otlp_layer: Option<tracing_subscriber::layer::Identity> = None;
    let _ = tracing_subscriber::registry()
        .with(filter_layer)
        .with(format_layer)
        .with(otlp_layer)
        .try_init();
    if let Some(e) = invalid {
        tracing::warn!("{e}; using {DEFAULT_FILTER:?}");
    }
    #[cfg(feature = "otlp")]
    if let Some(e) = otlp_invalid {
        tracing::warn!("{e}; traces are not exported");
    }
    #[cfg(not(feature = "otlp"))]
    if otlp.is_some() {
        tracing::warn!(
            "--otlp-endpoint / PICLOUD_OTLP_ENDPOINT: this build has no `otlp` feature; traces are not exported"
        );
    }
    Logging {
        filter,
        format,
        #[cfg(feature = "otlp")]
        traces,
    }
}

impl Logging {
    /// Flushes and stops the trace exporter, if any (at exit).
    pub fn shutdown(&self) {
        #[cfg(feature = "otlp")]
        if let Some(traces) = &self.traces
            && let Err(e) = traces.shutdown()
        {
            tracing::warn!("trace export shutdown: {e}");
        }
    }

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
