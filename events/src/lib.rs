//! # picloud-events
//!
//! The event log (the single source of truth), its two storage backends, the
//! projections built from it, and the domain events of PiCloud.
//!
//! Layout (each module is one room):
//! - `event`: expected versions, metadata, new and recorded events, browse filters.
//! - `error`: `StoreError` and the typed `VersionConflict`.
//! - `store`: the `Store` trait; `store/sqlite.rs`, `store/postgres.rs` backends
//!   (same file names under each: `readmodel.rs`; PostgreSQL adds `listener.rs`);
//!   `store/sql.rs`, what both share; `store/conformance.rs`, the one suite both
//!   backends pass (run by `tests/sqlite.rs` and `tests/postgres.rs`).
//! - `migrate`: embedded SQL migrations for both backends.
//! - `kv`: the scripts' key-value store (a table beside the log).
//! - `readmodel`: documents that projections write (admin read models).
//! - `projection`: the `Projection` trait, catch-up, rebuild and follow.
//! - `snapshot`: compact (postcard) snapshots of in-memory models.
//! - `upcast`: old event schema versions brought up to date on read.
//! - `transfer`: the export file format; `picloud export` / `picloud import`.
//! - `domain`: PiCloud's events (apps, scripts, routes, users, invocations).

pub mod cluster;
pub mod domain;
pub mod error;
pub mod event;
pub mod kv;
pub mod migrate;
pub mod projection;
pub mod readmodel;
pub mod snapshot;
pub mod store;
pub mod transfer;
pub mod upcast;

pub use cluster::{NodeRow, NodeState};
pub use error::{StoreError, VersionConflict};
pub use event::{
    Appended, EncodedEvent, EventFilter, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
    StreamWrite,
};
pub use kv::{KvEntry, KvError};
pub use readmodel::{Delivery, DeliveryLease, Doc, DocQuery, EncodedDoc, RowOp};
pub use store::{Backend, ReadAll, ReadSelected, Selection, Store, open, sqlite_url};
