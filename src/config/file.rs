//! The configuration file: TOML, one key per setting (the flag's name with `_`
//! for `-`), plus `master_key` and the tables `[sandbox.defaults]` and
//! `[sandbox.ceilings]` (one key per sandbox knob). Every value keeps its line, so
//! an error names the key, the file and the line.

use std::path::{Path, PathBuf};

use picloud_sandbox::KNOB_NAMES;
use toml::de::{DeTable, DeValue};

/// One value read from the file, as text (what a flag would carry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `listen`, `master_key`, `sandbox.ceilings.max_operations`, …
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A configuration file read and checked for unknown keys and wrong shapes.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
}

/// The sandbox tables and what their keys mean.
pub const SANDBOX_TABLES: [&str; 2] = ["defaults", "ceilings"];
/// The key of the master key (never a flag: it would show in the process list).
pub const MASTER_KEY: &str = "master_key";

impl ConfigFile {
    /// Reads `path`; `settings` are the keys that name flags.
    pub fn read(path: &Path, settings: &[String]) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "{}: cannot read the configuration file: {e}",
                path.display()
            )
        })?;
        ConfigFile::parse(path, &text, settings)
    }

    pub fn parse(path: &Path, text: &str, settings: &[String]) -> Result<ConfigFile, String> {
        let at = |span: Option<std::ops::Range<usize>>| Location {
            path,
            line: span.map_or(1, |s| line_of(text, s.start)),
        };
        let root = DeTable::parse(text).map_err(|e| at(e.span()).error(e.message()))?;
        let mut entries = Vec::new();
        for (key, value) in root.get_ref() {
            let name = key.get_ref().as_ref();
            let here = at(Some(key.span()));
            if name == "sandbox" {
                sandbox_entries(value, &at, &mut entries)?;
            } else if name == MASTER_KEY || settings.iter().any(|s| s == name) {
                let text = scalar(value.get_ref(), name == "http_allow_cidrs")
                    .map_err(|why| here.error(format!("{name}: {why}")))?;
                entries.push(Entry {
                    key: name.to_owned(),
                    value: text,
                    line: here.line,
                });
            } else {
                let mut known: Vec<&str> = settings.iter().map(String::as_str).collect();
                known.extend([MASTER_KEY, "[sandbox.defaults]", "[sandbox.ceilings]"]);
                return Err(here.error(format!(
                    "unknown key `{name}` (known: {})",
                    known.join(", ")
                )));
            }
        }
        entries.sort_by_key(|e| e.line);
        Ok(ConfigFile {
            path: path.to_owned(),
            entries,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// `path:line` of a key.
    pub fn location(&self, entry: &Entry) -> String {
        format!("{}:{}", self.path.display(), entry.line)
    }
}

struct Location<'a> {
    path: &'a Path,
    line: usize,
}

impl Location<'_> {
    fn error(&self, what: impl std::fmt::Display) -> String {
        format!("{}:{}: {what}", self.path.display(), self.line)
    }
}

fn sandbox_entries<'a>(
    value: &toml::Spanned<DeValue<'_>>,
    at: &impl Fn(Option<std::ops::Range<usize>>) -> Location<'a>,
    entries: &mut Vec<Entry>,
) -> Result<(), String> {
    let DeValue::Table(tables) = value.get_ref() else {
        return Err(at(Some(value.span()))
            .error("sandbox: expected the tables [sandbox.defaults] and [sandbox.ceilings]"));
    };
    for (table, knobs) in tables {
        let table_name = table.get_ref().as_ref();
        let here = at(Some(table.span()));
        if !SANDBOX_TABLES.contains(&table_name) {
            return Err(here.error(format!(
                "unknown key `sandbox.{table_name}` (known: sandbox.defaults, sandbox.ceilings)"
            )));
        }
        let DeValue::Table(knobs) = knobs.get_ref() else {
            return Err(here.error(format!("sandbox.{table_name}: expected a table")));
        };
        for (knob, number) in knobs {
            let knob_name = knob.get_ref().as_ref();
            let here = at(Some(knob.span()));
            let key = format!("sandbox.{table_name}.{knob_name}");
            if !KNOB_NAMES.contains(&knob_name) {
                return Err(here.error(format!(
                    "unknown key `{key}` (known: {})",
                    KNOB_NAMES.join(", ")
                )));
            }
            let value = match number.get_ref() {
                DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .filter(|v| *v > 0 && u64::try_from(*v).is_ok())
                    .map(|v| v.to_string()),
                _ => None,
            }
            .ok_or_else(|| here.error(format!("{key}: expected a positive integer")))?;
            entries.push(Entry {
                key,
                value,
                line: here.line,
            });
        }
    }
    Ok(())
}

