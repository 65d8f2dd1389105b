//! A projection batch's ops folded into what they leave behind, row by row.
//!
//! A batch is applied in one transaction, so only each row's final state is
//! visible to anyone: every document ends put or deleted, every outbox row
//! ends put or deleted. Folding first lets a backend write a batch of any size
//! in a handful of statements — one read of the stored documents that merges
//! start from, one delete and one upsert per table — instead of a statement or
//! two per op. Under load an asynchronous invocation's request and its outcome
//! often fall in one batch: its document is then written once, whole, and its
//! outbox row only deleted.

use std::collections::HashMap;

use crate::readmodel::{self, Delivery, Doc, RowOp};

/// A document's address.
pub(crate) type DocKey = (String, String);

/// What a batch leaves behind, in the order each row was first touched.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Folded {
    pub delete_docs: Vec<DocKey>,
    pub put_docs: Vec<Doc>,
    pub delete_deliveries: Vec<String>,
    pub put_deliveries: Vec<Delivery>,
}

/// The documents whose stored version a merge of the batch starts from: those
/// merged before the batch puts or deletes them. Fetch them (locked for
/// update), then `fold`.
pub(crate) fn merge_bases(ops: &[RowOp]) -> Vec<DocKey> {
    let mut touched = std::collections::HashSet::new();
    let mut bases = Vec::new();
    for op in ops {
        match op {
            RowOp::Put(doc) => {
                touched.insert((doc.collection.as_str(), doc.key.as_str()));
            }
            RowOp::Delete { collection, key } => {
                touched.insert((collection.as_str(), key.as_str()));
            }
            RowOp::Merge(doc) => {
                if touched.insert((doc.collection.as_str(), doc.key.as_str())) {
                    bases.push((doc.collection.clone(), doc.key.clone()));
                }
            }
            RowOp::PutDelivery(_) | RowOp::DeleteDelivery { .. } => {}
        }
    }
    bases
}

