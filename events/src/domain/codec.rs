//! Turning domain event enums into `NewEvent`s and recorded events back into enums.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::{Metadata, NewEvent, RecordedEvent};

/// A domain event enum, serialised with `#[serde(tag = "type", content = "data")]`.
pub trait DomainEvent: Serialize + DeserializeOwned {}

/// Encode a domain event: the variant name becomes the event type.
pub fn encode<E: DomainEvent>(event: &E, metadata: &Metadata) -> NewEvent {
    let mut value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    let event_type = value
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("Unknown")
        .to_owned();
    let data = value
        .as_object_mut()
        .and_then(|o| o.remove("data"))
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    NewEvent {
        event_type,
        data,
        metadata: metadata.clone(),
    }
}

/// Decode a recorded event into `E`; `None` when the type belongs to another enum.
pub fn decode<E: DomainEvent>(event: &RecordedEvent) -> Option<E> {
    decode_parts(&event.event_type, &event.data)
}

/// Decode an event that is about to be appended (to fold it after the append).
pub fn decode_new<E: DomainEvent>(event: &NewEvent) -> Option<E> {
    decode_parts(&event.event_type, &event.data)
}

fn decode_parts<E: DomainEvent>(event_type: &str, data: &serde_json::Value) -> Option<E> {
    let value = serde_json::json!({ "type": event_type, "data": data });
    serde_json::from_value(value).ok()
}

/// Serde adapter: a value stored as its JSON text, so formats that are not
/// self-describing (postcard snapshots) can carry types that rely on
/// `deserialize_any` (`serde_json::Value`) or skip fields (`Overrides`).
pub mod json_text {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(deserializer)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}
