//! What the host adds to a model call, and how fast an agent loops, with the model's own time taken out:
//! the real `llm_call`/`agent` components (`node_llm.wasm`) answered by an in-process stand-in model that
//! replies at once, and by a loopback OpenAI-compatible stand-in through the real HTTP client.
//! Needs `scripts/build-plugins.sh`. Run: `cargo bench -p abstractgateway --bench llm_nodes`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use abstractgateway::engine::PluginOutcome;
use abstractgateway::llm::{
    CancelToken, ChatBackend, ChatRequest, ChatResponse, LlmConfig, LlmError, Providers, ToolCall,
    Usage,
};
use abstractgateway::plugins::caps::Capabilities;
use abstractgateway::plugins::caps::llm::ProvidersBackend;
use abstractgateway::plugins::{Grants, PluginHost, invoke};
use abstractgateway::runner::executor::{CancelFlag, NodeJob};
use abstractgateway::store::Store;
use abstractgateway::tools::ToolRegistry;
use axum::Json;
use axum::routing::post;
use criterion::{Criterion, criterion_group, criterion_main};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// Asks for `list_files` until the conversation holds `rounds` tool answers, then answers; no model time.
struct Instant0 {
    rounds: usize,
}

impl ChatBackend for Instant0 {
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
        _cancel: CancelToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        let answered = req.messages.iter().filter(|m| m.role == "tool").count();
        let tool_calls = if answered < self.rounds {
            vec![ToolCall {
                call_id: Some(format!("call_{answered}")),
                name: "list_files".into(),
                arguments: json!({"directory_path": "."}),
            }]
        } else {
            vec![]
        };
        Box::pin(async move {
            Ok(ChatResponse {
                content: if tool_calls.is_empty() {
                    "done".into()
                } else {
                    String::new()
                },
                reasoning: None,
                finish_reason: if tool_calls.is_empty() {
                    "stop"
                } else {
                    "tool_calls"
                }
                .into(),
                tool_calls,
                usage: Usage {
                    input_tokens: 1,
                    output_tokens: 1,
                    total_tokens: 2,
                },
                provider: "bench".into(),
                model: "bench".into(),
            })
        })
    }
}

/// An OpenAI-compatible stand-in on loopback answering every chat request at once.
fn http_standin(rt: &tokio::runtime::Runtime) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|Json(_): Json<Value>| async {
            Json(
                json!({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
            )
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });
    url
}

fn node_llm() -> (Vec<u8>, Grants) {
    let dir = std::env::var_os("AG_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| abstractgateway_testkit::repo_root().join("target/plugins"));
    let bytes =
        std::fs::read(dir.join("node_llm.wasm")).expect("run scripts/build-plugins.sh first");
    let grants: Value = serde_json::from_str(include_str!("../../plugins/nodes/llm/grants.json"))
        .expect("grants json");
    (bytes, Grants::parse(&grants).expect("grants"))
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let url = http_standin(&rt);
    let tmp = tempfile::tempdir().expect("tmp");
    let workspace = tmp.path().join("ws");
    std::fs::create_dir_all(&workspace).expect("ws");
    std::fs::write(workspace.join("a.txt"), "a").expect("file");
    let store = Store::open(&tmp.path().join("data")).expect("store");
    let providers = Arc::new(Providers::new(LlmConfig::from_vars(|k| match k {
        "LMSTUDIO_BASE_URL" => Some(url.clone()),
        "ABSTRACTGATEWAY_PROVIDER" => Some("lmstudio".into()),
        "ABSTRACTGATEWAY_MODEL" => Some("m".into()),
        _ => None,
    })));
    providers.register("instant", Arc::new(Instant0 { rounds: 0 }));
    providers.register("agent20", Arc::new(Instant0 { rounds: 20 }));
    let mut caps = Capabilities::new();
    caps.tool_mode = abstractgateway::plugins::caps::ToolMode::Local;
    caps.llm = Some(Arc::new(ProvidersBackend(providers)));
    let tools = Arc::new(ToolRegistry::new());
    caps.tools = Some(tools.clone());
    let host = PluginHost::new(tmp.path(), caps, None).expect("host");
    host.set_tool_registry(tools);
    let (bytes, grants) = node_llm();
    let plugin = host
        .load("node_llm", &bytes, grants)
        .expect("load node_llm");
    let digest = plugin.digest().to_string();
    let mut n = 0u64;
    let mut job = |node_type: &str, inputs: Value| {
        n += 1;
        NodeJob {
            run_id: format!("bench-{n}"),
            session_id: None,
            actor_id: None,
            workflow_id: "bench".into(),
            node_id: "n".into(),
            node_type: node_type.into(),
            plugin: "node_llm".into(),
            digest: digest.clone(),
            config: Default::default(),
            inputs,
            run_context: None,
            vars: None,
            workspace_root: Some(workspace.to_string_lossy().into_owned()),
            bundle: None,
            started_seq: 0,
            started_ms: None,
            ledger_len: 0,
            shard: 0,
            cancel: Arc::new(CancelFlag::default()),
        }
    };
    let run = |j: NodeJob| {
        let done = rt.block_on(invoke::run_node(host.clone(), store.clone(), j));
        assert!(
            matches!(done.outcome, PluginOutcome::Output(_)),
            "{:?}",
            done.outcome
        );
    };

    let mut g = c.benchmark_group("model call, model time excluded");
    g.bench_function("llm_call node, in-process stand-in model", |b| {
        b.iter(|| {
            run(job(
                "llm_call",
                json!({"prompt": "hi", "provider": "instant"}),
            ))
        })
    });
    g.bench_function(
        "llm_call node, OpenAI-compatible stand-in on loopback",
        |b| b.iter(|| run(job("llm_call", json!({"prompt": "hi"})))),
    );
    g.finish();

    // An agent making 20 tool rounds (21 model calls, 20 list_files calls, 41 ledger records).
    let mut per_step = Vec::new();
    for _ in 0..15 {
        let j = job(
            "agent",
            json!({"prompt": "list", "provider": "agent20", "tools": ["list_files"], "max_iterations": 25}),
        );
        let t0 = Instant::now();
        run(j);
        per_step.push(t0.elapsed().as_secs_f64() / 21.0);
    }
    per_step.sort_by(f64::total_cmp);
    let median = per_step[per_step.len() / 2];
    println!(
        "agent: median {:.1} µs per ReAct step (model call + tool call + their records) = {:.0} steps/s, \
         over 15 runs of 21 steps",
        median * 1e6,
        1.0 / median
    );
}

criterion_group!(llm_nodes, benches);
criterion_main!(llm_nodes);
