//! Prometheus metrics of a node, kept as plain atomics and rendered at scrape time
//! (`GET /metrics`): finished runs per app, script, trigger and status, run
//! durations, HTTP answers of the edge, slot use, queue depth and read-model lag.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use picloud_events::domain::InvocationRecord;

/// Upper bounds (seconds) of the run-duration histogram.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The stages of an outbox delivery, timed by the dispatcher.
#[derive(Clone, Copy, Debug)]
pub enum OutboxStage {
    /// From the moment the row was due to its claim (the outbox projection's
    /// delay, the dispatcher's wake-up, waiting for a free permit).
    Waited,
    /// The claim statement (once per claimed batch).
    Claim,
    /// Reading the invocation's stream.
    Read,
    /// The run, with its wait for a slot.
    Run,
    /// Appending the outcome.
    Record,
}

impl OutboxStage {
    pub const ALL: [OutboxStage; 5] = [
        OutboxStage::Waited,
        OutboxStage::Claim,
        OutboxStage::Read,
        OutboxStage::Run,
        OutboxStage::Record,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStage::Waited => "waited",
            OutboxStage::Claim => "claim",
            OutboxStage::Read => "read",
            OutboxStage::Run => "run",
            OutboxStage::Record => "record",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    /// Microseconds spent per `OutboxStage`, and deliveries run.
    outbox_micros: [AtomicU64; 5],
    outbox_deliveries: AtomicU64,
    /// (app, script, trigger, status) → finished runs.
    runs: DashMap<(String, String, String, String), AtomicU64>,
    /// Cumulative counts per bucket (+Inf last), and the sum in microseconds.
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    duration_sum_micros: AtomicU64,
    /// (route kind, status class) → answers, e.g. ("edge", "2xx").
    http: DashMap<(&'static str, &'static str), AtomicU64>,
}

impl Metrics {
    /// Count a finished run (or attempt).
    pub fn record(&self, r: &InvocationRecord) {
        let key = (
            r.app_id.clone(),
            r.script_id.clone(),
            r.trigger.clone(),
            r.status.as_str().to_owned(),
        );
        self.runs
            .entry(key)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
        let seconds = r.duration_ms / 1000.0;
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.duration_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_buckets[DURATION_BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_micros
            .fetch_add((r.duration_ms * 1000.0).max(0.0) as u64, Ordering::Relaxed);
    }

    /// Add `spent` to an outbox stage.
    pub fn outbox(&self, stage: OutboxStage, spent: std::time::Duration) {
        let micros = u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
        self.outbox_micros[stage as usize].fetch_add(micros, Ordering::Relaxed);
    }

    /// Count a delivery the dispatcher ran (and tried to record).
    pub fn outbox_delivery(&self) {
        self.outbox_deliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// Count an HTTP answer of `kind` (`edge`, `admin`, `hooks`).
    pub fn http(&self, kind: &'static str, status: u16) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http
            .entry((kind, class))
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text of the counters, plus `gauges` (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP picloud_invocations_total Finished runs and attempts.\n");
        out.push_str("# TYPE picloud_invocations_total counter\n");
        let mut runs: Vec<_> = self
            .runs
            .iter()
            .map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed)))
            .collect();
        runs.sort();
        for ((app, script, trigger, status), n) in runs {
            let _ = writeln!(
                out,
                "picloud_invocations_total{{app=\"{}\",script=\"{}\",trigger=\"{}\",status=\"{}\"}} {n}",
                label(&app),
                label(&script),
                label(&trigger),
                label(&status)
            );
        }
        out.push_str(
            "# HELP picloud_outbox_stage_seconds_total Time outbox deliveries spent per stage \
             (waited: due to claimed; claim: the claim statements; read: the invocation's \
             stream; run: slot wait and run; record: appending the outcome).\n",
        );
        out.push_str("# TYPE picloud_outbox_stage_seconds_total counter\n");
        for stage in OutboxStage::ALL {
            let _ = writeln!(
                out,
                "picloud_outbox_stage_seconds_total{{stage=\"{}\"}} {}",
                stage.as_str(),
                self.outbox_micros[stage as usize].load(Ordering::Relaxed) as f64 / 1_000_000.0
            );
        }
        out.push_str(
            "# HELP picloud_outbox_deliveries_total Outbox deliveries run by this node.\n",
        );
        out.push_str("# TYPE picloud_outbox_deliveries_total counter\n");
        let _ = writeln!(
            out,
            "picloud_outbox_deliveries_total {}",
            self.outbox_deliveries.load(Ordering::Relaxed)
        );
        out.push_str("# HELP picloud_invocation_duration_seconds Run durations.\n");
        out.push_str("# TYPE picloud_invocation_duration_seconds histogram\n");
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "picloud_invocation_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.duration_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.duration_buckets[DURATION_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "picloud_invocation_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "picloud_invocation_duration_seconds_sum {}",
            self.duration_sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0
        );
        let _ = writeln!(out, "picloud_invocation_duration_seconds_count {count}");
        out.push_str(
            "# HELP picloud_http_responses_total HTTP answers by route kind and status class.\n",
        );
        out.push_str("# TYPE picloud_http_responses_total counter\n");
        let mut http: Vec<_> = self
            .http
            .iter()
            .map(|e| (*e.key(), e.value().load(Ordering::Relaxed)))
            .collect();
        http.sort();
        for ((kind, class), n) in http {
            let _ = writeln!(
                out,
                "picloud_http_responses_total{{kind=\"{kind}\",class=\"{class}\"}} {n}"
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// A label value escaped for the text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use picloud_events::domain::InvocationStatus;

    fn record(ms: f64, status: InvocationStatus) -> InvocationRecord {
        crate::test_support::record("i", "a\"pp", ms, status)
    }

    #[test]
    fn runs_and_durations_render_as_prometheus_text() {
        let m = Metrics::default();
        m.record(&record(0.7, InvocationStatus::Succeeded));
        m.record(&record(30.0, InvocationStatus::Succeeded));
        m.record(&record(2.0, InvocationStatus::Failed));
        m.http("edge", 200);
        m.http("edge", 503);
        let text = m.render(&[("picloud_slots_busy", "Busy slots.", 1.0)]);
        assert!(text.contains(
            "picloud_invocations_total{app=\"a\\\"pp\",script=\"s\",trigger=\"http\",status=\"succeeded\"} 2"
        ), "{text}");
        assert!(text.contains("status=\"failed\"} 1"), "{text}");
        assert!(
            text.contains("picloud_invocation_duration_seconds_bucket{le=\"0.001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("picloud_invocation_duration_seconds_bucket{le=\"0.0025\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("picloud_invocation_duration_seconds_bucket{le=\"+Inf\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("picloud_invocation_duration_seconds_count 3"),
            "{text}"
        );
        assert!(
            text.contains("picloud_http_responses_total{kind=\"edge\",class=\"5xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE picloud_slots_busy gauge\npicloud_slots_busy 1"),
            "{text}"
        );
    }
}
