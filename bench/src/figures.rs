//! The figures, one file per group, and the `Bench` that runs a selection of them.
//!
//! A group returns its rows or an error; an error becomes an `ERROR` row and makes
//! the run's exit status non-zero, and the next group still runs. To add a figure:
//! write `figures/<name>.rs` with `pub async fn run(bench: &mut Bench) ->
//! anyhow::Result<Vec<Figure>>`, add a `Command` variant, and list it in `GROUPS`.

mod append;
mod deploy;
mod hot_path;
mod idle;
mod memory;
mod replay;
mod script_heavy;
mod triggers;

use crate::postgres::Postgres;
use crate::report::{Figure, Status};
use crate::settings::{Command, Settings};

/// The order of `all`: the HTTP figures first, then the store figures.
const GROUPS: [Command; 8] = [
    Command::HotPath,
    Command::ScriptHeavy,
    Command::Idle,
    Command::Memory,
    Command::Deploy,
    Command::Append,
    Command::Replay,
    Command::Triggers,
];

pub struct Bench {
    pub settings: Settings,
    postgres: Option<Postgres>,
}

impl Bench {
    pub fn new(settings: Settings) -> Bench {
        Bench {
            settings,
            postgres: None,
        }
    }

    /// The throwaway PostgreSQL, started on first use.
    pub fn postgres(&mut self) -> anyhow::Result<&Postgres> {
        if self.postgres.is_none() {
            self.postgres = Some(Postgres::ensure(&self.settings.repo)?);
        }
        self.postgres
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("PostgreSQL is unavailable"))
    }

    pub async fn run(&mut self, selection: &Command) -> Vec<Figure> {
        let groups: Vec<Command> = match selection {
            Command::All => GROUPS.to_vec(),
            one => vec![one.clone()],
        };
        let mut rows = Vec::new();
        for group in groups {
            eprintln!("==> {}", group.label());
            let started = std::time::Instant::now();
            let result = match group {
                Command::HotPath => hot_path::run(self).await,
                Command::ScriptHeavy => script_heavy::run(self).await,
                Command::Idle => idle::run(self).await,
                Command::Memory => memory::run(self).await,
                Command::Deploy => deploy::run(self).await,
                Command::Append => append::run(self).await,
                Command::Replay => replay::run(self).await,
                Command::Triggers => triggers::run(self).await,
                Command::All | Command::Load { .. } | Command::BaselineServer { .. } => {
                    Ok(Vec::new())
                }
            };
            match result {
                Ok(figures) => rows.extend(figures),
                Err(e) => {
                    eprintln!("    {} failed: {e:#}", group.label());
                    rows.push(Figure::error(group.label(), &e));
                }
            }
            eprintln!("    {:.1} s", started.elapsed().as_secs_f64());
        }
        if self.settings.smoke {
            for row in &mut rows {
                if matches!(row.status, Status::Met | Status::Missed) {
                    row.status = Status::Smoke;
                }
            }
        }
        rows
    }

    /// Stop what this run started and is still running.
    pub fn finish(&mut self) {
        if let Some(mut pg) = self.postgres.take() {
            pg.stop();
        }
    }
}