/// Fold `ops` in order; `stored` holds the documents `merge_bases` named (a
/// missing one does not exist: the merge inserts).
pub(crate) fn fold(ops: Vec<RowOp>, mut stored: HashMap<DocKey, Doc>) -> Folded {
    let mut docs: Vec<(DocKey, Option<Doc>)> = Vec::new();
    let mut doc_at: HashMap<DocKey, usize> = HashMap::new();
    let mut deliveries: Vec<(String, Option<Delivery>)> = Vec::new();
    let mut delivery_at: HashMap<String, usize> = HashMap::new();
    fn set<K: Clone + Eq + std::hash::Hash, V>(
        rows: &mut Vec<(K, Option<V>)>,
        at: &mut HashMap<K, usize>,
        key: K,
        value: Option<V>,
    ) {
        match at.get(&key) {
            Some(&i) => rows[i].1 = value,
            None => {
                at.insert(key.clone(), rows.len());
                rows.push((key, value));
            }
        }
    }
    for op in ops {
        match op {
            RowOp::Put(doc) => {
                let key = (doc.collection.clone(), doc.key.clone());
                set(&mut docs, &mut doc_at, key, Some(doc));
            }
            RowOp::Delete { collection, key } => {
                set(&mut docs, &mut doc_at, (collection, key), None);
            }
            RowOp::Merge(update) => {
                let key = (update.collection.clone(), update.key.clone());
                let base = match doc_at.get(&key) {
                    Some(&i) => docs[i].1.take(),
                    None => stored.remove(&key),
                };
                let merged = match base {
                    Some(base) => readmodel::merge(base, update),
                    None => update,
                };
                set(&mut docs, &mut doc_at, key, Some(merged));
            }
            RowOp::PutDelivery(delivery) => {
                let key = delivery.invocation_id.clone();
                set(&mut deliveries, &mut delivery_at, key, Some(delivery));
            }
            RowOp::DeleteDelivery { invocation_id } => {
                set(&mut deliveries, &mut delivery_at, invocation_id, None);
            }
        }
    }
    let mut folded = Folded::default();
    for (key, end) in docs {
        match end {
            Some(doc) => folded.put_docs.push(doc),
            None => folded.delete_docs.push(key),
        }
    }
    for (id, end) in deliveries {
        match end {
            Some(delivery) => folded.put_deliveries.push(delivery),
            None => folded.delete_deliveries.push(id),
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(key: &str, sort: i64, tag1: Option<&str>, body: serde_json::Value) -> Doc {
        Doc {
            collection: "c".into(),
            key: key.into(),
            app: None,
            sort,
            tag1: tag1.map(str::to_owned),
            tag2: None,
            body,
        }
    }

    fn delivery(id: &str, version: u64) -> Delivery {
        Delivery {
            invocation_id: id.into(),
            app: "a".into(),
            stream_version: version,
            attempt: 0,
            due_at: 1,
            lease: None,
        }
    }

    #[test]
    fn each_row_ends_as_its_last_op_left_it() {
        let ops = vec![
            RowOp::Put(doc("a", 1, Some("queued"), json!({"x": 1, "y": 1}))),
            RowOp::Put(doc("b", 2, None, json!({}))),
            RowOp::Merge(doc("a", 0, Some("done"), json!({"y": 2}))),
            RowOp::Delete {
                collection: "c".into(),
                key: "b".into(),
            },
            RowOp::Merge(doc("m", 0, Some("done"), json!({"z": 3}))),
            RowOp::Merge(doc("n", 0, None, json!({"z": 4}))),
            RowOp::PutDelivery(delivery("d1", 1)),
            RowOp::PutDelivery(delivery("d2", 1)),
            RowOp::DeleteDelivery {
                invocation_id: "d1".into(),
            },
            RowOp::PutDelivery(delivery("d2", 2)),
        ];
        assert_eq!(
            merge_bases(&ops),
            vec![("c".into(), "m".into()), ("c".into(), "n".into())]
        );
        let stored = HashMap::from([(
            ("c".to_owned(), "m".to_owned()),
            doc("m", 7, Some("queued"), json!({"w": 0, "z": 0})),
        )]);
        let folded = fold(ops, stored);
        assert_eq!(
            folded,
            Folded {
                delete_docs: vec![("c".into(), "b".into())],
                put_docs: vec![
                    doc("a", 1, Some("done"), json!({"x": 1, "y": 2})),
                    doc("m", 7, Some("done"), json!({"w": 0, "z": 3})),
                    // Nothing stored: the merge inserts.
                    doc("n", 0, None, json!({"z": 4})),
                ],
                delete_deliveries: vec!["d1".into()],
                put_deliveries: vec![delivery("d2", 2)],
            }
        );
    }

    #[test]
    fn a_merge_after_a_delete_starts_from_nothing_and_a_put_after_a_merge_wins() {
        let ops = vec![
            RowOp::Delete {
                collection: "c".into(),
                key: "a".into(),
            },
            RowOp::Merge(doc("a", 0, None, json!({"y": 2}))),
            RowOp::Merge(doc("b", 0, None, json!({"y": 2}))),
            RowOp::Put(doc("b", 5, None, json!({"p": 1}))),
        ];
        // "a" was deleted first, "b" merged first: only "b" needs its stored doc.
        assert_eq!(merge_bases(&ops), vec![("c".into(), "b".into())]);
        let stored = HashMap::from([(
            ("c".to_owned(), "a".to_owned()),
            doc("a", 9, None, json!({"old": true})),
        )]);
        let folded = fold(ops, stored);
        assert_eq!(
            folded.put_docs,
            vec![
                doc("a", 0, None, json!({"y": 2})),
                doc("b", 5, None, json!({"p": 1}))
            ]
        );
        assert!(folded.delete_docs.is_empty());
        assert_eq!(fold(Vec::new(), HashMap::new()), Folded::default());
    }
}
