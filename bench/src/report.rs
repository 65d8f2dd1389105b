//! One `Figure` per table row, and the report: a table on stdout, JSON in a file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::settings::{Command, Settings, profile};
use crate::stats::{Pair, summarize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Met,
    Missed,
    /// Reported without a pass/fail goal.
    Reported,
    /// Measured in `--smoke` mode: no goal check.
    Smoke,
    Error,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Missed => "MISSED",
            Status::Reported => "reported",
            Status::Smoke => "smoke",
            Status::Error => "ERROR",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub figure: String,
    pub backend: String,
    pub unit: String,
    pub picloud: Option<f64>,
    pub baseline: Option<f64>,
    pub baseline_name: String,
    /// Median of the per-pair ratios PiCloud / baseline.
    pub ratio: Option<f64>,
    pub ratio_min: Option<f64>,
    pub ratio_max: Option<f64>,
    pub goal: String,
    pub status: Status,
    pub pairs: Vec<Pair>,
    pub note: String,
}

impl Figure {
    /// PiCloud against a baseline over interleaved pairs. `met` decides the goal from
    /// the medians (PiCloud, baseline, ratio).
    pub fn compared(
        figure: &str,
        backend: &str,
        unit: &str,
        baseline_name: &str,
        pairs: Vec<Pair>,
        goal: &str,
        met: impl Fn(f64, f64, f64) -> bool,
    ) -> Figure {
        let s = summarize(&pairs);
        Figure {
            figure: figure.into(),
            backend: backend.into(),
            unit: unit.into(),
            picloud: Some(s.picloud),
            baseline: Some(s.baseline),
            baseline_name: baseline_name.into(),
            ratio: Some(s.ratio),
            ratio_min: Some(s.ratio_min),
            ratio_max: Some(s.ratio_max),
            goal: goal.into(),
            status: if met(s.picloud, s.baseline, s.ratio) {
                Status::Met
            } else {
                Status::Missed
            },
            pairs,
            note: String::new(),
        }
    }

    /// An absolute figure (no baseline). `met: None` reports without a goal.
    pub fn absolute(
        figure: &str,
        backend: &str,
        unit: &str,
        value: f64,
        goal: &str,
        met: Option<bool>,
    ) -> Figure {
        Figure {
            figure: figure.into(),
            backend: backend.into(),
            unit: unit.into(),
            picloud: Some(value),
            baseline: None,
            baseline_name: "none".into(),
            ratio: None,
            ratio_min: None,
            ratio_max: None,
            goal: goal.into(),
            status: match met {
                Some(true) => Status::Met,
                Some(false) => Status::Missed,
                None => Status::Reported,
            },
            pairs: Vec::new(),
            note: String::new(),
        }
    }

    pub fn error(figure: &str, error: &anyhow::Error) -> Figure {
        Figure {
            status: Status::Error,
            picloud: None,
            note: format!("{error:#}"),
            ..Figure::absolute(figure, "-", "", 0.0, "", None)
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Figure {
        self.note = note.into();
        self
    }
}

#[derive(Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
pub struct Report {
    pub command: String,
    pub selection: String,
    pub smoke: bool,
    pub pairs: usize,
    pub profile: &'static str,
    pub started_at: String,
    pub commit: String,
    pub machine: Machine,
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn new(settings: &Settings, selection: &Command, figures: Vec<Figure>) -> Report {
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(&settings.repo)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Report {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            selection: selection.label().into(),
            smoke: settings.smoke,
            pairs: settings.pairs,
            profile: profile(),
            started_at: settings.started_at.clone(),
            commit,
            machine: Machine::describe(),
            figures,
        }
    }

    pub fn errored(&self) -> bool {
        self.figures.iter().any(|f| f.status == Status::Error)
    }

    /// A Markdown table, ready to paste into BENCHMARKS.md.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "\nMachine: {} cores, {}, {} GiB, Linux {}; {} build; {} pair(s){}; commit {}\n",
            m.cores,
            m.cpu,
            m.memory_gib,
            m.kernel,
            self.profile,
            self.pairs,
            if self.smoke { ", SMOKE" } else { "" },
            if self.commit.is_empty() {
                "?"
            } else {
                &self.commit
            },
        );
        let _ = writeln!(
            out,
            "| figure | backend | PiCloud | baseline | ratio (median) | spread | goal | status |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for f in &self.figures {
            let value = |v: Option<f64>| v.map_or("-".to_owned(), |v| format_value(v, &f.unit));
            let baseline = match f.baseline {
                Some(v) => format!("{} ({})", format_value(v, &f.unit), f.baseline_name),
                None => "-".into(),
            };
            let spread = match (f.ratio_min, f.ratio_max) {
                (Some(lo), Some(hi)) => format!("{lo:.2}–{hi:.2}"),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                f.figure,
                f.backend,
                value(f.picloud),
                baseline,
                f.ratio.map_or("-".into(), |r| format!("{r:.2}")),
                spread,
                f.goal,
                f.status.label(),
            );
        }
        let notes: Vec<&Figure> = self.figures.iter().filter(|f| !f.note.is_empty()).collect();
        if !notes.is_empty() {
            let _ = writeln!(out);
            for f in notes {
                let _ = writeln!(out, "- {} ({}): {}", f.figure, f.backend, f.note);
            }
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<PathBuf> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        Ok(path.to_owned())
    }
}

/// A number with its unit, rounded for reading.
pub fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "req/s" | "events/s" | "runs/s" => format!("{} {unit}", group_thousands(v.round())),
        "µs" | "ticks" => format!("{v:.0} {unit}"),
        "ms" => format!("{v:.2} {unit}"),
        "s" => format!("{v:.2} {unit}"),
        "MiB" | "MB" | "wake-ups/s" => format!("{v:.1} {unit}"),
        _ => format!("{v:.2} {unit}"),
    }
}

fn group_thousands(v: f64) -> String {
    let digits = format!("{}", v.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(format_value(1234567.4, "req/s"), "1,234,567 req/s");
        assert_eq!(format_value(999.0, "req/s"), "999 req/s");
    }
}
