//! The adapter that keeps components built against `abstractgateway:plugin@0.1.0` (`wit/0.1.0/`) running.
//!
//! Every 0.1.0 import is served by the 0.2.0 implementation (one `caps` module per capability, one recorder),
//! with its values converted; 0.1.0's conventions become 0.2.0's types here and nowhere else:
//! - a node's result: the reserved output keys `_ambient`, `_complete_output`, `_effect_payload`,
//!   `_context_append` and `_context_messages` become the fields of [`NodeOutput`];
//! - a wait: `await-event(name, details)` with `details.reason` `user`/`key`/other becomes a [`PluginWait`];
//! - what a node type reads and how it fails: 0.1.0 could not declare it, so the node type names that had
//!   those behaviours in 0.1.0 hosts keep them ([`legacy_decl`]);
//! - the run context reaches a node that reads it as the input `_run_context`.
//!
//! Pin expressions are evaluated by 0.2.0 components only (0.1.0 had no public contract for them).

use serde_json::Value;

use super::bindings as current;
use super::caps::durability::json_object;
use super::component::NodeDecl;
use super::ctx::NodeCtx;
use crate::engine::{
    ContextEdit, InputFailure, NodeFailure, NodeOutput, PluginWait, Reads, WaitKind,
};
use crate::run::Obj;

/// Rust bindings of the frozen 0.1.0 package.
pub mod bindings {
    /// The 0.1.0 `node-plugin` world.
    pub mod node {
        wasmtime::component::bindgen!({
            path: "../../wit/0.1.0",
            world: "node-plugin",
            imports: { default: async | trappable },
            exports: { default: async },
        });
    }

    /// The 0.1.0 `tool-plugin` world; its imports share the node world's bindings.
    pub mod tool {
        wasmtime::component::bindgen!({
            path: "../../wit/0.1.0",
            world: "tool-plugin",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "abstractgateway:plugin/types": super::node::abstractgateway::plugin::types,
                "abstractgateway:plugin/tools": super::node::abstractgateway::plugin::tools,
                "abstractgateway:plugin/http": super::node::abstractgateway::plugin::http,
                "abstractgateway:plugin/kv": super::node::abstractgateway::plugin::kv,
                "abstractgateway:plugin/log": super::node::abstractgateway::plugin::log,
                "abstractgateway:plugin/artifacts": super::node::abstractgateway::plugin::artifacts,
                "abstractgateway:plugin/durability": super::node::abstractgateway::plugin::durability,
            },
        });
    }
}

use bindings::node::abstractgateway::plugin as old;
pub use bindings::node::exports::abstractgateway::plugin::node as node_export;

/// The reserved input key that carried the run context to 0.1.0 nodes.
const RUN_CONTEXT_KEY: &str = "_run_context";

/// How a 0.1.0 node type behaves, from its name and effect: what 0.1.0 hosts hard-coded.
pub fn legacy_decl(t: &node_export::NodeType) -> NodeDecl {
    let name = t.name.as_str();
    let reads_context = matches!(
        name,
        "llm_call"
            | "agent"
            | "memory_note"
            | "memory_query"
            | "memory_compact"
            | "memory_rehydrate"
    );
    NodeDecl {
        name: t.name.clone(),
        effect: t.effect.clone(),
        reads: Reads {
            run_context: reads_context,
            vars: false,
        },
        on_input_failure: match (&t.effect, t.effect.as_deref() == Some("agent")) {
            (_, true) => InputFailure::StartEmpty,
            (Some(_), false) => InputFailure::FailRun,
            (None, false) => InputFailure::Report,
        },
        on_failure: if matches!(name, "code" | "function" | "write_file") {
            NodeFailure::CompleteRun
        } else {
            NodeFailure::FailRun
        },
    }
}

