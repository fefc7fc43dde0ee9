//! The seed's whole node catalogue loads: a bundle mixing image nodes (components over the `image` host
//! capability, against a local stand-in of the OpenAI-compatible images API that returns real PNGs) with nodes
//! whose backend this gateway lacks. The supported flows run; the backend-less nodes fail with a clear error;
//! `bundle verify` says which node runs here and what the others need; and an image made before a kill -9 is
//! not asked for again after the restart.

mod binary;
mod in_process;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine as _;
use binary::{Server, zip_of};
use in_process::standin::serve_on_thread;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Real 2×2 PNGs: red (what generation returns) and blue (what an edit returns).
const RED_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAEUlEQVR4nGP4z8DwH4QZYAwAR8oH+WdZbrcAAAAASUVORK5CYII=";
const BLUE_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAEElEQVR4nGNgYPj/H4KhDAA/0gf5tBJPzQAAAABJRU5ErkJggg==";

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("png")
}

/// The images API stand-in: counts requests per endpoint and prompt; the Nth edit request hangs when told to.
#[derive(Default)]
struct Images {
    seen: Mutex<HashMap<String, usize>>,
    hang_edit: Mutex<Option<usize>>,
    /// Every request's model and whether an edit carried the source PNG.
    log: Mutex<Vec<Value>>,
}

impl Images {
    fn start(hang_edit: Option<usize>) -> (String, Arc<Images>) {
        let me = Arc::new(Images::default());
        *me.hang_edit.lock() = hang_edit;
        let app = Router::new()
            .route("/v1/images/generations", post(generations))
            .route("/v1/images/edits", post(edits))
            .with_state(me.clone());
        (format!("http://{}/v1", serve_on_thread(app)), me)
    }

    fn count(&self, key: &str) -> usize {
        self.seen.lock().get(key).copied().unwrap_or(0)
    }

    fn note(&self, key: String) -> usize {
        let mut seen = self.seen.lock();
        let n = seen.entry(key).or_default();
        *n += 1;
        *n
    }
}

fn answer(png: &str) -> axum::Json<Value> {
    axum::Json(json!({"created": 1, "data": [{"b64_json": png}]}))
}

async fn generations(State(me): State<Arc<Images>>, body: axum::Json<Value>) -> axum::Json<Value> {
    me.note(format!("gen:{}", body["prompt"].as_str().unwrap_or("")));
    me.log.lock().push(body.0.clone());
    answer(RED_PNG)
}

