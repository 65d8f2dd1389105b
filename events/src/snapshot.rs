//! Compact snapshots of in-memory models (postcard bytes), so start-up replays
//! only the tail of the log.
//!
//! The first byte is the envelope's format version. postcard is not
//! self-describing, so bytes of another format would decode into garbage rather
//! than fail: an unknown format byte makes `decode` answer `None` ("no usable
//! snapshot, replay from the start") instead. A model that changes its own shape
//! should also change its snapshot name (e.g. `catalog-v2`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// Bump when the envelope (not a model) changes.
pub const FORMAT: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(value, vec![FORMAT])
        .map_err(|e| StoreError::Invalid(format!("snapshot encoding failed: {e}")))
}

/// `Ok(None)` for a snapshot of another format; an error for bytes that claim
/// this format but do not decode.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT, body)) => postcard::from_bytes(body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("snapshot decoding failed: {e}"))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Model {
        names: Vec<String>,
        count: u64,
    }

    #[test]
    fn a_snapshot_round_trips() {
        let model = Model {
            names: vec!["a".into(), "b".into()],
            count: 7,
        };
        let bytes = encode(&model).unwrap();
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(decode::<Model>(&bytes).unwrap(), Some(model));
    }

    #[test]
    fn a_snapshot_of_another_format_is_ignored() {
        let mut bytes = encode(&Model {
            names: vec![],
            count: 1,
        })
        .unwrap();
        bytes[0] = FORMAT.wrapping_add(1);
        assert_eq!(decode::<Model>(&bytes).unwrap(), None);
        assert_eq!(decode::<Model>(&[]).unwrap(), None);
    }

    #[test]
    fn truncated_bytes_are_an_error_not_a_model() {
        let bytes = encode(&Model {
            names: vec!["long enough".into()],
            count: 1,
        })
        .unwrap();
        assert!(decode::<Model>(&bytes[..4]).is_err());
    }
}
