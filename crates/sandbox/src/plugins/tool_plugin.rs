//! Tool plugins (`tool-plugin` world): loaded like node plugins, described once, and run per call in a
//! fresh pooled store with their own grants and limits. Their host calls are recorded in the caller's run,
//! nested under the calling node (`<node>/tool:<name>#<call>`), and replayed if that call is tried again.

use std::sync::Arc;

use serde_json::Value;
use wasmtime::component::Component;

use super::PluginHost;
use super::bindings::tool::ToolPluginPre;
use super::bindings::tools::ToolInfo;
use super::bindings::types::{Error, ErrorCode};
use super::caps::error;
use super::caps::tools::ToolContext;
use super::component::Owner;
use super::ctx::NodeCtx;
use super::durable::MAX_TOOL_DEPTH;
use super::grants::Grants;
use super::load_error::{Kind, LoadError};
use super::sandbox::{Limits, Stop, run};

/// The export that makes a component a tool plugin.
const TOOL_EXPORT: &str = "abstractgateway:plugin/tool-provider";

/// A tool plugin ready to instantiate.
pub struct ToolPlugin {
    /// Plugin name (file stem, or `<bundle>/<name>`).
    pub name: String,
    /// Who installed it: a bundle's tools serve only that bundle's runs.
    pub owner: Owner,
    /// sha256 of the component bytes.
    pub digest: String,
    pub pre: ToolPre,
    pub grants: Arc<Grants>,
    /// The tools it declared.
    pub tools: Vec<ToolInfo>,
}

/// A linked tool component, by the contract version it was built against.
pub enum ToolPre {
    /// `abstractgateway:plugin@0.2.0`.
    Current(ToolPluginPre<NodeCtx>),
    /// `abstractgateway:plugin@0.1.0` (the tool-provider interface did not change; its imports go through
    /// the adapter in `v0_1`).
    V0_1(super::v0_1::bindings::tool::ToolPluginPre<NodeCtx>),
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
        owner: Owner,
    ) -> Result<Arc<ToolPlugin>, LoadError> {
        let registry = self.tools.get().ok_or_else(|| LoadError::NoToolRegistry {
            plugin: name.to_string(),
        })?;
        let pre = self
            .tool_linker
            .instantiate_pre(component)
            .and_then(|pre| match ToolPluginPre::new(pre.clone()) {
                Ok(p) => Ok(ToolPre::Current(p)),
                Err(current) => super::v0_1::bindings::tool::ToolPluginPre::new(pre)
                    .map(ToolPre::V0_1)
                    .map_err(|_| current),
            })
            .map_err(|e| LoadError::ToolLink {
                plugin: name.to_string(),
                detail: format!("{e:#}"),
            })?;
        let tools = self
            .describe_tools(&pre)
            .map_err(|detail| LoadError::Describe {
                kind: Kind::Tool,
                plugin: name.to_string(),
                detail,
            })?;
        if tools.is_empty() {
            return Err(LoadError::Empty {
                kind: Kind::Tool,
                plugin: name.to_string(),
            });
        }
        for t in &tools {
            serde_json::from_str::<Value>(&t.parameters).map_err(|e| LoadError::ToolSchema {
                plugin: name.to_string(),
                tool: t.name.clone(),
                detail: e.to_string(),
            })?;
        }
        let plugin = Arc::new(ToolPlugin {
            name: name.to_string(),
            owner,
            digest: digest.to_string(),
            pre,
            grants: Arc::new(grants),
            tools,
        });
        registry.add_plugin(plugin.clone())?;
        Ok(plugin)
    }

    fn describe_tools(&self, pre: &ToolPre) -> Result<Vec<ToolInfo>, String> {
        let (mut ws, limits) = self.describe_store();
        self.block_on(async {
            run(&mut ws, limits, None, async |ws| match pre {
                ToolPre::Current(pre) => {
                    let inst = pre.instantiate_async(&mut *ws).await?;
                    inst.abstractgateway_plugin_tool_provider()
                        .call_describe(&mut *ws)
                        .await
                }
                ToolPre::V0_1(pre) => {
                    let inst = pre.instantiate_async(&mut *ws).await?;
                    let tools = inst
                        .abstractgateway_plugin_tool_provider()
                        .call_describe(&mut *ws)
                        .await?;
                    Ok(tools.into_iter().map(super::v0_1::tool_info).collect())
                }
            })
            .await
            .map_err(|stop| stop.describe("describe()"))
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
        let who = format!("tool {name} (plugin {})", plugin.name);
        if ctx.recorder.depth() > MAX_TOOL_DEPTH {
            return Err(error(
                ErrorCode::AccessDenied,
                format!("{who}: tool calls nest deeper than {MAX_TOOL_DEPTH} levels"),
            ));
        }
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
        let cancel = ctx.recorder.cancel_flag().clone();
        let rec = ctx.recorder.with_replay(replay, grants.max_host_calls);
        let seed = format!("{}:{nested_id}", ctx.run_id);
        let mut data = NodeCtx::new(
            grants.clone(),
            self.caps.clone(),
            rec,
            ctx.now_ms,
            &seed,
            plugin.owner.clone(),
        );
        data.bundle = ctx.bundle.clone();
        // The tool's own limits, within what the caller has left of its wall clock.
        let mut limits = Limits::of(&grants);
        limits.wall = limits.wall.min(ctx.wall_left);
        let mut ws = super::sandbox::store(&self.engine.engine, data, limits, Some(cancel.clone()));
        let pre = &plugin.pre;
        let args = arguments.to_string();
        let result = run(&mut ws, limits, Some(cancel), async |ws| match pre {
            ToolPre::Current(pre) => {
                let inst = pre.instantiate_async(&mut *ws).await?;
                inst.abstractgateway_plugin_tool_provider()
                    .call_call(&mut *ws, name, &args)
                    .await
            }
            ToolPre::V0_1(pre) => {
                let inst = pre.instantiate_async(&mut *ws).await?;
                let got = inst
                    .abstractgateway_plugin_tool_provider()
                    .call_call(&mut *ws, name, &args)
                    .await?;
                Ok(got.map_err(Into::into))
            }
        })
        .await;
        if let Err(e) = ws.data_mut().rec.flush() {
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
            Err(stop) => Err(stop_error(&who, &stop)),
        }
    }
}

/// A stopped tool plugin as the error its caller sees.
fn stop_error(who: &str, stop: &Stop) -> Error {
    let code = match stop {
        Stop::Suspended => {
            return error(
                ErrorCode::Unsupported,
                format!("{who}: tool plugins cannot wait for events"),
            );
        }
        Stop::Memory { .. } | Stop::HostCalls(_) => ErrorCode::TooLarge,
        Stop::TimeLimit { .. } | Stop::WallClock { .. } => ErrorCode::Timeout,
        Stop::Cancelled => ErrorCode::Cancelled,
        Stop::Busy => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    error(code, stop.describe(who))
}
