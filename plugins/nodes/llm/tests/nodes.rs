//! The node logic against a scripted host: requests built from pins and config, output mapping,
//! tool modes and approvals, and the agent loop.

use std::collections::VecDeque;

use abstractgateway_plugin_sdk::durability::Wait;
use abstractgateway_plugin_sdk::llm::{Request, Response, Role, ToolCall, Usage};
use abstractgateway_plugin_sdk::{ContextEdit, Error, Invocation, ToolSpec, Value, json};
use node_llm::host::Host;
use node_llm::run_with;

/// Answers each completion with the next scripted response (or `echo:<last user text>`); records calls.
#[derive(Default)]
struct Scripted {
    replies: VecDeque<Response>,
    requests: Vec<Request>,
    invoked: Vec<(String, Value)>,
    waits: Vec<Wait>,
    resume: Value,
}

fn reply(content: &str, calls: Vec<ToolCall>) -> Response {
    Response {
        content: content.into(),
        reasoning: None,
        tool_calls: calls,
        finish_reason: "stop".into(),
        usage: Usage {
            input_tokens: 1,
            output_tokens: 1,
            total_tokens: 2,
        },
        provider: "lmstudio".into(),
        model: "fake-model".into(),
    }
}

impl Host for Scripted {
    fn complete(&mut self, req: Request) -> Result<Response, Error> {
        let last_user = req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let structured = req.response_schema.is_some();
        self.requests.push(req);
        if structured {
            return Ok(reply("{\"answer\":\"x\"}", vec![]));
        }
        Ok(self
            .replies
            .pop_front()
            .unwrap_or_else(|| reply(&format!("echo:{last_user}"), vec![])))
    }
    fn list_tools(&mut self) -> Result<Vec<ToolSpec>, Error> {
        Ok(vec![ToolSpec::new(
            "read_file",
            "Reads a file.",
            json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        )])
    }
    fn invoke(&mut self, name: &str, arguments: &Value) -> Result<Value, Error> {
        self.invoked.push((name.into(), arguments.clone()));
        if name == "read_file" {
            Ok(json!({"text": "contents"}))
        } else {
            Err(Error::not_found(format!("no tool {name}")))
        }
    }
    fn wait(&mut self, w: &Wait) -> Result<Value, Error> {
        self.waits.push(w.clone());
        Ok(self.resume.clone())
    }
    fn idempotency_key(&mut self) -> String {
        "key-1".into()
    }
    fn list_models(&mut self, provider: &str) -> Result<Vec<String>, Error> {
        if provider != "lmstudio" {
            return Err(Error::not_found(format!("no provider {provider}")));
        }
        Ok(vec![
            "fake-model".into(),
            "google/gemma-3n-e4b".into(),
            "qwen/qwen3-4b-2507".into(),
        ])
    }
}

fn gateway(mode: &str) -> Value {
    json!({"tool_mode": mode, "run_id": "r1", "workflow_id": "b@1.0.0:f", "session_id": "r1"})
}

#[test]
fn llm_call_builds_the_request_from_pins_then_effect_config() {
    let mut h = Scripted::default();
    let config = json!({"effectConfig": {"provider": "LMStudio", "model": "m1", "temperature": 0.1},
        "_gateway": gateway("approval_required")});
    let inv = Invocation::new(
        "llm_call",
        "n2",
        config,
        json!({"prompt": "Hello", "system": "Be brief", "model": "m2", "seed": 7, "tools": ["read_file", "nope"]}),
    );
    let out = run_with(&mut h, &inv).unwrap().outputs;
    let req = &h.requests[0];
    assert_eq!(req.provider.as_deref(), Some("lmstudio"));
    assert_eq!(req.model.as_deref(), Some("m2"));
    assert_eq!(req.temperature, Some(0.1));
    assert_eq!(req.seed, Some(7));
    assert_eq!(req.messages.len(), 2);
    assert_eq!(req.messages[0].role, Role::System);
    assert_eq!(req.messages[1].content, "Hello");
    let tools = req.tools.as_ref().unwrap();
    assert_eq!(
        tools.as_array().unwrap().len(),
        1,
        "unknown tool names are dropped"
    );
    assert_eq!(out["response"], json!("echo:Hello"));
    assert_eq!(out["success"], json!(true));
    assert_eq!(out["tool_calls"], json!([]));
    assert_eq!(
        out["meta"],
        json!({"schema": "abstractflow.llm_call.v1.meta", "version": 1, "output_mode": "unstructured",
            "tool_calls": 0, "model": "fake-model", "finish_reason": "stop",
            "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2, "prompt_tokens": 1, "completion_tokens": 1},
            "trace": {"trace_id": "key-1"}})
    );
    assert!(
        !out.contains_key("result"),
        "legacy pins only when declared"
    );
}

