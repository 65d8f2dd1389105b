//! Layering: defaults < file < environment < flags, and where each setting came from.
//!
//! clap already layers defaults, environment and flags, and says which one gave a
//! value (`ArgMatches::value_source`). The file slots in underneath: its values
//! become the flags' defaults before the command line is parsed, so clap's own
//! precedence and value parsers apply to them unchanged and [`ServeArgs`] stays the
//! only typed copy of the settings. What clap does not model (the master key and
//! the sandbox knobs, which are no flags) is layered here by hand, in the same order.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use picloud_sandbox::{CEILING_ENV_PREFIX, DEFAULT_ENV_PREFIX, KNOB_NAMES, LimitSettings};

use super::file::{ConfigFile, MASTER_KEY};
use super::{Secret, ServeArgs};
use crate::cli::{Cli, Command};

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "file {}:{line}", path.display()),
            Source::Env(var) => write!(f, "env {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// One effective setting: its key (as in the file), its value as text (`None`:
/// unset) and its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: Option<String>,
    pub source: Source,
}

/// The log settings (global flags, so every command has them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    pub level: String,
    pub format: Option<String>,
}

/// What `picloud serve` runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub serve: ServeArgs,
    pub log: LogSettings,
    /// Every setting with its source, in `serve --help` order, then the master key
    /// and the sandbox knobs.
    pub origins: Vec<Setting>,
    /// Unusable environment values that were ignored (the contract keeps the
    /// default for a bad `PICLOUD_SANDBOX_CEILING_*` and warns).
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn origin(&self, key: &str) -> Option<&Setting> {
        self.origins.iter().find(|s| s.key == key)
    }
}