/// The 0.1.0 invocation: the run context, when given, among the inputs.
pub fn invocation(
    node_type: String,
    node_id: String,
    config: String,
    inputs: &Value,
    run_context: Option<&Value>,
) -> node_export::Invocation {
    let inputs = match (run_context, inputs) {
        (Some(ctx), Value::Object(m)) => {
            let mut m = m.clone();
            m.insert(RUN_CONTEXT_KEY.into(), ctx.clone());
            Value::Object(m).to_string()
        }
        _ => inputs.to_string(),
    };
    node_export::Invocation {
        node_type,
        node_id,
        config,
        inputs,
    }
}

/// A 0.1.0 node's output object as a [`NodeOutput`]: the reserved keys taken out into their fields.
pub fn node_output(mut out: Obj) -> NodeOutput {
    let ambient = out.remove("_ambient");
    let complete = out.remove("_complete_output");
    let effect_payload = out.remove("_effect_payload");
    let replace = match out.remove("_context_messages") {
        Some(Value::Array(list)) => Some(list),
        _ => None,
    };
    let append = match out.remove("_context_append") {
        Some(Value::Array(turn)) => Some(turn),
        _ => None,
    };
    let context_edit = match (replace, append) {
        // 0.1.0 applied the new list, then the appended turn.
        (Some(mut list), Some(turn)) => {
            list.extend(turn);
            Some(ContextEdit::Replace(list))
        }
        (Some(list), None) => Some(ContextEdit::Replace(list)),
        (None, Some(turn)) => Some(ContextEdit::Append(turn)),
        (None, None) => None,
    };
    NodeOutput {
        outputs: out,
        ambient,
        complete,
        effect_payload,
        context_edit,
    }
}

/// A 0.1.0 `await-event(name, details)` as a wait: `details.reason` chooses its kind.
pub fn wait(name: String, mut details: Obj) -> PluginWait {
    let kind = match details.remove("reason").as_ref().and_then(Value::as_str) {
        Some("user") => WaitKind::User,
        Some("key") => WaitKind::Key,
        _ => WaitKind::Event,
    };
    let prompt = match details.remove("prompt") {
        Some(Value::String(p)) => Some(p),
        Some(other) => {
            details.insert("prompt".into(), other);
            None
        }
        None => None,
    };
    let choices = match details.remove("choices") {
        Some(Value::Array(c)) => Some(c),
        Some(other) => {
            details.insert("choices".into(), other);
            None
        }
        None => None,
    };
    PluginWait {
        kind,
        name,
        prompt,
        choices,
        details,
    }
}

/// A 0.1.0 tool description in the host's terms.
pub fn tool_info(t: old::tools::ToolInfo) -> current::tools::ToolInfo {
    current::tools::ToolInfo {
        name: t.name,
        description: t.description,
        parameters: t.parameters,
    }
}

// Values between the two versions. Records whose fields did not change convert field by field.

macro_rules! same_fields {
    ($from:path => $to:path { $($f:ident),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(v: $from) -> Self {
                use $from as From_;
                let From_ { $($f),* } = v;
                Self { $($f: $f.into()),* }
            }
        }
    };
}

same_fields!(old::http::Header => current::http::Header { name, value });
same_fields!(current::http::Header => old::http::Header { name, value });
impl From<current::http::Response> for old::http::Response {
    fn from(r: current::http::Response) -> Self {
        old::http::Response {
            status: r.status,
            headers: r.headers.into_iter().map(Into::into).collect(),
            body: r.body,
        }
    }
}
same_fields!(old::voice::Synthesis => current::voice::Synthesis { text, voice, format, provider, model });
same_fields!(current::voice::Audio => old::voice::Audio { artifact_id, content_type, size, duration_ms });
same_fields!(old::voice::Transcription => current::voice::Transcription {
    artifact_id, language, hint, provider, model
});
same_fields!(current::voice::Transcript => old::voice::Transcript { text, language });
same_fields!(current::artifacts::ArtifactInfo => old::artifacts::ArtifactInfo {
    id, content_type, size, name
});
same_fields!(current::tools::ToolInfo => old::tools::ToolInfo { name, description, parameters });
same_fields!(current::llm::ToolCall => old::llm::ToolCall { call_id, name, arguments });
same_fields!(current::llm::Usage => old::llm::Usage { input_tokens, output_tokens, total_tokens });
impl From<current::llm::Response> for old::llm::Response {
    fn from(r: current::llm::Response) -> Self {
        old::llm::Response {
            content: r.content,
            reasoning: r.reasoning,
            tool_calls: r.tool_calls.into_iter().map(Into::into).collect(),
            finish_reason: r.finish_reason,
            usage: r.usage.into(),
            provider: r.provider,
            model: r.model,
        }
    }
}

