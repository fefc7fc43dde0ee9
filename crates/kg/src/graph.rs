//! The triple store: assertions kept in the gateway's own store (fjall, or its cluster replica), so they are as
//! durable as runs and ledgers, replicated with them in cluster mode, and written by the same committer.
//!
//! Keys (meta keyspace):
//! - `kg/a/<owner>/<assertion id>`: the assertion (its `to_dict` JSON);
//! - `kg/d/<owner>/<digest of scope, subject, predicate, object>`: the id of the first such assertion (dedupe);
//! - `kg/n/<owner>`: how many assertions the owner holds (the per-owner cap).
//!
//! A query reads every assertion of its owner (or of all owners) and filters them: the cap per owner bounds it.

use std::collections::HashMap;

use abstractgateway_store::{Batch, Store, StoreError};
use parking_lot::Mutex;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{Assertion, canonical_term, is_safe_id};

/// Assertions one owner may hold.
pub const MAX_PER_OWNER: u64 = 100_000;
/// Assertions one query may read when it spans every owner.
pub const MAX_SCAN: usize = 1_000_000;
/// Assertions one call may add.
pub const MAX_PER_CALL: usize = 1_000;

/// Why the graph refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KgError {
    /// A request the graph cannot serve as asked (the text says what to change).
    #[error("{0}")]
    Invalid(String),
    /// `query_text` asks for similarity search, which needs an embeddings model this gateway does not have.
    #[error(
        "query_text requires a configured embedder (vector search); keyword fallback is disabled"
    )]
    NoEmbedder,
    /// The owner holds its maximum.
    #[error("the knowledge graph of owner {owner} holds its maximum of {max} assertions")]
    Full { owner: String, max: u64 },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to read (the seed's `TripleQuery`; terms are compared canonically).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub subject: Option<String>,
    pub predicate: Option<String>,
    pub object: Option<String>,
    pub scope: Option<String>,
    /// `None`: every owner.
    pub owner_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub active_at: Option<String>,
    pub query_text: Option<String>,
    /// 0 or less: no limit.
    pub limit: i64,
    /// `asc`, else newest first.
    pub order: String,
}

/// What an add did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Added {
    /// The ids stored (or found stored under the same id: a repeated call), in input order.
    pub ids: Vec<String>,
    /// Assertions skipped because the same triple was already stored for the owner.
    pub skipped_duplicates: usize,
}

/// The triple store kept in one store. Cheap to make: it is a handle.
pub struct Graph {
    store: Store,
    /// The shard whose owner writes (cluster mode: the calling run's).
    shard: u32,
}

/// One writer at a time in this process (dedupe and the per-owner count are read, then written); in a cluster
/// only the runner holding the lease writes.
static WRITE: Mutex<()> = Mutex::new(());

fn assertion_key(owner: &str, id: &str) -> String {
    format!("kg/a/{owner}/{id}")
}

fn dedupe_key(owner: &str, a: &Assertion) -> String {
    let mut h = Sha256::new();
    for part in [&a.scope, &a.subject, &a.predicate, &a.object] {
        h.update(canonical_term(part).as_bytes());
        h.update([0]);
    }
    format!("kg/d/{owner}/{}", hex::encode(&h.finalize()[..16]))
}

fn count_key(owner: &str) -> String {
    format!("kg/n/{owner}")
}

fn checked_owner(owner: &str) -> Result<(), KgError> {
    if is_safe_id(owner) {
        Ok(())
    } else {
        Err(KgError::Invalid(format!(
            "owner_id must be 1..{} characters of [A-Za-z0-9_.:-]",
            crate::model::MAX_ID_BYTES
        )))
    }
}

impl Graph {
    pub fn new(store: Store) -> Graph {
        Graph { store, shard: 0 }
    }

    /// Writes as the owner of `shard` (cluster mode: the shard of the run that asserts).
    pub fn on_shard(mut self, shard: u32) -> Graph {
        self.shard = shard;
        self
    }