#[test]
fn llm_call_defaults_and_structured_output() {
    let mut h = Scripted::default();
    let config = json!({"outputs": [{"id": "result"}]});
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
    let inv = Invocation::new(
        "llm_call",
        "n",
        config,
        json!({"prompt": "Q", "seed": -1, "resp_schema": schema.to_string()}),
    );
    let result = run_with(&mut h, &inv).unwrap();
    let out = &result.outputs;
    let req = &h.requests[0];
    assert_eq!(req.temperature, Some(0.7));
    assert_eq!(req.seed, None, "seed -1 means unset");
    assert_eq!(req.provider, None);
    assert_eq!(req.response_schema, Some(schema));
    assert_eq!(out["data"], json!({"answer": "x"}));
    assert_eq!(out["response"], json!("{\"answer\":\"x\"}"));
    assert_eq!(out["meta"]["output_mode"], json!("structured"));
    // A structured answer comes back as the validated model only, as the seed's provider path returns it.
    assert_eq!(out["result"]["content"], Value::Null);
    assert_eq!(out["result"]["data"], json!({"answer": "x"}));
    assert_eq!(out["result"]["model"], Value::Null);
    assert_eq!(out["meta"].get("model"), None);
    assert_eq!(
        result.complete_output,
        Some(json!({"success": true, "result": out["result"]}))
    );
    assert_eq!(result.ambient, None, "llm_call leaves no ambient payload");
    assert_eq!(result.context_edit, None);
}

#[test]
fn llm_call_field_map_schema_and_model_dump() {
    let mut h = Scripted::default();
    // An example object instead of a schema: every field required, its type inferred from the value;
    // constraints a model does not enforce are not sent; absent optional fields dump as null.
    let example = json!({"answer": "", "count": 0, "extra": {"type": "object",
        "properties": {"a": {"type": "string", "maxLength": 3}, "b": {"type": "number", "default": 1}},
        "required": ["a"]}});
    let inv = Invocation::new(
        "llm_call",
        "n",
        json!({}),
        json!({"prompt": "Q", "response_schema": example}),
    );
    let out = run_with(&mut h, &inv).unwrap().outputs;
    assert_eq!(out["meta"]["output_mode"], json!("structured"));
    let sent = h.requests[0].response_schema.clone().unwrap();
    assert_eq!(sent["required"], json!(["answer", "count", "extra"]));
    assert_eq!(sent["properties"]["count"], json!({"type": "integer"}));
    assert_eq!(
        sent["properties"]["extra"]["properties"]["a"],
        json!({"type": "string"})
    );
    assert_eq!(
        sent["properties"]["extra"]["properties"]["b"],
        json!({"anyOf": [{"type": "number"}, {"type": "null"}], "default": 1})
    );
    let view = sent.clone();
    let dumped = node_llm::params::model_dump(
        &view,
        &json!({"answer": "x", "count": 0, "extra": {"a": "x", "zzz": 1}, "undeclared": true}),
    );
    assert_eq!(
        dumped,
        json!({"answer": "x", "count": 0, "extra": {"a": "x", "b": 1}})
    );
}

