//! Export and import of the whole event log: `picloud export` / `picloud import`.
//!
//! The file is JSON Lines, UTF-8, one object per line:
//!
//! ```text
//! {"format":"picloud-log","version":1,"exported_at":"2026-11-23T10:00:00Z","backend":"sqlite","head_position":1234}
//! {"position":1,"stream":"app-…","version":1,"type":"AppCreated","data":{…},"metadata":{…},"recorded_at":"…"}
//! …one line per event, in position order…
//! {"kv":{"app":"…","key":"…","value":"<JSON text>","updated_at":"…"}}
//! …one line per kv key (scripts' data beside the log), in (app, key) order…
//! {"end":true,"events":1234,"last_position":1234,"kv":56,"sha256":"<hex>"}
//! ```
//!
//! Version 2 added the kv lines and the trailer's `kv` count; version 1 files
//! (events only) still import. Secrets stay sealed: the importing node needs the
//! same master key.
//!
//! `sha256` is the SHA-256 of every byte before the trailer line (the header and
//! each event line with its `\n`). A reader verifies the header, every line, the
//! count and the checksum before it returns anything, so a truncated or altered
//! file is refused before an import writes a single row. Events are written at
//! their current schema (old schemas are upcast when read). Positions, stream
//! versions, metadata and times are kept; read models are not exported, the
//! importing node's projections rebuild them from the log.

