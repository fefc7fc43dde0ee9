//! The effects end to end on a real store.

use serde_json::{Map, Value, json};

use crate::effects::{self, RunInfo};
use crate::graph::Graph;

fn run() -> RunInfo {
    RunInfo {
        run_id: "r1".into(),
        workflow_id: "b@1:wf".into(),
        session_id: Some("s1".into()),
        root_run_id: "r0".into(),
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn graph() -> (tempfile::TempDir, Graph) {
    let dir = tempfile::tempdir().unwrap();
    let store = abstractgateway_store::Store::open(dir.path()).unwrap();
    (dir, Graph::new(store))
}

#[test]
fn assert_then_query_then_resolve() {
    let (_dir, g) = graph();
    let payload = obj(json!({"scope": "session", "span_id": "sp1", "assertions": [
        {"subject": "ex:Person Alice", "predicate": "schema:name", "object": "Alice", "attributes": {"literal": true}},
        {"subject": "ex:Person Alice", "predicate": "rdf:type", "object": "schema:Person"},
        {"subject": "ex:Person Alice", "predicate": "Schema:HasPart", "object": "ex:team"},
    ]}));
    let out = effects::assert(&g, &run(), &payload, "2026-01-01T00:00:00+00:00", "call-1").unwrap();
    assert_eq!(out["count"], 3);
    assert_eq!(out["skipped_duplicates"], 0);
    let ids = out["assertion_ids"].clone();
    // The same call again (a replay after a crash) answers the same ids and stores nothing twice.
    let again =
        effects::assert(&g, &run(), &payload, "2026-01-01T00:00:00+00:00", "call-1").unwrap();
    assert_eq!(again["assertion_ids"], ids);
    // Another call with the same triples: duplicates.
    let other =
        effects::assert(&g, &run(), &payload, "2026-01-02T00:00:00+00:00", "call-2").unwrap();
    assert_eq!(
        (
            other["count"].as_u64(),
            other["skipped_duplicates"].as_u64()
        ),
        (Some(0), Some(3))
    );

    let q = effects::query(
        &g,
        &run(),
        &obj(json!({"scope": "session", "subject": "ex:person alice",
        "max_input_tokens": 500})),
    )
    .unwrap();
    assert_eq!(q["ok"], true);
    assert_eq!(q["count"], 3);
    let first = &q["items"][0];
    assert_eq!(first["owner_id"], "session_memory_s1");
    assert_eq!(first["subject"], "ex:person-alice");
    assert_eq!(first["provenance"]["span_id"], "sp1");
    assert_eq!(first["provenance"]["writer_run_id"], "r1");
    assert_eq!(q["packed_count"], 3);
    assert!(
        q["active_memory_text"]
            .as_str()
            .unwrap()
            .starts_with("## KG ACTIVE MEMORY")
    );
    assert!(
        q["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["predicate"] == "dcterms:haspart")
    );

    // Run scope is another owner: nothing there.
    let q = effects::query(&g, &run(), &obj(json!({}))).unwrap();
    assert_eq!(q["count"], 0);

    let r = effects::resolve(
        &g,
        &run(),
        &obj(json!({"label": " ALICE ", "scope": "session",
        "expected_type": "schema:person"})),
    )
    .unwrap();
    assert_eq!(r["count"], 1, "{r}");
    assert_eq!(r["candidates"][0]["id"], "ex:person-alice");
    assert_eq!(r["candidates"][0]["types"], json!(["schema:person"]));
    let none = effects::resolve(
        &g,
        &run(),
        &obj(json!({"label": "bob", "scope": "session"})),
    )
    .unwrap();
    assert_eq!(none["count"], 0);
    assert_eq!(
        none["warnings"].as_array().unwrap().len(),
        5,
        "the semantic pass says why it found nothing"
    );
}

#[test]
fn refusals_are_the_seeds_and_owners_are_the_runs() {
    let (_dir, g) = graph();
    let run = run();
    let fail = |p: Value| effects::assert(&g, &run, &obj(p), "t", "c").unwrap_err();
    assert_eq!(
        fail(json!({})),
        "MEMORY_KG_ASSERT requires payload.assertions (list[object])"
    );
    assert!(
        fail(json!({"assertions": [{"subject": "a", "predicate": "foaf:knows", "object": "b"}]}))
            .starts_with("MEMORY_KG_ASSERT rejected unknown predicates. Got: foaf:knows.")
    );
    assert!(
        fail(json!({"assertions": [{"subject": "a", "predicate": "ex:likes", "object": "b"}]}))
            .contains("ex:likes")
    );
    let custom = effects::assert(
        &g,
        &run,
        &obj(json!({"allow_custom_predicates": true,
        "assertions": [{"subject": "a", "predicate": "ex:likes", "object": "b"}]})),
        "t",
        "c",
    )
    .unwrap();
    assert_eq!(custom["count"], 1);
    assert!(
        fail(json!({"owner_id": "session_memory_other",
        "assertions": [{"subject": "a", "predicate": "rdf:type", "object": "b"}]}))
        .contains("not a memory owner of this run")
    );
    assert!(
        fail(
            json!({"assertions": [{"subject": "a", "predicate": "rdf:type", "object": "b",
        "owner_id": "r9"}]})
        )
        .contains("not a memory owner of this run")
    );
    let empty = effects::assert(&g, &run, &obj(json!({"assertions": []})), "t", "c").unwrap();
    assert_eq!(empty["skipped"], true);

    let q = effects::query(&g, &run, &obj(json!({"owner_id": "session_memory_other"}))).unwrap();
    assert_eq!(q["ok"], false);
    assert!(q["error"].as_str().unwrap().contains("not a memory owner"));
    let q = effects::query(&g, &run, &obj(json!({"scope": "nowhere"}))).unwrap();
    assert_eq!(q["error"], "Unknown memory scope: nowhere");
    assert_eq!(
        effects::query(&g, &run, &obj(json!({"recall_level": "lazy"}))).unwrap_err(),
        "Unknown recall_level: lazy"
    );
    let q = effects::query(&g, &run, &obj(json!({"query_text": "who"}))).unwrap();
    assert_eq!(
        q["error"],
        "query_text requires a configured embedder (vector search); keyword fallback is disabled"
    );
    let q = effects::query(
        &g,
        &run,
        &obj(json!({"recall_level": "urgent", "limit": 500})),
    )
    .unwrap();
    assert_eq!(q["effort"]["applied"]["limit"], 40);
    assert_eq!(
        q["warnings"][0],
        "recall_level=urgent: clamped limit from 500 to 40"
    );
}