    /// Stores `assertions` (each with its owner and id set) in one durable commit. With `dedupe`, an assertion
    /// whose triple the owner already holds (same scope) is skipped, unless it is the very assertion stored
    /// before under the same id (a call repeated after a crash stores nothing twice and answers the same ids).
    pub fn add(&self, assertions: Vec<Assertion>, dedupe: bool) -> Result<Added, KgError> {
        if assertions.len() > MAX_PER_CALL {
            return Err(KgError::Invalid(format!(
                "at most {MAX_PER_CALL} assertions may be added at once; got {}",
                assertions.len()
            )));
        }
        let _one_writer = WRITE.lock();
        let mut batch = Batch::new();
        batch.set_shard(self.shard);
        let mut added = Added::default();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for a in assertions {
            let (Some(owner), Some(id)) = (a.owner_id.clone(), a.assertion_id.clone()) else {
                return Err(KgError::Invalid(
                    "an assertion needs its owner_id and assertion_id before it is stored".into(),
                ));
            };
            checked_owner(&owner)?;
            if !is_safe_id(&id) {
                return Err(KgError::Invalid(format!(
                    "assertion_id {id:?} must be 1..{} characters of [A-Za-z0-9_.:-]",
                    crate::model::MAX_ID_BYTES
                )));
            }
            let key = assertion_key(&owner, &id);
            let known = self.store.get_meta(&key)?.is_some();
            let dkey = dedupe_key(&owner, &a);
            if dedupe && !known && self.store.get_meta(&dkey)?.is_some() {
                added.skipped_duplicates += 1;
                continue;
            }
            if !known {
                let count = match counts.get(&owner) {
                    Some(n) => *n,
                    None => self.count(&owner)?,
                };
                if count >= MAX_PER_OWNER {
                    return Err(KgError::Full {
                        owner,
                        max: MAX_PER_OWNER,
                    });
                }
                counts.insert(owner.clone(), count + 1);
                let bytes = serde_json::to_vec(&a.to_json())
                    .map_err(|e| KgError::Invalid(format!("assertion is not JSON: {e}")))?;
                batch.put_meta(&key, &bytes);
                if self.store.get_meta(&dkey)?.is_none() {
                    batch.put_meta(&dkey, id.as_bytes());
                }
            }
            added.ids.push(id);
        }
        for (owner, n) in counts {
            batch.put_meta(&count_key(&owner), n.to_string().as_bytes());
        }
        if !batch.is_empty() {
            self.store.commit(batch)?;
        }
        Ok(added)
    }

