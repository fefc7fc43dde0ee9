//! `tools`: tools granted to the plugin, served by the host's tool registry (`crate::tools`).

use std::sync::Arc;

use serde_json::json;

use super::super::bindings::tools::{Host, ToolInfo};
use super::super::bindings::types::Error;
use super::super::component::Owner;
use super::super::ctx::NodeCtx;
use super::super::durable::{HostFn, Recorder};
use super::super::grants::Grants;
use super::llm::Answer;
use super::net::PrivateOk;
use super::{ErrorCode, denied, error};

/// What a tool call knows of its caller: the run, its workspace, the calling plugin's grants, and where the
/// host calls of a tool plugin are recorded.
pub struct ToolContext {
    /// The run the calling node belongs to.
    pub run_id: String,
    /// The run's workspace, chosen by the host: the only directory file tools may reach (none = no file
    /// tools).
    pub workspace_root: Option<String>,
    /// The run's bundle (`id@version`): its tool plugins are offered besides the operator's.
    pub bundle: Option<String>,
    /// The calling plugin's grants (`fetch_url` reaches only its `http` origins).
    pub grants: Arc<Grants>,
    /// The HTTP client `fetch_url` uses for this caller, and the private hosts it may reach.
    pub http: reqwest::Client,
    pub private_ok: PrivateOk,
    /// What the caller has left of its wall clock (a tool plugin never outlives its caller).
    pub wall_left: std::time::Duration,
    /// Records the host calls a tool plugin makes, nested under the caller's node and call.
    pub recorder: Recorder,
    /// The caller's frozen clock, ms since the epoch.
    pub now_ms: u64,
}

/// The tools the host can run (built-in tools and tool plugins).
pub trait ToolBackend: Send + Sync {
    /// Every tool a run of `bundle` (`id@version`) may use.
    fn list(&self, bundle: Option<&str>) -> Vec<ToolInfo>;
    /// Runs one tool with JSON arguments for the caller described by `ctx`.
    fn invoke(
        &self,
        ctx: ToolContext,
        name: &str,
        arguments: serde_json::Value,
    ) -> Answer<serde_json::Value>;
}

/// The label of nested records of a call to tool `name` (`<node>/tool:<name>#<call>`).
fn nested_label(name: &str) -> String {
    format!("tool:{name}")
}

impl Host for NodeCtx {
    async fn list_tools(&mut self) -> wasmtime::Result<Vec<ToolInfo>> {
        // A tool plugin calls no tools, so it lists none.
        let grants = self.grants.clone();
        let backend = self.caps.tools.clone().filter(|_| self.rec.depth() == 0);
        let bundle = self.bundle.clone();
        let got: Result<Vec<ToolInfo>, Error> = self
            .rec
            .call(
                HostFn::local("tools", "list-tools"),
                json!({}),
                async move {
                    Ok(backend
                        .map(|b| {
                            b.list(bundle.as_deref())
                                .into_iter()
                                .filter(|t| grants.allows_tool(&t.name))
                                .collect()
                        })
                        .unwrap_or_default())
                },
            )
            .await?;
        Ok(got.unwrap_or_default())
    }

    async fn invoke(
        &mut self,
        name: String,
        arguments: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        let args: serde_json::Value = match serde_json::from_str(&arguments) {
            Ok(v) => v,
            Err(e) => {
                return Ok(Err(error(
                    ErrorCode::InvalidInput,
                    format!("tool arguments are not JSON: {e}"),
                )));
            }
        };
        // The tool-plugin world names `tools` only for its types; a tool is never a tool caller.
        let from_tool = self.rec.depth() > 0;
        let allowed = self.grants.allows_tool(&name);
        // Outside `local` mode a person approves every tool call a third-party plugin makes: it cannot skip
        // that by asking. The built-in components ask for approval themselves where the seed does (the
        // agent and tool nodes) and run a tool as their own node's semantics elsewhere (`write_file`).
        let approved = self.caps.tool_mode == super::ToolMode::Local
            || self.owner == Owner::Builtin
            || self.take_approval(&name, &args);
        let backend = self.caps.tools.clone();
        let private_ok = self.caps.net.private_ok(&self.grants, &self.owner);
        let wall = std::time::Duration::from_millis(self.grants.wall_timeout_ms);
        // Built before `call` counts this call, so the nested records name this call's position.
        let ctx = ToolContext {
            run_id: self.rec.run_id().to_string(),
            workspace_root: self.workspace_root.clone(),
            bundle: self.bundle.clone(),
            grants: self.grants.clone(),
            http: self.caps.net.client(&private_ok),
            private_ok,
            wall_left: wall.saturating_sub(self.rec.clock.wall()),
            recorder: self.rec.nested(&nested_label(&name)),
            now_ms: self.now_ms,
        };
        let mode = self.caps.tool_mode.as_str();
        let req = json!({"name": name, "arguments": args});
        let got: Result<serde_json::Value, Error> = self
            .rec
            .call(HostFn::remote("tools", "invoke"), req, async move {
                if from_tool {
                    return Err(denied(format!(
                        "tool {name:?}: a tool plugin cannot call tools"
                    )));
                }
                if !allowed {
                    return Err(denied(format!("tool {name:?}")));
                }
                if !approved {
                    return Err(error(
                        ErrorCode::AccessDenied,
                        format!(
                            "tool {name:?} was not approved: in tool mode {mode:?} a person approves each \
                             tool call (a user wait listing the calls) before it runs"
                        ),
                    ));
                }
                let Some(backend) = backend else {
                    return Err(error(
                        ErrorCode::NotFound,
                        format!("no tool named {name:?}"),
                    ));
                };
                backend.invoke(ctx, &name, args).await
            })
            .await?;
        Ok(got.map(|v| v.to_string()))
    }
}

impl NodeCtx {
    /// Takes one approval of `name(arguments)`, if a person gave one in this execution.
    fn take_approval(&mut self, name: &str, arguments: &serde_json::Value) -> bool {
        match self
            .approved_tools
            .iter()
            .position(|(n, a)| n == name && a == arguments)
        {
            Some(i) => {
                self.approved_tools.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Notes the tool calls `details` (a wait's `tool_calls`) listed when `answer` approves them.
    pub fn note_approval(&mut self, details: &crate::run::Obj, answer: &serde_json::Value) {
        let Some(calls) = details
            .get("tool_calls")
            .and_then(serde_json::Value::as_array)
        else {
            return;
        };
        if !approves(answer) {
            return;
        }
        for c in calls {
            if let Some(name) = c.get("name").and_then(serde_json::Value::as_str) {
                let args = c.get("arguments").cloned().unwrap_or_else(|| json!({}));
                self.approved_tools.push((name.to_string(), args));
            }
        }
    }
}

/// Whether a resume payload approves the calls it answers (the seed's tool-approval answers: `approved`
/// true or yes, or a `response` of yes/approve); `mode: executed` (the client ran them) approves nothing.
pub fn approves(answer: &serde_json::Value) -> bool {
    if answer.get("mode").and_then(serde_json::Value::as_str) == Some("executed") {
        return false;
    }
    let yes = |s: &str| {
        matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "y" | "approve" | "approved"
        )
    };
    match answer.get("approved") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => yes(s),
        _ => answer
            .get("response")
            .and_then(serde_json::Value::as_str)
            .is_some_and(yes),
    }
}