async fn edits(
    State(me): State<Arc<Images>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let carries_source = body.windows(8).any(|w| w == b"\x89PNG\r\n\x1a\n")
        && ct.starts_with("multipart/form-data")
        && String::from_utf8_lossy(&body).contains("name=\"image\"; filename=\"image.png\"");
    me.log
        .lock()
        .push(json!({"edit": true, "carries_source": carries_source}));
    let n = me.note("edit".into());
    if *me.hang_edit.lock() == Some(n) {
        // Never answers: the test kills the gateway while this request is in flight.
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    answer(BLUE_PNG)
}

fn pins(ids: &[(&str, &str)]) -> Value {
    ids.iter()
        .map(|(id, ty)| json!({"id": id, "type": ty}))
        .collect()
}

/// `image`: generate_image (prompt "a red square") → edit_image (prompt "make it blue") → end with both refs.
/// `entity`: a memory_commit node (entity home only). `music`: generate_music. `mail`: mail_search, then on.
fn media_bundle() -> Vec<u8> {
    let start = |id: &str| json!({"id": id, "type": "on_flow_start", "data": {"outputs": pins(&[("exec-out", "execution")])}});
    let image = json!({"id": "image", "name": "image", "entryNode": "s", "nodes": [
        start("s"),
        {"id": "g", "type": "generate_image", "position": {"x": 100, "y": 0}, "data": {
            "inputs": pins(&[("exec-in", "execution"), ("prompt", "string"), ("width", "number"), ("height", "number")]),
            "outputs": pins(&[("exec-out", "execution"), ("image_artifact", "artifact_image"), ("success", "boolean")]),
            "pinDefaults": {"prompt": "a red square", "width": 256, "height": 256}}},
        {"id": "x", "type": "edit_image", "data": {
            "inputs": pins(&[("exec-in", "execution"), ("prompt", "string"), ("image_artifact", "artifact_image")]),
            "outputs": pins(&[("exec-out", "execution"), ("image_artifact", "artifact_image"), ("meta", "object")]),
            "pinDefaults": {"prompt": "make it blue"}}},
        {"id": "e", "type": "on_flow_end", "data": {"inputs": pins(&[("exec-in", "execution"),
            ("made", "any"), ("edited", "any"), ("meta", "any")])}}],
      "edges": [
        {"id": "1", "source": "s", "sourceHandle": "exec-out", "target": "g", "targetHandle": "exec-in"},
        {"id": "2", "source": "g", "sourceHandle": "exec-out", "target": "x", "targetHandle": "exec-in"},
        {"id": "3", "source": "g", "sourceHandle": "image_artifact", "target": "x", "targetHandle": "image_artifact"},
        {"id": "4", "source": "x", "sourceHandle": "exec-out", "target": "e", "targetHandle": "exec-in"},
        {"id": "5", "source": "g", "sourceHandle": "image_artifact", "target": "e", "targetHandle": "made"},
        {"id": "6", "source": "x", "sourceHandle": "image_artifact", "target": "e", "targetHandle": "edited"},
        {"id": "7", "source": "x", "sourceHandle": "meta", "target": "e", "targetHandle": "meta"}]});
    let one = |flow: &str, ty: &str, outs: &[(&str, &str)]| {
        let mut n_out = vec![("exec-out", "execution")];
        n_out.extend_from_slice(outs);
        let mut end_in = vec![("exec-in", "execution")];
        end_in.extend_from_slice(outs);
        let mut edges = vec![
            json!({"id": "1", "source": "s", "sourceHandle": "exec-out", "target": "n", "targetHandle": "exec-in"}),
            json!({"id": "2", "source": "n", "sourceHandle": "exec-out", "target": "e", "targetHandle": "exec-in"}),
        ];
        for (o, _) in outs {
            edges.push(json!({"id": format!("d{o}"), "source": "n", "sourceHandle": o, "target": "e", "targetHandle": o}));
        }
        json!({"id": flow, "name": flow, "entryNode": "s", "nodes": [
            start("s"),
            {"id": "n", "type": ty, "data": {"inputs": pins(&[("exec-in", "execution"), ("prompt", "string")]),
                "outputs": pins(&n_out), "pinDefaults": {"prompt": "la la"}}},
            {"id": "e", "type": "on_flow_end", "data": {"inputs": pins(&end_in)}}],
          "edges": edges})
    };
    let flows = [
        ("image", image),
        ("entity", one("entity", "memory_commit", &[])),
        ("music", one("music", "generate_music", &[])),
        (
            "mail",
            one(
                "mail",
                "mail_search",
                &[("result", "any"), ("success", "boolean")],
            ),
        ),
    ];
    let manifest = json!({"bundle_format_version": "1", "bundle_id": "media", "bundle_version": "1.0.0",
        "entrypoints": flows.iter().map(|(id, _)| json!({"flow_id": id})).collect::<Vec<_>>(),
        "default_entrypoint": "image",
        "flows": flows.iter().map(|(id, _)| (id.to_string(), json!(format!("flows/{id}.json")))).collect::<serde_json::Map<_, _>>()});
    let mut entries = vec![(
        "manifest.json".to_string(),
        manifest.to_string().into_bytes(),
    )];
    for (id, f) in &flows {
        entries.push((format!("flows/{id}.json"), f.to_string().into_bytes()));
    }
    let refs: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    zip_of(&refs)
}

fn image_env(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ABSTRACTGATEWAY_IMAGE_PROVIDER", "openai-compatible".into()),
        ("ABSTRACTGATEWAY_IMAGE_MODEL", "sd-test".into()),
        ("OPENAI_COMPATIBLE_BASE_URL", base.into()),
    ]
}

