//! The OpenAPI document against the real binary: it parses as OpenAPI 3.1, every operation types its answers,
//! parameters and body, every schema is valid JSON Schema whose references resolve, and real answers of the core
//! endpoints (successes and errors) validate against the schema the document gives for their path, method and
//! status.

mod binary;

use std::fs;

use binary::{Server, TOKEN, bundles_dir};
use serde_json::{Map, Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The document, and how to check an answer against it.
struct Doc(Value);

impl Doc {
    fn operations(&self) -> Vec<(String, String, &Map<String, Value>)> {
        let mut ops = Vec::new();
        for (path, item) in self.0["paths"].as_object().expect("paths") {
            for m in METHODS {
                if let Some(op) = item.get(m).and_then(Value::as_object) {
                    ops.push((path.clone(), m.to_string(), op));
                }
            }
        }
        ops
    }

    /// `schema` standing alone: the document's components beside it, so that `#/components/...` resolves.
    fn standalone(&self, schema: &Value) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.0["components"],
            "allOf": [schema],
        })
    }

    /// Checks a real answer: `status` must be documented for `method template` (or fall under `default`), and
    /// `body` must validate against its JSON schema.
    fn check(&self, method: &str, template: &str, status: u16, body: &Value) {
        let errors = self.errors(method, template, status, body);
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: the answer does not match the document:\n{}\nanswer: {body}",
            errors.join("\n")
        );
    }

    /// Why `body` does not validate as the `status` answer of `method template`.
    fn errors(&self, method: &str, template: &str, status: u16, body: &Value) -> Vec<String> {
        let op = &self.0["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is not in the document");
        let responses = op["responses"].as_object().expect("responses");
        let answer = responses
            .get(&status.to_string())
            .or_else(|| responses.get("default"))
            .unwrap_or_else(|| panic!("{method} {template}: status {status} is not documented"));
        let schema = &answer["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} {status}: no JSON schema in {answer}"
        );
        let validator = jsonschema::validator_for(&self.standalone(schema)).unwrap_or_else(|e| {
            panic!("{method} {template} {status}: schema does not compile: {e}")
        });
        validator
            .iter_errors(body)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect()
    }
}