impl From<current::types::Error> for old::types::Error {
    fn from(e: current::types::Error) -> Self {
        use current::types::ErrorCode as N;
        use old::types::ErrorCode as O;
        old::types::Error {
            code: match e.code {
                N::InvalidInput => O::InvalidInput,
                N::AccessDenied => O::AccessDenied,
                N::NotFound => O::NotFound,
                N::RateLimited => O::RateLimited,
                N::Timeout => O::Timeout,
                N::Cancelled => O::Cancelled,
                N::Unavailable => O::Unavailable,
                N::TooLarge => O::TooLarge,
                N::Internal => O::Internal,
                N::Unsupported => O::Unsupported,
            },
            message: e.message,
            retryable: e.retryable,
        }
    }
}

impl From<old::types::Error> for current::types::Error {
    fn from(e: old::types::Error) -> Self {
        use current::types::ErrorCode as N;
        use old::types::ErrorCode as O;
        current::types::Error {
            code: match e.code {
                O::InvalidInput => N::InvalidInput,
                O::AccessDenied => N::AccessDenied,
                O::NotFound => N::NotFound,
                O::RateLimited => N::RateLimited,
                O::Timeout => N::Timeout,
                O::Cancelled => N::Cancelled,
                O::Unavailable => N::Unavailable,
                O::TooLarge => N::TooLarge,
                O::Internal => N::Internal,
                O::Unsupported => N::Unsupported,
            },
            message: e.message,
            retryable: e.retryable,
        }
    }
}

/// A 0.2.0 answer as the 0.1.0 one.
fn back<T, U: From<T>>(
    r: Result<T, current::types::Error>,
) -> wasmtime::Result<Result<U, old::types::Error>> {
    Ok(r.map(U::from).map_err(Into::into))
}

/// A refusal made by the adapter itself (a 0.1.0 value 0.2.0 cannot express).
fn invalid<T>(message: String) -> wasmtime::Result<Result<T, old::types::Error>> {
    Ok(Err(old::types::Error {
        code: old::types::ErrorCode::InvalidInput,
        message,
        retryable: false,
    }))
}

impl old::types::Host for NodeCtx {}

impl old::llm::Host for NodeCtx {
    async fn complete(
        &mut self,
        req: old::llm::Request,
    ) -> wasmtime::Result<Result<old::llm::Response, old::types::Error>> {
        let mut messages = Vec::with_capacity(req.messages.len());
        for m in req.messages {
            let Some(role) = super::caps::llm::role_of(&m.role) else {
                return invalid(format!("unknown message role {:?}", m.role));
            };
            messages.push(current::llm::Message {
                role,
                content: m.content,
                name: m.name,
                tool_call_id: m.tool_call_id,
                tool_calls: m.tool_calls,
            });
        }
        let req = current::llm::Request {
            provider: req.provider,
            model: req.model,
            messages,
            tools: req.tools,
            response_schema: req.response_schema,
            temperature: req.temperature,
            max_tokens: req.max_tokens,
            seed: req.seed,
            options: req.options,
        };
        back(current::llm::Host::complete(self, req).await?)
    }