async fn start_flow(s: &Server, flow: &str) -> String {
    let (st, v) = s
        .post(
            "/api/gateway/runs/start",
            json!({"bundle_id": "media", "flow_id": flow, "input_data": {}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["run_id"].as_str().expect("run id").to_string()
}

async fn content(s: &Server, run: &str, reference: &Value) -> Vec<u8> {
    let id = reference["$artifact"]
        .as_str()
        .expect("an artifact reference");
    let resp = s
        .client
        .get(s.url(&format!("/api/gateway/runs/{run}/artifacts/{id}/content")))
        .bearer_auth(binary::TOKEN)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("bytes").to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mixed_bundle_loads_its_image_flow_runs_and_backend_less_nodes_fail_clearly() {
    let (base, images) = Images::start(None);
    let env = image_env(&base);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start(&env).await;
    let (st, v) = s.upload("media@1.0.0.flow", &media_bundle(), None).await;
    assert_eq!(st, 200, "the bundle loads whole: {v}");

    let run = start_flow(&s, "image").await;
    let done = s.wait_done(&run, 60).await;
    assert_eq!(done["status"], "completed", "{done}");
    let out = &done["output"];
    assert_eq!(content(&s, &run, &out["made"]).await, b64(RED_PNG));
    assert_eq!(content(&s, &run, &out["edited"]).await, b64(BLUE_PNG));
    assert_eq!(out["made"]["content_type"], "image/png");
    assert_eq!(out["meta"]["provider"], "openai-compatible");
    assert_eq!(out["meta"]["model"], "sd-test");
    assert_eq!(images.count("gen:a red square"), 1);
    assert_eq!(images.count("edit"), 1);
    let log = images.log.lock().clone();
    assert_eq!(log[0]["model"], "sd-test");
    assert_eq!(log[0]["size"], "256x256");
    assert_eq!(log[0]["response_format"], "b64_json");
    assert_eq!(
        log[1]["carries_source"], true,
        "the edit uploads the generated image"
    );
    // The ledger records the host calls the image nodes made.
    let ledger = s.ledger(&run).await;
    let text = serde_json::to_string(&ledger).expect("json");
    assert!(
        text.contains("image.generate") || text.contains("\"generate\""),
        "{text}"
    );

    for (flow, says) in [
        ("entity", "No effect handler registered for memory_access"),
        ("music", "music generation backend"),
    ] {
        let run = start_flow(&s, flow).await;
        let done = s.wait_done(&run, 30).await;
        assert_eq!(done["status"], "failed", "{flow}: {done}");
        let error = done["error"].as_str().unwrap_or("");
        assert!(error.contains(says), "{flow}: {error}");
    }
    let run = start_flow(&s, "mail").await;
    let done = s.wait_done(&run, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["success"], false);
    assert!(
        done["output"]["result"]
            .as_str()
            .unwrap_or("")
            .contains("No mailbox")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_image_provider_the_image_node_fails_and_names_the_setting() {
    let s = Server::start(&[]).await;
    let (st, v) = s.upload("media@1.0.0.flow", &media_bundle(), None).await;
    assert_eq!(st, 200, "{v}");
    let run = start_flow(&s, "image").await;
    let done = s.wait_done(&run, 30).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().unwrap_or("");
    assert!(error.contains("ABSTRACTGATEWAY_IMAGE_PROVIDER"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_made_before_a_kill_is_not_asked_for_again() {
    // The second edit request hangs: the first run goes through, the second is killed during its edit.
    let (base, images) = Images::start(Some(2));
    let env = image_env(&base);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut s = Server::start(&env).await;
    let (st, v) = s.upload("media@1.0.0.flow", &media_bundle(), None).await;
    assert_eq!(st, 200, "{v}");
    let clean = start_flow(&s, "image").await;
    assert_eq!(s.wait_done(&clean, 60).await["status"], "completed");
    let shape = |ledger: &[Value]| -> Vec<(String, String)> {
        ledger
            .iter()
            .map(|r| {
                (
                    r["node_id"].as_str().unwrap_or("").to_string(),
                    r["status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let clean_shape = shape(&s.ledger(&clean).await);

    let run = start_flow(&s, "image").await;
    // Its generation answered and was recorded; its edit's request is in flight: kill -9 now.
    let deadline = Instant::now() + Duration::from_secs(60);
    while images.count("edit") < 2 {
        assert!(Instant::now() < deadline, "the edit request never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.kill();
    s.restart().await;
    let done = s.wait_done(&run, 60).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        images.count("gen:a red square"),
        2,
        "one generation per run: the killed run's recorded one is replayed, not asked for again"
    );
    // The edit was never answered before the kill: asking again is the documented window.
    assert_eq!(images.count("edit"), 3);
    assert_eq!(
        content(&s, &run, &done["output"]["made"]).await,
        b64(RED_PNG)
    );
    assert_eq!(
        content(&s, &run, &done["output"]["edited"]).await,
        b64(BLUE_PNG)
    );
    assert_eq!(
        shape(&s.ledger(&run).await),
        clean_shape,
        "the killed run's ledger is an uninterrupted run's, record for record"
    );
}

#[test]
fn bundle_verify_says_which_nodes_run_here_and_what_the_others_need() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("media@1.0.0.flow");
    std::fs::write(&path, media_bundle()).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
        .args([
            "bundle",
            "verify",
            path.to_str().expect("path"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("ABSTRACTGATEWAY_PLUGINS_DIR")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "g (generate_image): runs here (component node_image)",
        "x (edit_image): runs here (component node_image)",
        "s (on_flow_start): runs here (engine)",
        "n (memory_commit): cannot run here: needs an entity home runtime (entity-brain memory)",
        "n (generate_music): cannot run here: needs a music generation backend",
        "n (mail_search): cannot run here: needs a mailbox connection",
        "3 node(s) cannot run on this gateway; the rest of the bundle runs",
    ] {
        assert!(stdout.contains(line), "{line:?} in\n{stdout}");
    }
}

/// The catalogue names, for each type a component provides, the component: each built-in one declares exactly
/// the types the catalogue gives it (the Python one, compiled on first need, is checked by `python_code.rs`).
#[test]
fn the_built_in_components_provide_the_types_the_catalogue_gives_them() {
    use abstractgateway::engine::nodes::NodeKind;
    use abstractgateway::flow::catalogue::{ALL, Provider, lookup};
    let dir = tempfile::tempdir().expect("tmp");
    let (plugins, warnings) = abstractgateway::plugins::setup(dir.path(), None).expect("plugins");
    assert!(
        warnings.iter().all(|w| !w.contains("not loaded")),
        "{warnings:?}"
    );
    let registry = plugins.registry();
    for ty in ALL {
        match (lookup(ty), registry.lookup(ty)) {
            (Some(Provider::Component("python_code")), _) => {}
            (Some(Provider::Component(c)), Some(NodeKind::Plugin(p))) => {
                assert_eq!(p.plugin, c, "{ty}")
            }
            (Some(Provider::Component(c)), other) => panic!("{ty}: component {c} gives {other:?}"),
            (Some(Provider::Missing(_) | Provider::Lowered), Some(NodeKind::Plugin(p))) => {
                panic!(
                    "{ty} is said to lack a backend, but {} provides it",
                    p.plugin
                )
            }
            _ => {}
        }
    }
}