async fn document(s: &Server) -> Doc {
    let r = s.client.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    // A typed OpenAPI 3.1 parser accepts it: the document is well-formed OpenAPI, not merely JSON.
    let spec = oas3::from_json(&text).unwrap_or_else(|e| panic!("not OpenAPI 3.1: {e}"));
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    Doc(serde_json::from_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_types_every_operation() {
    let s = Server::start(&[]).await;
    let doc = document(&s).await;
    let ops = doc.operations();
    assert!(ops.len() >= 41, "only {} operations", ops.len());
    for (path, method, op) in &ops {
        let what = format!("{method} {path}");
        assert!(
            op.get("summary")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()),
            "{what}: no summary"
        );
        let responses = op["responses"].as_object().expect("responses");
        let success: Vec<&Value> = responses
            .iter()
            .filter(|(k, _)| k.starts_with('2'))
            .map(|(_, v)| v)
            .collect();
        assert!(!success.is_empty(), "{what}: no success answer");
        for answer in success {
            let content = answer["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{what}: a success answer without content"));
            for (media, body) in content {
                // Bytes of an artifact are typed by their media type alone.
                if media != "application/octet-stream" {
                    assert!(
                        body["schema"].is_object(),
                        "{what}: {media} without a schema"
                    );
                }
            }
        }
        // Every error answers `{"detail"}`: the document says so for every operation.
        assert_eq!(
            responses["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{what}"
        );
        let guarded = path.starts_with("/api/gateway") || path == "/metrics";
        assert_eq!(op.contains_key("security"), guarded, "{what}: security");
        if guarded {
            assert!(responses.contains_key("401"), "{what}: no 401");
        }
        for p in op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(p["schema"].is_object(), "{what}: parameter {p} untyped");
            if p["in"] == "path" {
                assert!(
                    path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())),
                    "{what}: path parameter {p} not in the path"
                );
            }
        }
        if let Some(body) = op.get("requestBody") {
            let content = body["content"].as_object().expect("request content");
            assert!(
                content.values().all(|c| c["schema"].is_object()),
                "{what}: untyped request body"
            );
        }
    }
    // Every schema is valid JSON Schema, and its references resolve within the document.
    let schemas = doc.0["components"]["schemas"].as_object().unwrap();
    assert!(schemas.len() >= 30, "only {} schemas", schemas.len());
    for (name, schema) in schemas {
        assert!(
            jsonschema::meta::is_valid(schema),
            "{name} is not valid JSON Schema"
        );
        jsonschema::validator_for(&doc.standalone(schema))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Every path the document names is routed: a method no route of this API uses (PUT) answers 405 on a routed
    // path and the fallback's 404 on any other.
    for (path, _, _) in &ops {
        let concrete = path.replace('{', "x").replace('}', "");
        let r = s
            .client
            .put(s.url(&concrete))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{path} is documented but not routed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_the_document() {
    let s = Server::start(&[]).await;
    let doc = document(&s).await;
    let get = |path: &'static str| (path, path.to_string());

    let open = [get("/api/health"), get("/api/ready")];
    for (template, path) in open {
        let r = s.client.get(s.url(&path)).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{path}");
        doc.check("get", template, status, &body);
    }

    // A finished run, a waiting one and a scheduled one, to answer about.
    let done = s.start_run("echo-upper", json!({"name": "typed"})).await;
    s.wait_done(&done, 30).await;
    let waiting = s.start_run("ask-user", json!({})).await;
    s.wait_status(&waiting, "waiting").await;
    let (st, scheduled) = s
        .post(
            "/api/gateway/runs/schedule",
            json!({"bundle_id": "echo-upper", "flow_id": "echo", "start_at": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(st, 200, "{scheduled}");
    doc.check("post", "/api/gateway/runs/schedule", st, &scheduled);

    // The check is not vacuous: a summary with an unknown status, or without its id, does not validate.
    let (_, summary) = s.get(&format!("/api/gateway/runs/{done}")).await;
    let run = "/api/gateway/runs/{run_id}";
    assert!(doc.errors("get", run, 200, &summary).is_empty());
    let mut bad = summary.clone();
    bad["status"] = json!("bogus");
    assert!(!doc.errors("get", run, 200, &bad).is_empty());
    let mut bad = summary.clone();
    bad.as_object_mut().unwrap().remove("run_id");
    assert!(!doc.errors("get", run, 200, &bad).is_empty());
    assert!(
        !doc.errors("get", run, 404, &json!({"detail": 3}))
            .is_empty()
    );

    let reads: Vec<(&str, String, u16)> = vec![
        (
            "/api/gateway/bundles",
            "/api/gateway/bundles?all_versions=true".into(),
            200,
        ),
        (
            "/api/gateway/bundles/{bundle_id}",
            "/api/gateway/bundles/echo-upper".into(),
            200,
        ),
        (
            "/api/gateway/bundles/{bundle_id}",
            "/api/gateway/bundles/nope".into(),
            404,
        ),
        (
            "/api/gateway/bundles/{bundle_id}/flows/{flow_id}",
            "/api/gateway/bundles/echo-upper/flows/echo".into(),
            200,
        ),
        (
            "/api/gateway/workflows/{workflow_id}/flow",
            "/api/gateway/workflows/echo-upper@1.0.0:echo/flow".into(),
            200,
        ),
        (
            "/api/gateway/runs",
            "/api/gateway/runs?include_metrics=true".into(),
            200,
        ),
        ("/api/gateway/runs", "/api/gateway/runs?limit=0".into(), 422),
        (
            "/api/gateway/runs",
            "/api/gateway/runs?status=bogus".into(),
            400,
        ),
        (
            "/api/gateway/runs/{run_id}",
            format!("/api/gateway/runs/{done}"),
            200,
        ),
        (
            "/api/gateway/runs/{run_id}",
            format!("/api/gateway/runs/{waiting}"),
            200,
        ),
        (
            "/api/gateway/runs/{run_id}",
            "/api/gateway/runs/nope".into(),
            404,
        ),
        (
            "/api/gateway/runs/{run_id}/input_data",
            format!("/api/gateway/runs/{done}/input_data"),
            200,
        ),
        (
            "/api/gateway/runs/{run_id}/history_bundle",
            format!("/api/gateway/runs/{done}/history_bundle?include_session=true"),
            200,
        ),
        (
            "/api/gateway/runs/{run_id}/ledger",
            format!("/api/gateway/runs/{done}/ledger"),
            200,
        ),
        (
            "/api/gateway/runs/{run_id}/ledger",
            format!("/api/gateway/runs/{done}/ledger?limit=0"),
            422,
        ),
        (
            "/api/gateway/runs/{run_id}/artifacts",
            format!("/api/gateway/runs/{done}/artifacts"),
            200,
        ),
        (
            "/api/gateway/commands/{command_id}",
            "/api/gateway/commands/nope".into(),
            404,
        ),
        (
            "/api/gateway/audit/tail",
            "/api/gateway/audit/tail".into(),
            200,
        ),
        (
            "/api/gateway/discovery/tools",
            "/api/gateway/discovery/tools".into(),
            200,
        ),
        (
            "/api/gateway/discovery/capabilities",
            "/api/gateway/discovery/capabilities".into(),
            200,
        ),
        (
            "/api/gateway/discovery/providers",
            "/api/gateway/discovery/providers".into(),
            200,
        ),
    ];
    for (template, path, want) in reads {
        let (status, body) = s.get(&path).await;
        assert_eq!(status, want, "GET {path}: {body}");
        doc.check("get", template, status, &body);
    }

    let writes: Vec<(&str, String, Value, u16)> = vec![
        (
            "/api/gateway/runs/start",
            "/api/gateway/runs/start".into(),
            json!({"bundle_id": "echo-upper", "input_data": {"name": "again"}}),
            200,
        ),
        (
            "/api/gateway/runs/start",
            "/api/gateway/runs/start".into(),
            json!({"bundle_id": 3}),
            422,
        ),
        (
            "/api/gateway/runs/start",
            "/api/gateway/runs/start".into(),
            json!({"bundle_id": "nope"}),
            404,
        ),
        (
            "/api/gateway/runs/ledger/batch",
            "/api/gateway/runs/ledger/batch".into(),
            json!({"runs": [{"run_id": done}, {"run_id": waiting, "after": 1}]}),
            200,
        ),
        (
            "/api/gateway/runs/{run_id}/stream_token",
            format!("/api/gateway/runs/{done}/stream_token"),
            json!({}),
            200,
        ),
        (
            "/api/gateway/commands",
            "/api/gateway/commands".into(),
            json!({"command_id": "typed-1", "run_id": waiting, "type": "resume",
                   "payload": {"wait_key": format!("user:{waiting}:ask"), "payload": {"response": "blue"}}}),
            200,
        ),
        (
            "/api/gateway/commands",
            "/api/gateway/commands".into(),
            json!({"command_id": "typed-1", "run_id": waiting, "type": "resume"}),
            200,
        ),
        (
            "/api/gateway/commands",
            "/api/gateway/commands".into(),
            json!({"run_id": waiting}),
            422,
        ),
        (
            "/api/gateway/kg/query",
            "/api/gateway/kg/query".into(),
            json!({"scope": "all", "all_owners": true}),
            200,
        ),
        (
            "/api/gateway/bundles/reload",
            "/api/gateway/bundles/reload".into(),
            json!({}),
            200,
        ),
        (
            "/api/gateway/bundles/{bundle_id}/deprecate",
            "/api/gateway/bundles/delay/deprecate".into(),
            json!({"reason": "typed"}),
            200,
        ),
        (
            "/api/gateway/bundles/{bundle_id}/undeprecate",
            "/api/gateway/bundles/delay/undeprecate".into(),
            json!({}),
            200,
        ),
    ];
    for (template, path, body, want) in writes {
        let (status, answer) = s.post(&path, body).await;
        assert_eq!(status, want, "POST {path}: {answer}");
        doc.check("post", template, status, &answer);
    }

    // The command's outcome, once applied.
    let outcome = s.wait_outcome("typed-1").await;
    assert!(outcome.is_object(), "{outcome}");
    let (status, body) = s.get("/api/gateway/commands/typed-1").await;
    assert_eq!(status, 200);
    doc.check("get", "/api/gateway/commands/{command_id}", status, &body);

    // An upload (multipart) and a removal.
    let bytes = fs::read(bundles_dir().join("echo-upper@1.0.0.flow")).unwrap();
    let (status, body) = s.upload("echo-upper@1.0.0.flow", &bytes, Some(true)).await;
    assert_eq!(status, 200, "{body}");
    doc.check("post", "/api/gateway/bundles/upload", status, &body);
    let r = s
        .client
        .delete(s.url("/api/gateway/bundles/wait-event"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    doc.check("delete", "/api/gateway/bundles/{bundle_id}", status, &body);

    // An attachment (multipart), then its artifact as the artifact endpoints describe it.
    let (status, body) = s
        .upload_attachment(
            &[("session_id", "typed")],
            Some(("notes.txt", "text/plain", b"typed attachment")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    doc.check("post", "/api/gateway/attachments/upload", status, &body);
    let artifact = body["attachment"]["$artifact"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = s
        .get(&format!(
            "/api/gateway/runs/session_memory_typed/artifacts/{artifact}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    doc.check(
        "get",
        "/api/gateway/runs/{run_id}/artifacts/{artifact_id}",
        status,
        &body,
    );
    let (status, body) = s
        .get("/api/gateway/runs/session_memory_typed/artifacts")
        .await;
    assert_eq!(status, 200, "{body}");
    doc.check("get", "/api/gateway/runs/{run_id}/artifacts", status, &body);

    // The security layer's refusal has the documented error shape too.
    let r = s
        .client
        .get(s.url("/api/gateway/runs"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 401);
    doc.check("get", "/api/gateway/runs", status, &body);
}