#[derive(Debug)]
pub enum LoadError {
    /// The command line itself is wrong: clap's message, exit status 2.
    Usage(clap::Error),
    /// A setting is invalid: one line naming it (and the file and line when it
    /// came from the file), exit status 1.
    Invalid(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Usage(e) => write!(f, "{}", e.render()),
            LoadError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for LoadError {}

/// Flags that are not settings of the file.
const NOT_IN_FILE: [&str; 3] = ["config", "help", "version"];

/// The settings of `argv` (a `picloud serve …` command line) over the current
/// environment and the configuration file it names (`--config` or
/// `PICLOUD_CONFIG`), validated.
pub fn load(argv: &[OsString]) -> Result<Settings, LoadError> {
    let first = Cli::command()
        .try_get_matches_from(argv)
        .map_err(LoadError::Usage)?;
    let serve_matches = || {
        first
            .subcommand_matches("serve")
            .ok_or_else(|| LoadError::Invalid("not a serve command line".into()))
    };
    let file = match serve_matches()?.get_one::<PathBuf>("config") {
        Some(path) => Some(ConfigFile::read(path, &file_settings()).map_err(LoadError::Invalid)?),
        None => None,
    };
    let matches = parse_over_file(argv, file.as_ref(), serve_matches()?)?;
    let cli = Cli::from_arg_matches(&matches).map_err(LoadError::Usage)?;
    let Command::Serve(mut serve) = cli.command else {
        return Err(LoadError::Invalid("not a serve command line".into()));
    };
    let sub = matches
        .subcommand_matches("serve")
        .ok_or_else(|| LoadError::Invalid("not a serve command line".into()))?;

    let mut origins = flag_origins(sub, file.as_ref());
    let mut warnings = Vec::new();
    let env = |name: &str| std::env::var(name).ok();

    // The master key: the environment, then the file.
    let (master_key, source) =
        match env(picloud_actors::keys::MASTER_KEY_ENV).filter(|v| !v.trim().is_empty()) {
            Some(key) => (
                Some(key),
                Source::Env(picloud_actors::keys::MASTER_KEY_ENV.into()),
            ),
            None => match file.as_ref().and_then(|f| Some((f, f.get(MASTER_KEY)?))) {
                Some((f, entry)) => (Some(entry.value.clone()), file_source(f, entry)),
                None => (None, Source::Default),
            },
        };
    origins.push(Setting {
        key: MASTER_KEY.into(),
        value: master_key.clone(),
        source,
    });
    serve.master_key = master_key.map(Secret);

    // The sandbox knobs: defaults, the file's tables, then the environment.
    let mut sandbox = LimitSettings::default();
    for (table, prefix, limits) in [
        ("defaults", DEFAULT_ENV_PREFIX, &mut sandbox.defaults),
        ("ceilings", CEILING_ENV_PREFIX, &mut sandbox.ceilings.0),
    ] {
        let mut sources = vec![Source::Default; KNOB_NAMES.len()];
        if let Some(f) = &file {
            for (i, knob) in KNOB_NAMES.iter().enumerate() {
                let Some(entry) = f.get(&format!("sandbox.{table}.{knob}")) else {
                    continue;
                };
                let value = entry.value.parse::<u64>().map_err(|e| e.to_string());
                value
                    .and_then(|v| limits.set_knob(knob, v))
                    .map_err(|why| {
                        LoadError::Invalid(format!(
                            "{}: sandbox.{table}.{knob}: {why}",
                            f.location(entry)
                        ))
                    })?;
                sources[i] = file_source(f, entry);
            }
        }
        let (overlaid, found) = limits.overlay_env(prefix, env);
        *limits = overlaid;
        warnings.extend(found.warnings);
        for (i, knob) in KNOB_NAMES.iter().enumerate() {
            if found.set.contains(knob) {
                sources[i] = Source::Env(format!("{prefix}{}", knob.to_ascii_uppercase()));
            }
            origins.push(Setting {
                key: format!("sandbox.{table}.{knob}"),
                value: limits.get_knob(knob).map(|v| v.to_string()),
                source: sources[i].clone(),
            });
        }
    }
    serve.sandbox = sandbox;

    let log = LogSettings {
        level: cli.log_level,
        format: cli.log_format,
    };
    let settings = Settings {
        serve: *serve,
        log,
        origins,
        warnings,
    };
    validate(&settings)?;
    Ok(settings)
}

/// The keys of the file that are flags: `serve`'s and the global log flags.
fn file_settings() -> Vec<String> {
    let root = Cli::command();
    let mut keys: Vec<String> = root
        .get_arguments()
        .chain(
            root.find_subcommand("serve")
                .into_iter()
                .flat_map(|serve| serve.get_arguments()),
        )
        .map(|arg| arg.get_id().to_string())
        .filter(|id| !NOT_IN_FILE.contains(&id.as_str()))
        .collect();
    keys.dedup();
    keys
}

/// Parses `argv` with the file's values as the flags' defaults. A value clap
/// refuses that came from the file is reported with its key, file and line.
fn parse_over_file(
    argv: &[OsString],
    file: Option<&ConfigFile>,
    without_file: &ArgMatches,
) -> Result<ArgMatches, LoadError> {
    let Some(file) = file else {
        return Cli::command()
            .try_get_matches_from(argv)
            .map_err(LoadError::Usage);
    };
    let root = Cli::command();
    let global: Vec<String> = root
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    let settings = file_settings();
    let mut command = root;
    for entry in file.entries.iter().filter(|e| settings.contains(&e.key)) {
        let value = entry.value.clone();
        command = if global.contains(&entry.key) {
            command.mut_arg(&entry.key, |arg| arg.default_value(value))
        } else {
            command.mut_subcommand("serve", |serve| {
                serve.mut_arg(&entry.key, |arg| arg.default_value(value))
            })
        };
    }
    command.try_get_matches_from(argv).map_err(|e| {
        // Which flag clap refused, and whether the file gave its value.
        let refused = match e.get(clap::error::ContextKind::InvalidArg) {
            Some(clap::error::ContextValue::String(flag)) => flag.clone(),
            _ => return LoadError::Usage(e),
        };
        let from_file = file.entries.iter().find(|entry| {
            let flag = format!("--{}", entry.key.replace('_', "-"));
            refused.split_whitespace().next() == Some(flag.as_str())
                && !matches!(
                    without_file.value_source(&entry.key),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
        });
        match from_file {
            Some(entry) => {
                let why = std::error::Error::source(&e)
                    .map_or_else(|| e.kind().to_string(), ToString::to_string);
                LoadError::Invalid(format!(
                    "{}: {}: invalid value {:?}: {why}",
                    file.location(entry),
                    entry.key,
                    entry.value
                ))
            }
            None => LoadError::Usage(e),
        }
    })
}

/// Each flag's value and source, in `serve --help` order (log flags first).
fn flag_origins(sub: &ArgMatches, file: Option<&ConfigFile>) -> Vec<Setting> {
    let root = Cli::command();
    let Some(serve) = root.find_subcommand("serve") else {
        return Vec::new();
    };
    let mut origins = Vec::new();
    for arg in root.get_arguments().chain(serve.get_arguments()) {
        let id = arg.get_id().as_str();
        if NOT_IN_FILE.contains(&id) || origins.iter().any(|s: &Setting| s.key == id) {
            continue;
        }
        let value = sub.try_get_raw(id).ok().flatten().map(|values| {
            values
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",")
        });
        let source = match sub.value_source(id) {
            Some(ValueSource::CommandLine) => {
                Source::Flag(format!("--{}", arg.get_long().unwrap_or(id)))
            }
            Some(ValueSource::EnvVariable) => Source::Env(
                arg.get_env()
                    .map_or_else(String::new, |v| v.to_string_lossy().into_owned()),
            ),
            _ => match file.and_then(|f| Some((f, f.get(id)?))) {
                Some((f, entry)) => file_source(f, entry),
                None => Source::Default,
            },
        };
        origins.push(Setting {
            key: id.to_owned(),
            value,
            source,
        });
    }
    origins
}

fn file_source(file: &ConfigFile, entry: &super::file::Entry) -> Source {
    Source::File {
        path: file.path.clone(),
        line: entry.line,
    }
}

/// The checks beyond each value's type; an error from a file value names its line.
fn validate(settings: &Settings) -> Result<(), LoadError> {
    let located = |key: &str, message: String| match settings.origin(key).map(|s| &s.source) {
        Some(Source::File { path, line }) => {
            LoadError::Invalid(format!("{}:{line}: {key}: {message}", path.display()))
        }
        _ => LoadError::Invalid(message),
    };
    settings
        .serve
        .validate()
        .map_err(|invalid| located(invalid.key, invalid.message))?;
    crate::logging::parse_filter(&settings.log.level)
        .map_err(|message| located("log_level", message))?;
    Ok(())
}