use std::io::{BufRead, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::kv::KvRow;
use crate::store::{Backend, Store};

/// The `format` of the header line.
pub const FORMAT: &str = "picloud-log";
/// The version of the file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this build still reads.
pub const OLDEST_VERSION: u32 = 1;

const PAGE: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not a complete, unaltered export this build can read.
    #[error("line {line}: {message}")]
    Format { line: usize, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn format_error(line: usize, message: impl Into<String>) -> TransferError {
    TransferError::Format {
        line,
        message: message.into(),
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    exported_at: DateTime<Utc>,
    backend: String,
    head_position: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    end: bool,
    events: u64,
    last_position: i64,
    #[serde(default)]
    kv: u64,
    sha256: String,
}

/// A kv line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KvLine {
    kv: KvRow,
}

/// A whole verified export.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Export {
    pub events: Vec<RecordedEvent>,
    pub kv: Vec<KvRow>,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub events: u64,
    pub last_position: i64,
    pub kv: u64,
}

/// Write every event up to the head at the start of the export. A live node may
/// keep appending: what commits after the export began is left for the next one.
pub async fn export(
    store: &dyn Store,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, TransferError> {
    let head = store.head_position().await?;
    let mut hasher = Sha256::new();
    let mut write_line = |out: &mut (dyn Write + Send), line: &[u8]| -> std::io::Result<()> {
        hasher.update(line);
        hasher.update(b"\n");
        out.write_all(line)?;
        out.write_all(b"\n")
    };
    let header = Header {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        exported_at: Utc::now(),
        backend: match store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .into(),
        head_position: head,
    };
    write_line(out, &to_json(&header)?)?;

    let mut wakeups = store.wakeups();
    let mut after = 0;
    let mut events = 0u64;
    while after < head {
        let page = store.read_all(after, PAGE).await?;
        if page.events.is_empty() {
            if !page.pending {
                break;
            }
            // An older transaction still holds positions below the head: its
            // commit wakes us (bounded, in case the signal was missed).
            let _ = tokio::time::timeout(Duration::from_millis(100), wakeups.changed()).await;
            continue;
        }
        for event in page.events {
            if event.position > head {
                after = head;
                break;
            }
            after = event.position;
            write_line(out, &to_json(&event)?)?;
            events += 1;
        }
    }
    // The scripts' kv data as it is now (it has no positions to pin it to).
    let mut kv = 0u64;
    let mut cursor = (String::new(), String::new());
    loop {
        let rows = store.kv_scan((&cursor.0, &cursor.1), PAGE).await?;
        let Some(last) = rows.last() else {
            break;
        };
        cursor = (last.app.clone(), last.entry.key.clone());
        for row in rows {
            write_line(out, &to_json(&KvLine { kv: row })?)?;
            kv += 1;
        }
    }
    let trailer = Trailer {
        end: true,
        events,
        last_position: after,
        kv,
        sha256: hex::encode(hasher.finalize()),
    };
    let line = to_json(&trailer)?;
    out.write_all(&line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(ExportSummary {
        events,
        last_position: after,
        kv,
    })
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, TransferError> {
    serde_json::to_vec(value).map_err(|e| format_error(0, format!("cannot encode: {e}")))
}

/// Read and verify a whole export: header, every event and kv line, the
/// trailer's counts and checksum. Nothing is returned unless all of it holds.
pub fn read_export(input: impl BufRead) -> Result<Export, TransferError> {
    let mut hasher = Sha256::new();
    let mut header_seen = false;
    let mut events = Vec::new();
    let mut kv = Vec::new();
    let mut trailer: Option<(usize, Trailer)> = None;
    for (n, line) in input.split(b'\n').enumerate() {
        let number = n + 1;
        let line = line?;
        if let Some((at, _)) = &trailer {
            if line.is_empty() {
                continue;
            }
            return Err(format_error(
                number,
                format!("data after the trailer on line {at}"),
            ));
        }
        if !header_seen {
            let header: Header = serde_json::from_slice(&line)
                .map_err(|e| format_error(number, format!("not an export header: {e}")))?;
            if header.format != FORMAT {
                return Err(format_error(
                    number,
                    format!("format is {:?}, expected {FORMAT:?}", header.format),
                ));
            }
            if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&header.version) {
                return Err(format_error(
                    number,
                    format!(
                        "format version {} is not supported (this build reads \
                         {OLDEST_VERSION} to {FORMAT_VERSION})",
                        header.version
                    ),
                ));
            }
            header_seen = true;
        } else if line.starts_with(br#"{"end""#) {
            let t: Trailer = serde_json::from_slice(&line)
                .map_err(|e| format_error(number, format!("bad trailer: {e}")))?;
            trailer = Some((number, t));
            continue;
        } else if line.starts_with(br#"{"kv""#) {
            let row: KvLine = serde_json::from_slice(&line)
                .map_err(|e| format_error(number, format!("bad kv line: {e}")))?;
            kv.push(row.kv);
        } else {
            if !kv.is_empty() {
                return Err(format_error(number, "an event after the kv lines"));
            }
            let event: RecordedEvent = serde_json::from_slice(&line)
                .map_err(|e| format_error(number, format!("bad event: {e}")))?;
            events.push(event);
        }
        hasher.update(&line);
        hasher.update(b"\n");
    }
    if !header_seen {
        return Err(format_error(1, "the file is empty"));
    }
    let Some((at, trailer)) = trailer else {
        return Err(format_error(
            events.len() + 1,
            "no trailer: the file is truncated",
        ));
    };
    if trailer.kv != kv.len() as u64 {
        return Err(format_error(
            at,
            format!(
                "the trailer counts {} kv keys, the file holds {}",
                trailer.kv,
                kv.len()
            ),
        ));
    }
    if !trailer.end || trailer.events != events.len() as u64 {
        return Err(format_error(
            at,
            format!(
                "the trailer counts {} events, the file holds {}",
                trailer.events,
                events.len()
            ),
        ));
    }
    let last = events.last().map_or(0, |e| e.position);
    if trailer.last_position != last {
        return Err(format_error(
            at,
            format!(
                "the trailer's last position is {}, the last event's {last}",
                trailer.last_position
            ),
        ));
    }
    if hex::encode(hasher.finalize()) != trailer.sha256 {
        return Err(format_error(
            at,
            "checksum mismatch: the file was altered or damaged",
        ));
    }
    Ok(Export { events, kv })
}

/// Load a verified export into an empty store (see `Store::import`).
pub async fn import(store: &dyn Store, export: &Export) -> Result<(), TransferError> {
    store.import(&export.events, &export.kv).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_without_kv_lines_still_reads() {
        let header = r#"{"format":"picloud-log","version":1,"exported_at":"2026-01-01T00:00:00Z","backend":"sqlite","head_position":1}"#;
        let event = r#"{"position":1,"stream":"a","version":1,"type":"E","data":{},"metadata":{"schema":1},"recorded_at":"2026-01-01T00:00:00Z"}"#;
        let mut hasher = Sha256::new();
        for line in [header, event] {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        let trailer = format!(
            r#"{{"end":true,"events":1,"last_position":1,"sha256":"{}"}}"#,
            hex::encode(hasher.finalize())
        );
        let file = format!("{header}\n{event}\n{trailer}\n");
        let export = read_export(file.as_bytes()).expect("a v1 export reads");
        assert_eq!(export.events.len(), 1);
        assert!(export.kv.is_empty());
        let future = file.replace(r#""version":1"#, r#""version":3"#);
        let err = read_export(future.as_bytes()).expect_err("a newer format");
        assert!(err.to_string().contains("not supported"), "{err}");
    }
}