#[test]
fn llm_call_use_context_continues_and_records_the_turn() {
    let mut h = Scripted::default();
    let run_ctx = json!({"messages": [{"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "ok"}]});
    let inv = Invocation::new(
        "llm_call",
        "n",
        json!({}),
        json!({"prompt": "", "use_context": true}),
    )
    .with_run_context(run_ctx);
    let result = run_with(&mut h, &inv).unwrap();
    let out = &result.outputs;
    let sent: Vec<(&str, &str)> = h.requests[0]
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str()))
        .collect();
    // The empty prompt turn is still sent after the conversation.
    assert_eq!(
        sent,
        [("user", "earlier"), ("assistant", "ok"), ("user", "")]
    );
    assert_eq!(out["response"], json!("echo:"));
    assert_eq!(
        result.context_edit,
        Some(ContextEdit::Append(vec![
            json!({"role": "user", "content": "earlier", "metadata": {"kind": "llm_turn", "node_id": "n"}}),
            json!({"role": "assistant", "content": "echo:", "metadata": {"kind": "llm_turn", "node_id": "n"}})
        ]))
    );
}

#[test]
fn agent_without_a_task_fails_like_the_seed_react_child() {
    let mut h = Scripted::default();
    let mut gw = gateway("approval_required");
    gw["default_provider"] = json!("lmstudio");
    gw["default_model"] = json!("fake-model");
    // `task` is a legacy pin: the agent reads only `prompt`.
    let inv = Invocation::new(
        "agent",
        "node-3",
        json!({"_gateway": gw, "outputs": [{"id": "result"}]}),
        json!({"task": "hello world"}),
    );
    let result = run_with(&mut h, &inv).unwrap();
    let out = &result.outputs;
    assert!(h.requests.is_empty(), "no model call is made");
    let error = out["error"].as_str().unwrap();
    assert!(
        error.starts_with("llm_call (node reason) requires payload.prompt or payload.messages")
    );
    assert_eq!(out["success"], json!(false));
    assert_eq!(
        out["response"],
        json!(format!(
            "The agent failed before producing a final answer (run r1). Error: {error}"
        ))
    );
    assert_eq!(out["meta"]["provider"], json!("lmstudio"));
    assert_eq!(out["meta"]["model"], json!("fake-model"));
    assert_eq!(
        out["meta"].get("error"),
        None,
        "the pins show the re-mapped meta"
    );
    assert_eq!(
        result.ambient.as_ref().unwrap()["meta"]["error"],
        json!(error)
    );
    assert_eq!(out["result"], json!({"success": false, "error": error}));
    let completion = result.complete_output.as_ref().unwrap();
    assert_eq!(completion["error"], json!(error));
    assert_eq!(completion.get("tool_calls"), None);
    assert_eq!(
        out["scratchpad"]["messages"],
        json!([{"role": "assistant", "content": out["response"]}])
    );
}

#[test]
fn llm_call_without_prompt_or_messages_fails() {
    let mut h = Scripted::default();
    let inv = Invocation::new("llm_call", "node-2", json!({}), json!({"prompt": ""}));
    let e = run_with(&mut h, &inv).unwrap_err();
    assert!(
        e.message
            .contains("requires payload.prompt or payload.messages"),
        "{e}"
    );
    assert!(h.requests.is_empty());
}

#[test]
fn llm_call_uses_context_messages_when_asked() {
    let mut h = Scripted::default();
    let ctx = json!({"messages": [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}]});
    let inv = Invocation::new(
        "llm_call",
        "n",
        json!({}),
        json!({"prompt": "now", "use_context": true, "context": ctx}),
    );
    run_with(&mut h, &inv).unwrap();
    let contents: Vec<&str> = h.requests[0]
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(contents, ["earlier", "ok", "now"]);
}

fn calls() -> Value {
    json!([{"name": "read_file", "arguments": {"path": "a"}, "call_id": "c1"},
           {"function": {"name": "missing", "arguments": "{\"x\":1}"}, "id": "c2"}])
}

#[test]
fn tool_calls_local_mode_executes() {
    let mut h = Scripted::default();
    let inv = Invocation::new(
        "tool_calls",
        "t",
        json!({"_gateway": gateway("local")}),
        json!({"tool_calls": calls()}),
    );
    let out = run_with(&mut h, &inv).unwrap().outputs;
    assert!(h.waits.is_empty());
    assert_eq!(h.invoked[1], ("missing".to_string(), json!({"x": 1})));
    assert_eq!(
        out["results"],
        json!([{"call_id": "c1", "name": "read_file", "success": true, "output": {"text": "contents"}, "error": null},
               {"call_id": "c2", "name": "missing", "success": false, "output": null, "error": "no tool missing"}])
    );
    assert_eq!(out["success"], json!(false));
}

#[test]
fn tool_calls_approval_waits_then_rejects_or_executes() {
    let mut h = Scripted {
        resume: json!({"approved": false}),
        ..Default::default()
    };
    let inv = Invocation::new(
        "tool_calls",
        "t",
        json!({"_gateway": gateway("passthrough")}),
        json!({"tool_calls": calls()}),
    );
    let out = run_with(&mut h, &inv).unwrap().outputs;
    let Wait::User(wait) = &h.waits[0] else {
        panic!("a wait for a person: {:?}", h.waits[0])
    };
    assert_eq!(wait.name, "tools:r1:t");
    assert_eq!(wait.prompt.as_deref(), Some("Approve tool calls?"));
    assert_eq!(wait.details["mode"], json!("approval_required"));
    assert_eq!(wait.details["tool_calls"][1]["name"], json!("missing"));
    assert!(h.invoked.is_empty());
    let errors: Vec<&Value> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["error"])
        .collect();
    assert_eq!(errors, [&json!("rejected"), &json!("rejected")]);

    let mut h = Scripted {
        resume: json!({"approved": true}),
        ..Default::default()
    };
    let out = run_with(&mut h, &inv).unwrap().outputs;
    assert_eq!(h.invoked.len(), 2);
    assert_eq!(out["results"][0]["success"], json!(true));

    let executed = json!([{"call_id": "c1", "name": "read_file", "success": true, "output": 1, "error": null}]);
    let mut h = Scripted {
        resume: json!({"mode": "executed", "results": executed}),
        ..Default::default()
    };
    let out = run_with(&mut h, &inv).unwrap().outputs;
    assert!(h.invoked.is_empty());
    assert_eq!(out["results"], executed);
    assert_eq!(out["success"], json!(true));
}