/// A value as the text a flag would carry. Arrays (of address ranges) are joined
/// with commas when `list` allows them.
fn scalar(value: &DeValue<'_>, list: bool) -> Result<String, String> {
    match value {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .map(|v| v.to_string())
            .map_err(|_| "integer out of range".to_owned()),
        DeValue::Boolean(b) => Ok(if *b { "1" } else { "0" }.to_owned()),
        DeValue::Array(items) if list => items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(s) => Ok(s.to_string()),
                _ => Err("expected a list of strings".to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        DeValue::Float(_) => Err("expected an integer or a string, not a float".into()),
        DeValue::Datetime(_) => Err("expected an integer or a string, not a date".into()),
        DeValue::Array(_) => Err("expected one value, not a list".into()),
        DeValue::Table(_) => Err("expected one value, not a table".into()),
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Vec<String> {
        ["listen", "slots", "http_allow_cidrs", "http_allow_private"]
            .map(String::from)
            .to_vec()
    }

    fn parse(text: &str) -> Result<ConfigFile, String> {
        ConfigFile::parse(Path::new("/etc/picloud.toml"), text, &settings())
    }

    #[test]
    fn values_become_flag_text_with_their_lines() {
        let file = parse(
            "listen = \"0.0.0.0:80\"\n\nslots = 0x10\nhttp_allow_private = true\n\
             http_allow_cidrs = [\"10.0.0.0/8\", \"fd00::/8\"]\n\
             [sandbox.ceilings]\nmax_operations = 1_000\n",
        )
        .expect("valid");
        let found: Vec<(&str, &str, usize)> = file
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            found,
            [
                ("listen", "0.0.0.0:80", 1),
                ("slots", "16", 3),
                ("http_allow_private", "1", 4),
                ("http_allow_cidrs", "10.0.0.0/8,fd00::/8", 5),
                ("sandbox.ceilings.max_operations", "1000", 7),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_wrong_shapes_name_key_file_and_line() {
        let cases = [
            (
                "listen = \"x\"\nslot = 2\n",
                "/etc/picloud.toml:2: unknown key `slot`",
            ),
            (
                "\n\nslots = 1.5\n",
                "/etc/picloud.toml:3: slots: expected an integer",
            ),
            (
                "[sandbox.limits]\nx = 1\n",
                "/etc/picloud.toml:1: unknown key `sandbox.limits`",
            ),
            (
                "[sandbox.ceilings]\n\nmax_ops = 1\n",
                "/etc/picloud.toml:3: unknown key `sandbox.ceilings.max_ops`",
            ),
            (
                "[sandbox.defaults]\ntimeout_ms = 0\n",
                "/etc/picloud.toml:2: sandbox.defaults.timeout_ms: expected a positive integer",
            ),
            (
                "listen = [\"a\"]\n",
                "/etc/picloud.toml:1: listen: expected one value",
            ),
            ("slots = \n", "/etc/picloud.toml:1: "),
        ];
        for (text, expected) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.starts_with(expected), "{text:?}: {err}");
        }
    }
}
