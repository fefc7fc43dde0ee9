//! `tools`: tools granted to the plugin, served by the host's tool registry.

use serde_json::json;

use super::super::bindings::tools::{Host, ToolInfo};
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::llm::Answer;
use super::{ErrorCode, denied, error};

/// The tools the host can run (built-in tools and tool plugins).
pub trait ToolBackend: Send + Sync {
    /// Every tool known to the host.
    fn list(&self) -> Vec<ToolInfo>;
    /// Runs one tool for run `run_id` with JSON arguments.
    fn invoke(
        &self,
        run_id: &str,
        name: &str,
        arguments: serde_json::Value,
    ) -> Answer<serde_json::Value>;
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
        let run_id = self.rec.run_id().to_string();
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
                backend.invoke(&run_id, &name, args).await
            })
            .await?;
        Ok(got.map(|v| v.to_string()))
    }
}
