//! `tools`: tools granted to the plugin, served by the host's tool registry (`crate::tools`).

use std::sync::Arc;

use serde_json::json;

use super::super::bindings::tools::{Host, ToolInfo};
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::{HostFn, Recorder};
use super::super::grants::Grants;
use super::llm::Answer;
use super::{ErrorCode, denied, error};

/// What a tool call knows of its caller: the run, its workspace, the calling plugin's grants, and where the
/// host calls of a tool plugin are recorded.
pub struct ToolContext {
    /// The run the calling node belongs to.
    pub run_id: String,
    /// The run's `workspace_root` var: the only directory file tools may reach (none = no file tools).
    pub workspace_root: Option<String>,
    /// The calling plugin's grants (`fetch_url` reaches only its `http` origins).
    pub grants: Arc<Grants>,
    /// Records the host calls a tool plugin makes, nested under the caller's node and call.
    pub recorder: Recorder,
    /// The caller's frozen clock, ms since the epoch.
    pub now_ms: u64,
}

/// The tools the host can run (built-in tools and tool plugins).
pub trait ToolBackend: Send + Sync {
    /// Every tool known to the host.
    fn list(&self) -> Vec<ToolInfo>;
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
        let grants = self.grants.clone();
        let backend = self.caps.tools.clone();
        let got: Result<Vec<ToolInfo>, Error> = self
            .rec
            .call(
                HostFn::local("tools", "list-tools"),
                json!({}),
                async move {
                    Ok(backend
                        .map(|b| {
                            b.list()
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
        let allowed = self.grants.allows_tool(&name);
        let backend = self.caps.tools.clone();
        // Built before `call` counts this call, so the nested records name this call's position.
        let ctx = ToolContext {
            run_id: self.rec.run_id().to_string(),
            workspace_root: self.workspace_root.clone(),
            grants: self.grants.clone(),
            recorder: self.rec.nested(&nested_label(&name)),
            now_ms: self.now_ms,
        };
        let req = json!({"name": name, "arguments": args});
        let got: Result<serde_json::Value, Error> = self
            .rec
            .call(HostFn::remote("tools", "invoke"), req, async move {
                if !allowed {
                    return Err(denied(format!("tool {name:?}")));
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