    /// How many assertions `owner` holds.
    pub fn count(&self, owner: &str) -> Result<u64, KgError> {
        Ok(self
            .store
            .get_meta(&count_key(owner))?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// The assertions matching `q`: filters as the seed's stores apply them (terms exact after canonicalisation,
    /// `since`/`until` on `observed_at`, `active_at` inside `valid_from`..`valid_until`), ordered by `observed_at`
    /// (newest first unless `order` is `asc`), then limited.
    pub fn query(&self, q: &Query) -> Result<Vec<Assertion>, KgError> {
        if q.query_text
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
        {
            return Err(KgError::NoEmbedder);
        }
        let prefix = match &q.owner_id {
            Some(owner) => {
                checked_owner(owner)?;
                format!("kg/a/{owner}/")
            }
            None => "kg/a/".to_string(),
        };
        let limit = match &q.owner_id {
            Some(_) => MAX_PER_OWNER as usize + 1,
            None => MAX_SCAN,
        };
        let term = |v: &Option<String>| v.as_deref().map(canonical_term).filter(|s| !s.is_empty());
        let (subject, predicate, object, scope) = (
            term(&q.subject),
            term(&q.predicate),
            term(&q.object),
            term(&q.scope),
        );
        let mut out = Vec::new();
        for (_, bytes) in self.store.meta_scan(&prefix, limit)? {
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let Ok(a) = Assertion::from_json(&v, "") else {
                continue;
            };
            let matches = |want: &Option<String>, have: &str| {
                want.as_deref().is_none_or(|w| canonical_term(have) == w)
            };
            if !(matches(&subject, &a.subject)
                && matches(&predicate, &a.predicate)
                && matches(&object, &a.object)
                && matches(&scope, &a.scope))
            {
                continue;
            }
            if q.since
                .as_deref()
                .is_some_and(|s| a.observed_at.as_str() < s)
                || q.until
                    .as_deref()
                    .is_some_and(|u| a.observed_at.as_str() > u)
            {
                continue;
            }
            if let Some(at) = q.active_at.as_deref()
                && (a.valid_from.as_deref().is_some_and(|f| f > at)
                    || a.valid_until.as_deref().is_some_and(|u| u <= at))
            {
                continue;
            }
            out.push(a);
        }
        let asc = q.order.trim().eq_ignore_ascii_case("asc");
        out.sort_by(|x, y| {
            let o = x.observed_at.cmp(&y.observed_at);
            if asc { o } else { o.reverse() }
        });
        if q.limit > 0 {
            out.truncate(q.limit as usize);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assertion(owner: &str, id: &str, s: &str, p: &str, o: &str, at: &str) -> Assertion {
        let mut a = Assertion::from_json(
            &json!({"subject": s, "predicate": p, "object": o, "scope": "session", "observed_at": at}),
            at,
        )
        .unwrap();
        a.owner_id = Some(owner.into());
        a.assertion_id = Some(id.into());
        a
    }

    #[test]
    fn stores_filters_orders_and_dedupes_durably() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let g = Graph::new(store.clone());
        let first = g
            .add(
                vec![
                    assertion("s1", "a1", "ex:alice", "schema:name", "alice", "2026-01-01"),
                    assertion(
                        "s1",
                        "a2",
                        "ex:alice",
                        "rdf:type",
                        "schema:person",
                        "2026-01-02",
                    ),
                    assertion("s2", "b1", "ex:bob", "schema:name", "bob", "2026-01-03"),
                ],
                true,
            )
            .unwrap();
        assert_eq!(first.ids, ["a1", "a2", "b1"]);
        // The same triple again under another id is a duplicate; the same id again (a repeated call) is not.
        let again = g
            .add(
                vec![
                    assertion("s1", "a9", "EX:Alice", "schema:name", "Alice", "2026-02-01"),
                    assertion("s1", "a1", "ex:alice", "schema:name", "alice", "2026-01-01"),
                ],
                true,
            )
            .unwrap();
        assert_eq!(again.ids, ["a1"]);
        assert_eq!(again.skipped_duplicates, 1);
        assert_eq!(g.count("s1").unwrap(), 2);
        drop(g);
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        let g = Graph::new(store);
        let q = |q: Query| {
            g.query(&q)
                .unwrap()
                .into_iter()
                .map(|a| a.assertion_id.unwrap())
                .collect::<Vec<_>>()
        };
        let s1 = Query {
            owner_id: Some("s1".into()),
            ..Query::default()
        };
        assert_eq!(q(s1.clone()), ["a2", "a1"]);
        assert_eq!(
            q(Query {
                order: "asc".into(),
                ..s1.clone()
            }),
            ["a1", "a2"]
        );
        assert_eq!(
            q(Query {
                predicate: Some(" RDF:Type ".into()),
                ..s1.clone()
            }),
            ["a2"]
        );
        assert_eq!(
            q(Query {
                since: Some("2026-01-02".into()),
                ..s1.clone()
            }),
            ["a2"]
        );
        assert_eq!(q(Query { limit: 1, ..s1 }), ["a2"]);
        assert_eq!(q(Query::default()), ["b1", "a2", "a1"]);
        assert_eq!(
            g.query(&Query {
                query_text: Some("who".into()),
                ..Query::default()
            })
            .unwrap_err(),
            KgError::NoEmbedder
        );
        assert!(matches!(
            g.query(&Query {
                owner_id: Some("../x".into()),
                ..Query::default()
            }),
            Err(KgError::Invalid(_))
        ));
    }

    #[test]
    fn active_at_reads_the_validity_window() {
        let dir = tempfile::tempdir().unwrap();
        let g = Graph::new(Store::open(dir.path()).unwrap());
        let mut a = assertion("o", "x", "ex:a", "schema:location", "paris", "2026-01-01");
        a.valid_from = Some("2026-01-01".into());
        a.valid_until = Some("2026-06-01".into());
        g.add(vec![a], true).unwrap();
        let at = |t: &str| {
            g.query(&Query {
                owner_id: Some("o".into()),
                active_at: Some(t.into()),
                ..Query::default()
            })
            .unwrap()
            .len()
        };
        assert_eq!(at("2026-03-01"), 1);
        assert_eq!(at("2026-06-01"), 0);
        assert_eq!(at("2025-12-31"), 0);
    }

    #[test]
    fn an_owner_is_capped_and_a_call_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let g = Graph::new(Store::open(dir.path()).unwrap());
        let many: Vec<Assertion> = (0..=MAX_PER_CALL)
            .map(|i| assertion("o", &format!("i{i}"), "ex:a", "p", &i.to_string(), "t"))
            .collect();
        assert!(matches!(g.add(many, true), Err(KgError::Invalid(_))));
        let mut batch = Batch::new();
        batch.put_meta("kg/n/o", MAX_PER_OWNER.to_string().as_bytes());
        g.store.commit(batch).unwrap();
        assert!(matches!(
            g.add(vec![assertion("o", "z", "ex:a", "p", "o", "t")], true),
            Err(KgError::Full { .. })
        ));
    }
}
