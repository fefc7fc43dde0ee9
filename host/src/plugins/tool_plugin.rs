//! Tool plugins (`tool-plugin` world): loaded like node plugins, described once, and run per call in a
//! fresh pooled store with their own grants and limits. Their host calls are recorded in the caller's run,
//! nested under the calling node (`<node>/tool:<name>#<call>`), and replayed if that call is tried again.

use std::sync::Arc;

use serde_json::Value;
use wasmtime::UpdateDeadline;
use wasmtime::component::Component;

use super::PluginHost;
use super::bindings::tool::ToolPluginPre;
use super::bindings::tools::ToolInfo;
use super::bindings::types::{Error, ErrorCode};
use super::caps::durability::SUSPENDED;
use super::caps::error;
use super::caps::tools::ToolContext;
use super::ctx::NodeCtx;
use super::grants::Grants;

/// The export that makes a component a tool plugin.
const TOOL_EXPORT: &str = "abstractgateway:plugin/tool-provider";

/// A tool plugin ready to instantiate.
pub struct ToolPlugin {
    /// Plugin name (file stem, or `<bundle>/<name>`).
    pub name: String,
    /// sha256 of the component bytes.
    pub digest: String,
    pub pre: ToolPluginPre<NodeCtx>,
    pub grants: Arc<Grants>,
    /// The tools it declared.
    pub tools: Vec<ToolInfo>,
}

/// Whether `component` exports the tool-provider interface (rather than `node`).
pub fn is_tool_plugin(engine: &wasmtime::Engine, component: &Component) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with(TOOL_EXPORT))
}

impl PluginHost {
    /// Links and describes a tool plugin and adds its tools to the registry.
    pub(super) fn load_tool_plugin(
        &self,
        name: &str,
        digest: &str,
        component: &Component,
        grants: Grants,
    ) -> Result<Arc<ToolPlugin>, String> {
        let registry = self
            .tools
            .get()
            .ok_or_else(|| format!("tool plugin {name}: this host has no tool registry"))?;
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(ToolPluginPre::new)
            .map_err(|e| format!("tool plugin {name}: cannot be linked: {e:#}"))?;
        let tools = self
            .describe_tools(&pre)
            .map_err(|e| format!("tool plugin {name}: describe() failed: {e}"))?;
        if tools.is_empty() {
            return Err(format!("tool plugin {name}: describe() lists no tool"));
        }
        for t in &tools {
            serde_json::from_str::<Value>(&t.parameters).map_err(|e| {
                format!(
                    "tool plugin {name}: the parameters of tool {:?} are not JSON: {e}",
                    t.name
                )
            })?;
        }
        let plugin = Arc::new(ToolPlugin {
            name: name.to_string(),
            digest: digest.to_string(),
            pre,
            grants: Arc::new(grants),
            tools,
        });
        registry.add_plugin(plugin.clone())?;
        Ok(plugin)
    }

    fn describe_tools(&self, pre: &ToolPluginPre<NodeCtx>) -> Result<Vec<ToolInfo>, String> {
        let mut ws = self.describe_store();
        self.block_on(async {
            let inst = pre
                .instantiate_async(&mut ws)
                .await
                .map_err(|e| format!("{e:#}"))?;
            inst.abstractgateway_plugin_tool_provider()
                .call_describe(&mut ws)
                .await
                .map_err(|e| format!("{e:#}"))
        })
    }

    /// Runs tool `name` of `plugin` for the caller `ctx`: a fresh store, the plugin's own grants and limits,
    /// its host calls recorded under the caller's node (and replayed from an earlier, interrupted try).
    pub async fn call_tool(
        &self,
        plugin: &ToolPlugin,
        ctx: ToolContext,
        name: &str,
        arguments: Value,
    ) -> Result<Value, Error> {
        let grants = plugin.grants.clone();
        let nested_id = ctx.recorder.node_id().to_string();
        let replay = match ctx.recorder.store() {
            Some(store) => {
                super::invoke::recorded(store, &ctx.run_id, ctx.recorder.started_seq(), &nested_id)
                    .map_err(|e| error(ErrorCode::Internal, e))?
                    .0
            }
            None => Vec::new(),
        };
        let rec = ctx.recorder.with_replay(replay, grants.max_host_calls);
        let seed = format!("{}:{nested_id}", ctx.run_id);
        let data = NodeCtx::new(grants.clone(), self.caps.clone(), rec, ctx.now_ms, &seed);
        let mut ws = wasmtime::Store::new(&self.engine.engine, data);
        ws.limiter(|c| &mut c.limiter);
        ws.set_epoch_deadline(1);
        let budget = std::time::Duration::from_millis(grants.timeout_ms);
        ws.epoch_deadline_callback(move |c| {
            if c.data().cpu_time() > budget {
                wasmtime::bail!("deadline");
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let result = match plugin.pre.instantiate_async(&mut ws).await {
            Ok(inst) => {
                inst.abstractgateway_plugin_tool_provider()
                    .call_call(&mut ws, name, &arguments.to_string())
                    .await
            }
            Err(e) => Err(e),
        };
        let flushed = ws.data_mut().rec.flush();
        let data = ws.data();
        let who = format!("tool {name} (plugin {})", plugin.name);
        if let Err(e) = flushed {
            return Err(error(ErrorCode::Internal, format!("{who}: {e}")));
        }
        match result {
            Ok(Ok(out)) => {
                if out.len() as u64 > grants.max_output_bytes {
                    return Err(error(
                        ErrorCode::TooLarge,
                        format!(
                            "{who} returned {} bytes; its limit is {}",
                            out.len(),
                            grants.max_output_bytes
                        ),
                    ));
                }
                serde_json::from_str(&out).map_err(|e| {
                    error(
                        ErrorCode::Internal,
                        format!("{who} returned invalid JSON: {e}"),
                    )
                })
            }
            Ok(Err(e)) => Err(e),
            Err(trap) => Err(trap_error(&who, &trap, data, &grants)),
        }
    }
}

/// A trapped tool plugin as the error its caller sees.
fn trap_error(who: &str, trap: &wasmtime::Error, data: &NodeCtx, grants: &Grants) -> Error {
    let cause = trap
        .chain()
        .last()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let first = cause.lines().next().unwrap_or_default();
    if data.suspend.is_some() || cause.contains(SUSPENDED) {
        return error(
            ErrorCode::Unsupported,
            format!("{who}: tool plugins cannot wait for events"),
        );
    }
    if data.limiter.memory_hit {
        return error(
            ErrorCode::TooLarge,
            format!(
                "{who} exceeded its memory limit of {} MiB",
                data.limiter.max_memory_mb()
            ),
        );
    }
    if cause == "deadline" || data.cpu_time() > std::time::Duration::from_millis(grants.timeout_ms)
    {
        return error(
            ErrorCode::Timeout,
            format!(
                "{who} exceeded its CPU time limit of {} ms",
                grants.timeout_ms
            ),
        );
    }
    if cause.starts_with("cancelled") {
        return error(ErrorCode::Cancelled, format!("{who} was cancelled"));
    }
    match trap.downcast_ref::<wasmtime::Trap>() {
        Some(t) => error(ErrorCode::Internal, format!("{who} trapped: {t}")),
        None => error(ErrorCode::Internal, format!("{who} failed: {first}")),
    }
}