#[test]
fn call_tool_runs_one_call_and_honours_the_allow_list() {
    let mut h = Scripted::default();
    let inv = Invocation::new(
        "call_tool",
        "t",
        json!({"_gateway": gateway("local")}),
        json!({"tool_call": {"name": "read_file", "arguments": {}}, "allowed_tools": ["write_file"]}),
    );
    let out = run_with(&mut h, &inv).unwrap().outputs;
    assert!(h.invoked.is_empty());
    assert_eq!(out["success"], json!(false));
    assert_eq!(out["result"], json!("Tool 'read_file' is not allowed"));
}

#[test]
fn agent_answers_on_the_first_plain_reply() {
    let mut h = Scripted::default();
    let inv = Invocation::new(
        "agent",
        "node-2",
        json!({"agentConfig": {"provider": "lmstudio", "model": "m", "tools": ["read_file"]},
            "_gateway": gateway("approval_required")}),
        json!({"prompt": "hello world"}),
    );
    let out = run_with(&mut h, &inv).unwrap().outputs;
    assert_eq!(out["response"], json!("echo:hello world"));
    assert_eq!(out["success"], json!(true));
    assert_eq!(h.requests.len(), 1);
    assert_eq!(h.requests[0].temperature, Some(0.2), "tools present");
    assert_eq!(h.requests[0].messages[0].role, Role::System);
    let meta = &out["meta"];
    assert_eq!(meta["schema"], json!("abstractcode.agent.v1.meta"));
    assert_eq!(
        (meta["provider"].clone(), meta["model"].clone()),
        (json!("lmstudio"), json!("m"))
    );
    assert_eq!(meta["iterations"], json!(1));
    assert_eq!(
        out["scratchpad"]["workflow_id"],
        json!("visual_react_agent_b_1_0_0_f_node-2")
    );
    assert_eq!(
        out["scratchpad"]["messages"][1]["metadata"]["kind"],
        json!("final_answer")
    );
}

