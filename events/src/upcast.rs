//! Upcasters: old schema versions of an event type brought to the current one on
//! read, so the domain only ever folds the current shape.
//!
//! Every read path of the store (`read_stream`, `read_all`, `browse`) passes its
//! events through [`upcast`]. To change an event's shape: bump the `schema` the
//! writer puts in `Metadata`, and add an arm here that turns the old `data` into the
//! new one and sets `metadata.schema` to the new version. Arms may chain (1 → 2,
//! then 2 → 3) because `upcast` repeats until no arm applies.

use crate::event::RecordedEvent;

/// Bring `event` to the current schema of its type.
pub fn upcast(mut event: RecordedEvent) -> RecordedEvent {
    while let Some(next) = upcast_once(&event) {
        event = next;
    }
    event
}

/// One step, or `None` when the event is current.
#[allow(clippy::match_single_binding)]
fn upcast_once(event: &RecordedEvent) -> Option<RecordedEvent> {
    match (event.event_type.as_str(), event.metadata.schema) {
        // No event type has an old version yet. An arm looks like the test's:
        // ("ScriptSaved", 1) => Some(step(event, 2, |data| { … })),
        _ => None,
    }
}

/// A copy of `event` at `schema`, with its data rewritten by `change`.
#[cfg_attr(not(test), allow(dead_code))]
fn step(
    event: &RecordedEvent,
    schema: u32,
    change: impl FnOnce(&mut serde_json::Value),
) -> RecordedEvent {
    let mut next = event.clone();
    change(&mut next.data);
    next.metadata.schema = schema;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Metadata;
    use serde_json::json;

    /// A made-up type whose v1 had one `name`, v2 split it, v3 added a default.
    fn upcast_greeting(event: &RecordedEvent) -> Option<RecordedEvent> {
        match (event.event_type.as_str(), event.metadata.schema) {
            ("GreetingSet", 1) => Some(step(event, 2, |data| {
                let name = data["name"].take();
                *data = json!({ "first": name, "last": null });
            })),
            ("GreetingSet", 2) => Some(step(event, 3, |data| {
                data["polite"] = json!(true);
            })),
            _ => None,
        }
    }

    fn recorded(event_type: &str, schema: u32, data: serde_json::Value) -> RecordedEvent {
        RecordedEvent {
            position: 1,
            stream: "s".into(),
            version: 1,
            event_type: event_type.into(),
            data,
            metadata: Metadata {
                schema,
                ..Metadata::default()
            },
            recorded_at: chrono::DateTime::from_timestamp_micros(0).unwrap(),
        }
    }

    #[test]
    fn an_old_version_is_upcast_step_by_step_to_the_current_one() {
        let mut event = recorded("GreetingSet", 1, json!({"name": "Ada"}));
        while let Some(next) = upcast_greeting(&event) {
            event = next;
        }
        assert_eq!(event.metadata.schema, 3);
        assert_eq!(
            event.data,
            json!({"first": "Ada", "last": null, "polite": true})
        );
        assert_eq!(event.position, 1);
    }

    #[test]
    fn current_events_pass_through_unchanged() {
        let event = recorded("AppCreated", 1, json!({"slug": "x"}));
        assert_eq!(upcast(event.clone()), event);
        let current = recorded("GreetingSet", 3, json!({"first": "A"}));
        assert_eq!(upcast_greeting(&current), None);
    }
}