    async fn list_models(
        &mut self,
        provider: Option<String>,
    ) -> wasmtime::Result<Result<Vec<String>, old::types::Error>> {
        back(current::llm::Host::list_models(self, provider).await?)
    }
}

impl old::tools::Host for NodeCtx {
    async fn list_tools(&mut self) -> wasmtime::Result<Vec<old::tools::ToolInfo>> {
        Ok(current::tools::Host::list_tools(self)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    async fn invoke(
        &mut self,
        name: String,
        arguments: String,
    ) -> wasmtime::Result<Result<String, old::types::Error>> {
        back(current::tools::Host::invoke(self, name, arguments).await?)
    }
}

impl old::voice::Host for NodeCtx {
    async fn synthesize(
        &mut self,
        req: old::voice::Synthesis,
    ) -> wasmtime::Result<Result<old::voice::Audio, old::types::Error>> {
        back(current::voice::Host::synthesize(self, req.into()).await?)
    }

    async fn transcribe(
        &mut self,
        req: old::voice::Transcription,
    ) -> wasmtime::Result<Result<old::voice::Transcript, old::types::Error>> {
        back(current::voice::Host::transcribe(self, req.into()).await?)
    }
}

impl old::http::Host for NodeCtx {
    async fn fetch(
        &mut self,
        req: old::http::Request,
    ) -> wasmtime::Result<Result<old::http::Response, old::types::Error>> {
        let Some(method) = super::caps::http::method_of(&req.method) else {
            return invalid(format!(
                "unsupported method {:?}",
                req.method.to_ascii_uppercase()
            ));
        };
        let req = current::http::Request {
            method,
            url: req.url,
            headers: req.headers.into_iter().map(Into::into).collect(),
            body: req.body,
            timeout_ms: req.timeout_ms,
        };
        back(current::http::Host::fetch(self, req).await?)
    }
}

impl old::kv::Host for NodeCtx {
    async fn get(
        &mut self,
        bucket: String,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, old::types::Error>> {
        back(current::kv::Host::get(self, bucket, key).await?)
    }

    async fn set(
        &mut self,
        bucket: String,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), old::types::Error>> {
        back(current::kv::Host::set(self, bucket, key, value).await?)
    }

    async fn delete(
        &mut self,
        bucket: String,
        key: String,
    ) -> wasmtime::Result<Result<(), old::types::Error>> {
        back(current::kv::Host::delete(self, bucket, key).await?)
    }

    async fn list_keys(
        &mut self,
        bucket: String,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, old::types::Error>> {
        back(current::kv::Host::list_keys(self, bucket, prefix).await?)
    }
}

impl old::log::Host for NodeCtx {
    async fn log(&mut self, lvl: old::log::Level, message: String) -> wasmtime::Result<()> {
        use current::log::Level as N;
        use old::log::Level as O;
        let lvl = match lvl {
            O::Trace => N::Trace,
            O::Debug => N::Debug,
            O::Info => N::Info,
            O::Warn => N::Warn,
            O::Error => N::Error,
        };
        current::log::Host::log(self, lvl, message).await
    }
}

impl old::artifacts::Host for NodeCtx {
    async fn put(
        &mut self,
        content_type: String,
        data: Vec<u8>,
        name: Option<String>,
    ) -> wasmtime::Result<Result<old::artifacts::ArtifactInfo, old::types::Error>> {
        back(current::artifacts::Host::put(self, content_type, data, name).await?)
    }

    async fn get(&mut self, id: String) -> wasmtime::Result<Result<Vec<u8>, old::types::Error>> {
        back(current::artifacts::Host::get(self, id).await?)
    }

    async fn info(
        &mut self,
        id: String,
    ) -> wasmtime::Result<Result<old::artifacts::ArtifactInfo, old::types::Error>> {
        back(current::artifacts::Host::info(self, id).await?)
    }
}

impl old::durability::Host for NodeCtx {
    async fn idempotency_key(&mut self) -> wasmtime::Result<String> {
        current::durability::Host::idempotency_key(self).await
    }

    async fn await_event(
        &mut self,
        name: String,
        details: String,
    ) -> wasmtime::Result<Result<String, old::types::Error>> {
        let Some(details) = json_object(&details) else {
            return invalid("await-event details must be a JSON object".into());
        };
        back(self.await_wait(wait(name, details)).await?)
    }

    async fn emit(&mut self, name: String, payload: String) -> wasmtime::Result<()> {
        current::durability::Host::emit(self, name, payload).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reserved_keys_become_the_result_fields() {
        let out = node_output(obj(json!({"response": "hi", "_ambient": {"a": 1},
            "_complete_output": {"success": true}, "_effect_payload": {"type": "answer_user"},
            "_context_append": [{"role": "user"}]})));
        assert_eq!(out.outputs, obj(json!({"response": "hi"})));
        assert_eq!(out.ambient, Some(json!({"a": 1})));
        assert_eq!(out.complete, Some(json!({"success": true})));
        assert_eq!(out.effect_payload, Some(json!({"type": "answer_user"})));
        assert_eq!(
            out.context_edit,
            Some(ContextEdit::Append(vec![json!({"role": "user"})]))
        );
        let both = node_output(obj(
            json!({"_context_messages": [1], "_context_append": [2], "x": null}),
        ));
        assert_eq!(
            both.context_edit,
            Some(ContextEdit::Replace(vec![json!(1), json!(2)]))
        );
        assert_eq!(both.outputs, obj(json!({"x": null})));
    }

    #[test]
    fn a_reason_chooses_the_wait() {
        let w = wait(
            "k".into(),
            obj(json!({"reason": "user", "prompt": "ok?", "choices": ["y", 2], "mode": "m"})),
        );
        assert_eq!(w.kind, WaitKind::User);
        assert_eq!(w.prompt.as_deref(), Some("ok?"));
        assert_eq!(w.choices, Some(vec![json!("y"), json!(2)]));
        assert_eq!(w.details, obj(json!({"mode": "m"})));
        assert_eq!(
            wait("k".into(), obj(json!({"reason": "key"}))).kind,
            WaitKind::Key
        );
        let e = wait("e".into(), obj(json!({"reason": "other", "prompt": 3})));
        assert_eq!(e.kind, WaitKind::Event);
        assert_eq!(e.prompt, None);
        assert_eq!(e.details, obj(json!({"prompt": 3})));
    }

    #[test]
    fn legacy_node_types_keep_their_behaviour() {
        let t = |name: &str, effect: Option<&str>| node_export::NodeType {
            name: name.into(),
            label: name.into(),
            description: String::new(),
            inputs: vec![],
            outputs: vec![],
            effect: effect.map(String::from),
        };
        let agent = legacy_decl(&t("agent", Some("agent")));
        assert!(agent.reads.run_context);
        assert_eq!(agent.on_input_failure, InputFailure::StartEmpty);
        let code = legacy_decl(&t("code", None));
        assert_eq!(code.on_failure, NodeFailure::CompleteRun);
        assert_eq!(code.on_input_failure, InputFailure::Report);
        assert!(!code.reads.run_context);
        let answer = legacy_decl(&t("answer_user", Some("answer_user")));
        assert_eq!(answer.on_input_failure, InputFailure::FailRun);
        assert_eq!(answer.on_failure, NodeFailure::FailRun);
    }

    #[test]
    fn the_run_context_rides_among_the_inputs() {
        let inv = invocation(
            "llm_call".into(),
            "n".into(),
            "{}".into(),
            &json!({"prompt": "p"}),
            Some(&json!({"messages": []})),
        );
        let inputs: Value = serde_json::from_str(&inv.inputs).expect("json");
        assert_eq!(
            inputs,
            json!({"prompt": "p", "_run_context": {"messages": []}})
        );
    }
}
