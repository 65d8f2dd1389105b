//! Export and import of the whole event log: `picloud export` / `picloud import`.
//!
//! The file is JSON Lines, UTF-8, one object per line:
//!
//! ```text
//! {"format":"picloud-log","version":1,"exported_at":"2026-11-23T10:00:00Z","backend":"sqlite","head_position":1234}
//! {"position":1,"stream":"app-…","version":1,"type":"AppCreated","data":{…},"metadata":{…},"recorded_at":"…"}
//! …one line per event, in position order…
//! {"end":true,"events":1234,"last_position":1234,"sha256":"<hex>"}
//! ```
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
use crate::store::{Backend, Store};

/// The `format` of the header line.
pub const FORMAT: &str = "picloud-log";
/// The version of the file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

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
    sha256: String,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub events: u64,
    pub last_position: i64,
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
    let trailer = Trailer {
        end: true,
        events,
        last_position: after,
        sha256: hex::encode(hasher.finalize()),
    };
    let line = to_json(&trailer)?;
    out.write_all(&line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(ExportSummary {
        events,
        last_position: after,
    })
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, TransferError> {
    serde_json::to_vec(value).map_err(|e| format_error(0, format!("cannot encode: {e}")))
}

/// Read and verify a whole export: header, every event line, the trailer's count
/// and checksum. Nothing is returned unless all of it holds.
pub fn read_export(input: impl BufRead) -> Result<Vec<RecordedEvent>, TransferError> {
    let mut hasher = Sha256::new();
    let mut header_seen = false;
    let mut events = Vec::new();
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
            if header.version != FORMAT_VERSION {
                return Err(format_error(
                    number,
                    format!(
                        "format version {} is not supported (this build reads {FORMAT_VERSION})",
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
        } else {
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
    Ok(events)
}

/// Load verified events into an empty store (see `Store::import`).
pub async fn import(store: &dyn Store, events: &[RecordedEvent]) -> Result<(), TransferError> {
    store.import(events).await?;
    Ok(())
}
