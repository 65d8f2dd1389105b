//! The versions the node's own appends left streams at, kept by the link
//! (`link.rs`) and sent with each call of `picloud_append` (migration 0010), so
//! that a stream this node writes again skips its lock and its version probe.
//!
//! Why it is safe: versions are dense and the log is append-only, so a version
//! learnt from an append that committed can only fall behind the stream (when
//! another node appends to it), never run ahead of it. Behind, the call meets an
//! existing (stream, version) in the unique index and writes nothing; the caller
//! forgets the streams of that call and sends it again the locked way, which
//! answers with a conflict or the next versions. A claim of a new stream
//! (`NoStream`, `Exact(0)`) is sent as known at 0 for the same reason: 0 is never
//! ahead. Only a lost commit could leave a stream behind what was learnt (a
//! server that crashed with `synchronous_commit = off`, a failover to a standby
//! that lagged); both drop the connection, and the link forgets everything
//! whenever it connects.
//!
//! Bounded: past `MAX` streams the map starts again empty, costing each stream
//! one locked call.

use std::collections::HashMap;

use crate::event::{Appended, EncodedEvent, ExpectedVersion, StreamWrite};

const MAX: usize = 4_096;

#[derive(Default)]
pub(super) struct Known {
    versions: HashMap<String, u64>,
}

impl Known {
    /// The version to send as known for `write`, if one satisfies its
    /// expectation: the learnt one (for any version, or exactly that one), or
    /// 0 for a claim of a new stream.
    pub(super) fn claim(&self, write: &StreamWrite<EncodedEvent>) -> Option<i64> {
        let learnt = self.versions.get(&write.stream).copied();
        let version = match write.expected {
            ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => Some(0),
            ExpectedVersion::Any => learnt,
            ExpectedVersion::Exact(v) => learnt.filter(|&l| l == v),
        };
        version.and_then(|v| i64::try_from(v).ok())
    }

    /// Remember where `appended` (committed) left its streams.
    pub(super) fn learn(&mut self, appended: &[Appended]) {
        for a in appended {
            if let Some(version) = self.versions.get_mut(&a.stream) {
                *version = a.last_version;
                continue;
            }
            if self.versions.len() >= MAX {
                self.versions.clear();
            }
            self.versions.insert(a.stream.clone(), a.last_version);
        }
    }

    /// Forget `writes`' streams: a call that sent them as known met a version
    /// already taken.
    pub(super) fn forget<'a>(
        &mut self,
        writes: impl IntoIterator<Item = &'a StreamWrite<EncodedEvent>>,
    ) {
        for write in writes {
            self.versions.remove(&write.stream);
        }
    }

    /// Forget every stream (a new connection: commits may have been lost).
    pub(super) fn clear(&mut self) {
        self.versions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Metadata;

    fn write(stream: &str, expected: ExpectedVersion) -> StreamWrite<EncodedEvent> {
        let event = EncodedEvent::new("E", "{}".to_owned(), &Metadata::default()).expect("encode");
        StreamWrite {
            stream: stream.to_owned(),
            expected,
            events: vec![event],
        }
    }

    fn appended(stream: &str, last_version: u64) -> Appended {
        Appended {
            stream: stream.to_owned(),
            first_version: last_version,
            last_version,
            last_position: 1,
        }
    }

    #[test]
    fn a_learnt_version_is_claimed_only_where_it_satisfies_the_expectation() {
        let mut known = Known::default();
        assert_eq!(known.claim(&write("s", ExpectedVersion::Any)), None);
        assert_eq!(known.claim(&write("s", ExpectedVersion::Exact(3))), None);
        known.learn(&[appended("s", 3)]);
        assert_eq!(known.claim(&write("s", ExpectedVersion::Any)), Some(3));
        assert_eq!(known.claim(&write("s", ExpectedVersion::Exact(3))), Some(3));
        // Another expectation goes the locked way, which decides it.
        assert_eq!(known.claim(&write("s", ExpectedVersion::Exact(2))), None);
        assert_eq!(known.claim(&write("s", ExpectedVersion::Exact(4))), None);
        // A claim of a new stream is known at 0, learnt or not.
        assert_eq!(known.claim(&write("s", ExpectedVersion::NoStream)), Some(0));
        assert_eq!(known.claim(&write("t", ExpectedVersion::Exact(0))), Some(0));
        known.forget([&write("s", ExpectedVersion::Any)]);
        assert_eq!(known.claim(&write("s", ExpectedVersion::Any)), None);
    }

    #[test]
    fn the_map_starts_again_past_its_bound() {
        let mut known = Known::default();
        for i in 0..MAX {
            known.learn(&[appended(&format!("s{i}"), 1)]);
        }
        known.learn(&[appended("s0", 2)]);
        assert_eq!(known.versions.len(), MAX, "an update adds nothing");
        known.learn(&[appended("new", 1)]);
        assert_eq!(known.versions.len(), 1);
        assert_eq!(known.claim(&write("new", ExpectedVersion::Any)), Some(1));
    }
}
