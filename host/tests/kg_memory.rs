//! Knowledge-graph memory on the real binary: a bundle's `memory_kg_assert` stores triples in the session's
//! graph, `POST /kg/query` reads them with the seed's scopes, owners, filters and errors, and they survive a
//! kill -9 of the server.

mod binary;

use binary::{Server, zip_of};
use serde_json::{Value, json};

fn pins(ids: &[(&str, &str)]) -> Value {
    ids.iter()
        .map(|(id, ty)| json!({"id": id, "type": ty}))
        .collect()
}

/// `remember`: start → memory_kg_assert (two triples about Alice, session scope) → end with the count.
fn kg_bundle() -> Vec<u8> {
    let flow = json!({"id": "remember", "name": "remember", "entryNode": "s", "nodes": [
        {"id": "s", "type": "on_flow_start", "data": {"outputs": pins(&[("exec-out", "execution")])}},
        {"id": "a", "type": "memory_kg_assert", "data": {
            "inputs": pins(&[("exec-in", "execution"), ("assertions", "array"), ("scope", "string")]),
            "outputs": pins(&[("exec-out", "execution"), ("count", "number"), ("assertion_ids", "array")]),
            "pinDefaults": {"scope": "session", "assertions": [
                {"subject": "ex:Person Alice", "predicate": "schema:name", "object": "Alice",
                 "attributes": {"literal": true}},
                {"subject": "ex:Person Alice", "predicate": "rdf:type", "object": "schema:Person"}]}}},
        {"id": "e", "type": "on_flow_end", "data": {"inputs": pins(&[("exec-in", "execution"), ("count", "number")])}}],
      "edges": [
        {"id": "1", "source": "s", "sourceHandle": "exec-out", "target": "a", "targetHandle": "exec-in"},
        {"id": "2", "source": "a", "sourceHandle": "exec-out", "target": "e", "targetHandle": "exec-in"},
        {"id": "3", "source": "a", "sourceHandle": "count", "target": "e", "targetHandle": "count"}]});
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "kg", "bundle_version": "1.0.0",
        "entrypoints": [{"flow_id": "remember"}], "default_entrypoint": "remember",
        "flows": {"remember": "flows/remember.json"}});
    zip_of(&[
        ("manifest.json", manifest.to_string().into_bytes()),
        ("flows/remember.json", flow.to_string().into_bytes()),
    ])
}

async fn query(s: &Server, body: Value) -> (u16, Value) {
    s.post("/api/gateway/kg/query", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kg_query_reads_what_the_nodes_stored_with_the_seeds_rules() {
    let mut s = Server::start(&[]).await;
    let (st, v) = s.upload("kg@1.0.0.flow", &kg_bundle(), None).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .post(
            "/api/gateway/runs/start",
            json!({"bundle_id": "kg", "input_data": {}, "session_id": "s-1"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let run = v["run_id"].as_str().expect("run id").to_string();
    let done = s.wait_status(&run, "completed").await;
    assert_eq!(done["output"]["count"], 2, "{done}");

    let (st, v) = query(&s, json!({"session_id": "s-1"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (&v["ok"], &v["scope"], &v["owner_id"], &v["count"]),
        (
            &json!(true),
            &json!("session"),
            &json!("session_memory_s-1"),
            &json!(2)
        )
    );
    assert_eq!(v["warnings"], Value::Null);
    let item = &v["items"][0];
    let keys: Vec<&String> = item.as_object().expect("item").keys().collect();
    assert_eq!(
        keys,
        [
            "assertion_id",
            "subject",
            "predicate",
            "object",
            "scope",
            "owner_id",
            "observed_at",
            "provenance",
            "attributes"
        ]
    );
    assert_eq!(item["provenance"]["writer_run_id"], json!(run));
    // The run's session, found through the run.
    let (_, v) = query(&s, json!({"run_id": run})).await;
    assert_eq!(
        (&v["owner_id"], &v["count"]),
        (&json!("session_memory_s-1"), &json!(2))
    );
    // Its own run graph holds nothing: the flow wrote session memory.
    let (_, v) = query(&s, json!({"scope": "run", "run_id": run})).await;
    assert_eq!((&v["owner_id"], &v["count"]), (&json!(run), &json!(0)));
    let (_, v) = query(
        &s,
        json!({"session_id": "s-1", "predicate": "RDF:type", "limit": 1}),
    )
    .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["items"][0]["object"], "schema:person");
    let (_, v) = query(&s, json!({"scope": "all", "all_owners": true})).await;
    assert_eq!((&v["count"], &v["owner_id"]), (&json!(2), &Value::Null));
    let (_, v) = query(&s, json!({"scope": "all", "session_id": "s-1"})).await;
    assert_eq!(v["count"], 2);
    assert_eq!(
        v["warnings"],
        json!(["run scope omitted (no run_id available)"])
    );
    let (_, v) = query(
        &s,
        json!({"session_id": "s-1", "query_text": "who is alice"}),
    )
    .await;
    assert_eq!(v["count"], 0);
    assert_eq!(
        v["warnings"],
        json!([
            "query_text requires a configured embedder (vector search); keyword fallback is disabled"
        ])
    );

    // The seed's refusals.
    for (body, status, detail) in [
        (
            json!({"scope": "planet"}),
            400,
            "scope must be one of run|session|global|all",
        ),
        (
            json!({"scope": "all", "owner_id": "x"}),
            400,
            "owner_id is not supported when scope=all",
        ),
        (
            json!({"owner_id": "x", "all_owners": true}),
            400,
            "all_owners cannot be combined with owner_id",
        ),
        (
            json!({"scope": "all"}),
            400,
            "run_id or session_id is required when scope=all (or set all_owners=true)",
        ),
        (
            json!({"scope": "run"}),
            400,
            "run_id is required for scope=run (or provide owner_id)",
        ),
        (
            json!({}),
            400,
            "run_id or session_id is required for scope=session (or provide owner_id)",
        ),
        (json!({"run_id": "nope"}), 404, "Run 'nope' not found"),
        (json!({"owner_id": "../../etc"}), 200, ""),
    ] {
        let (st, v) = query(&s, body.clone()).await;
        assert_eq!(st, status, "{body} → {v}");
        if status != 200 {
            assert_eq!(v["detail"], detail, "{body}");
        } else {
            // A hostile owner id reads nothing and says why, without touching any key outside the graph.
            assert_eq!(v["count"], 0, "{v}");
            assert!(
                v["warnings"][0]
                    .as_str()
                    .unwrap_or_default()
                    .contains("owner_id must be"),
                "{v}"
            );
        }
    }
    let (st, v) = query(&s, json!({"session_id": "s-1", "limit": 20000})).await;
    assert_eq!(st, 422, "{v}");

    // Durable: a kill -9 loses nothing the node stored.
    s.kill();
    s.restart().await;
    let (_, v) = query(&s, json!({"session_id": "s-1"})).await;
    assert_eq!(v["count"], 2, "{v}");
}