#[test]
fn agent_acts_observes_and_stops_at_the_budget() {
    let call = |id: &str| ToolCall {
        call_id: Some(id.into()),
        name: "read_file".into(),
        arguments: json!({"path": "a"}),
    };
    let mut h = Scripted {
        replies: VecDeque::from([reply("", vec![call("a")]), reply("", vec![call("b")])]),
        ..Default::default()
    };
    let inv = Invocation::new(
        "agent",
        "n",
        json!({"_gateway": gateway("local")}),
        json!({"prompt": "task", "tools": ["read_file"], "max_iterations": 2}),
    );
    let out = run_with(&mut h, &inv).unwrap().outputs;
    assert_eq!(h.invoked.len(), 2);
    assert_eq!(
        h.requests.len(),
        3,
        "two iterations and one conclusion call"
    );
    assert!(
        h.requests[2].tools.is_none(),
        "the conclusion call offers no tools"
    );
    let second = &h.requests[1].messages;
    assert_eq!(second.last().unwrap().role, Role::Tool);
    assert_eq!(second.last().unwrap().content, "{\"text\":\"contents\"}");
    assert_eq!(out["meta"]["tool_calls"], json!(2));
    assert_eq!(out["meta"]["iterations"], json!(2));
    assert_eq!(out["tool_results"][1]["success"], json!(true));
}

#[test]
fn agent_structured_output_makes_one_extra_call() {
    let mut h = Scripted::default();
    let inv = Invocation::new(
        "agent",
        "n",
        json!({}),
        json!({"prompt": "t", "resp_schema": {"type": "object", "properties": {"answer": {"type": "string"}}}}),
    );
    let out = run_with(&mut h, &inv).unwrap().outputs;
    assert_eq!(h.requests.len(), 2);
    assert!(
        h.requests[1].messages[0]
            .content
            .starts_with("Convert the Agent answer")
    );
    assert_eq!(out["data"], json!({"answer": "x"}));
    assert_eq!(out["meta"]["output_mode"], json!("structured"));
}

#[test]
fn provider_models_lists_the_catalogue_narrowed_to_the_allow_list() {
    let mut h = Scripted::default();
    let cfg = json!({"providerModelsConfig": {"provider": "lmstudio",
        "allowedModels": ["qwen/qwen3-4b-2507", "lmstudio/fake-model", "absent"]}});
    let inv = Invocation::new("provider_models", "n1", cfg.clone(), json!({}));
    let out = run_with(&mut h, &inv).expect("runs").outputs;
    assert_eq!(out["provider"], "lmstudio");
    // Catalogue order, with `provider/model` entries matching too.
    assert_eq!(out["models"], json!(["fake-model", "qwen/qwen3-4b-2507"]));

    // A wired allow-list wins over the config's; no allow-list keeps everything.
    let inv = Invocation::new(
        "provider_models",
        "n1",
        cfg,
        json!({"allowed_models": ["google/gemma-3n-e4b"]}),
    );
    assert_eq!(
        run_with(&mut h, &inv).expect("runs").outputs["models"],
        json!(["google/gemma-3n-e4b"])
    );
    let inv = Invocation::new(
        "provider_models",
        "n1",
        json!({}),
        json!({"provider": "lmstudio"}),
    );
    assert_eq!(
        run_with(&mut h, &inv).expect("runs").outputs["models"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[test]
fn provider_models_without_provider_or_catalogue_is_empty() {
    let mut h = Scripted::default();
    let inv = Invocation::new("provider_models", "n1", json!({}), json!({}));
    assert_eq!(
        Value::Object(run_with(&mut h, &inv).expect("runs").outputs),
        json!({"provider": "", "models": []})
    );
    // An unreachable provider is an empty catalogue, as in the seed.
    let inv = Invocation::new(
        "provider_models",
        "n1",
        json!({}),
        json!({"provider": "ollama"}),
    );
    assert_eq!(
        Value::Object(run_with(&mut h, &inv).expect("runs").outputs),
        json!({"provider": "ollama", "models": []})
    );
}

#[test]
fn node_types_declare_what_they_read_and_how_they_fail() {
    use InputFailure::{FailRun, Report, StartEmpty};
    use abstractgateway_plugin_sdk::{InputFailure, Node, NodeFailure};
    let got: Vec<(String, bool, InputFailure, NodeFailure)> = node_llm::LlmNodes::describe()
        .into_iter()
        .map(|t| {
            (
                t.name.clone(),
                t.reads.run_context,
                t.input_failure(),
                t.on_failure,
            )
        })
        .collect();
    let run = NodeFailure::FailRun;
    assert_eq!(
        got,
        [
            ("llm_call".into(), true, FailRun, run),
            ("agent".into(), true, StartEmpty, run),
            ("tool_calls".into(), false, FailRun, run),
            ("call_tool".into(), false, FailRun, run),
            ("provider_models".into(), false, Report, run),
        ]
    );
}
