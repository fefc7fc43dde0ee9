//! The seed's bundles end to end over HTTP on a real local model: SmolLM2-135M run in-process by the
//! gateway (the embedded default), and the same model behind an OpenAI-compatible server
//! (`abstractgateway-llm-local`'s), reached through the `lmstudio`/`openai` providers.
//! Needs feature `local-model`; the model is fetched once by `scripts/fetch-model.sh`.
#![cfg(feature = "local-model")]

mod binary;
mod in_process;

use std::path::PathBuf;
use std::sync::Arc;

use binary::Server;
use in_process::shared;
use serde_json::{Value, json};

/// The model file, fetched (and checked) by the repository's script.
fn model_path() -> PathBuf {
    let script = abstractgateway_testkit::repo_root().join("scripts/fetch-model.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .output()
        .expect("running scripts/fetch-model.sh");
    assert!(
        out.status.success(),
        "scripts/fetch-model.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A data dir whose `flows/` holds the seed's and the upstream bundles.
fn flows_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let flows = tmp.path().join("flows");
    std::fs::create_dir_all(&flows).expect("mkdir");
    for sub in ["seed", "upstream"] {
        for e in std::fs::read_dir(shared().join("fixtures/bundles").join(sub))
            .expect("bundles")
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "flow") {
                std::fs::copy(&p, flows.join(p.file_name().expect("name"))).expect("copy");
            }
        }
    }
    tmp
}

/// Runs `bundle` (optionally a version) with `input`; asserts it completed with a non-empty answer in
/// `pin`, that the ledger holds every model call, each answered by the local model via `provider`, and
/// that no record carries `secret`.
async fn run_bundle(
    s: &Server,
    (bundle, version): (&str, Option<&str>),
    input: Value,
    pin: &str,
    provider: &str,
    secret: &str,
) {
    let mut body = json!({"bundle_id": bundle, "input_data": input});
    if let Some(v) = version {
        body["bundle_version"] = json!(v);
    }
    let (st, v) = s.post("/api/gateway/runs/start", body).await;
    assert_eq!(st, 200, "{v}");
    let run = v["run_id"].as_str().expect("run_id").to_string();
    let done = s.wait_done(&run, 600).await;
    assert_eq!(done["status"], "completed", "{bundle}: {done}");
    let answer = done["output"][pin].as_str().unwrap_or("");
    assert!(!answer.trim().is_empty(), "{bundle}: empty answer: {done}");
    let records = s.ledger(&run).await;
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["effect"]["type"] == "host_call" && r["effect"]["payload"]["interface"] == "llm"
        })
        .map(|r| &r["result"]["ok"])
        .collect();
    assert!(!calls.is_empty(), "{bundle}: no model call in the ledger");
    for c in &calls {
        assert_eq!(c["provider"], provider, "{bundle}: {c}");
        assert!(c["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0, "{c}");
    }
    let text = serde_json::to_string(&records).expect("json");
    assert!(
        !text.contains(secret),
        "{bundle}: the ledger holds the API key"
    );
}

/// The seed's bundles and the upstream ones made only of LLM, agent and pure nodes. `default` is the
/// provider of bundles that name none; `basic-agent` pins lmstudio, `basic@dev` and `test@dev` openai.
async fn run_all(s: &Server, default: &str, secret: &str) {
    let prompt = json!({"prompt": "What is the capital of France? Answer in one word."});
    let cases = [
        (("basic-llm-test", None), "response", default),
        (("basic-agent", Some("0.0.0")), "response", "lmstudio"),
        (("basic-agent", Some("0.0.1")), "response", "lmstudio"),
        (("basic", None), "response", "openai"),
        (("test", None), "output", "openai"),
    ];
    for (bundle, pin, provider) in cases {
        run_bundle(s, bundle, prompt.clone(), pin, provider, secret).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_bundles_answer_on_the_embedded_model() {
    let model = model_path();
    let tmp = flows_dir();
    let env = [
        (
            "ABSTRACTGATEWAY_LOCAL_MODEL",
            model.to_str().expect("utf-8 path"),
        ),
        // The bundles pin lmstudio and openai; with neither around, the in-process model answers for them.
        ("ABSTRACTGATEWAY_EMBEDDED_PROVIDERS", "lmstudio,openai"),
        ("ABSTRACTGATEWAY_EMBEDDED_MAX_TOKENS", "48"),
    ];
    let s = Server::start_in(tmp.path(), &env).await;
    // Bundles that name no provider go to `embedded` itself (no provider is configured).
    run_all(&s, "embedded", "no secret here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_embedded_model_fails_the_node_with_the_fix() {
    let tmp = flows_dir();
    let missing = tmp.path().join("no-such-model.gguf");
    let env = [(
        "ABSTRACTGATEWAY_LOCAL_MODEL",
        missing.to_str().expect("utf-8"),
    )];
    let s = Server::start_in(tmp.path(), &env).await;
    let run = s.start_run("basic-llm-test", json!({"prompt": "hi"})).await;
    let done = s.wait_done(&run, 600).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().unwrap_or("");
    assert!(error.contains("scripts/fetch-model.sh"), "{error}");
}

/// The same model behind an OpenAI-compatible HTTP server, reached through the providers' real clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_bundles_answer_through_an_openai_compatible_local_server() {
    let model = Arc::new(
        abstractgateway_llm_local::LocalModel::load(model_path()).expect("loading the model"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(abstractgateway_llm_local::server::serve(
        listener,
        model,
        std::future::pending(),
    ));
    let tmp = flows_dir();
    let key = "sk-local-secret-never-in-the-ledger";
    let env = [
        ("LMSTUDIO_BASE_URL", url.as_str()),
        ("OPENAI_BASE_URL", url.as_str()),
        ("OPENAI_API_KEY", key),
        ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
        ("ABSTRACTGATEWAY_MODEL", "smollm2-135m-instruct"),
    ];
    let s = Server::start_in(tmp.path(), &env).await;
    // `basic@dev` pins openai: its calls go out with the key, which no ledger record may hold.
    run_all(&s, "lmstudio", key).await;
}
