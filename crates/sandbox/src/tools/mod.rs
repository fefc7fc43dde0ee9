//! The host's tool registry: built-in tools (files confined to the run's workspace, `fetch_url` confined to
//! the caller's granted origins) and the tools of tool plugins; it answers the `tools` capability.

pub mod args;
pub mod fetch;
pub mod files;
pub mod glob;
pub mod specs;
pub mod workspace;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::RwLock;
use serde_json::Value;

use crate::plugins::PluginHost;
use crate::plugins::bindings::tools::ToolInfo;
use crate::plugins::bindings::types::{Error, ErrorCode};
use crate::plugins::caps::error;
use crate::plugins::caps::llm::Answer;
use crate::plugins::caps::tools::{ToolBackend, ToolContext};
use crate::plugins::component::Owner;
use crate::plugins::tool_plugin::ToolPlugin;
use workspace::Workspace;

/// Why [`ToolRegistry::add_plugin`] refused a tool plugin: one of its tool names is taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolNameError {
    /// The name of a built-in tool.
    #[error("tool plugin {plugin}: tool {tool:?} is a built-in tool's name")]
    Builtin { plugin: String, tool: String },
    /// A name another plugin (the operator's, or one of the same bundle) already provides.
    #[error("tool plugin {plugin}: tool {tool:?} is already provided by plugin {other}")]
    Taken {
        plugin: String,
        tool: String,
        other: String,
    },
}

/// For callers that still report load failures as text (the plugin host's loader).
impl From<ToolNameError> for String {
    fn from(e: ToolNameError) -> String {
        e.to_string()
    }
}

/// Every tool the host runs, by name.
pub struct ToolRegistry {
    builtins: Vec<ToolInfo>,
    /// tool name → the plugins providing it: at most one of the operator's (built in or plugins dir), and
    /// at most one per bundle, which serves only that bundle's runs.
    plugins: RwLock<BTreeMap<String, Vec<Arc<ToolPlugin>>>>,
    /// The plugin host that runs tool plugins (set once it exists: it owns this registry's capabilities).
    host: OnceLock<Weak<PluginHost>>,
}

impl Default for ToolRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolRegistry {
    /// A registry with the built-in tools and no plugin yet.
    pub fn new() -> ToolRegistry {
        ToolRegistry {
            builtins: specs::builtin_specs(),
            plugins: RwLock::new(BTreeMap::new()),
            host: OnceLock::new(),
        }
    }

    /// Connects the plugin host that runs tool plugins.
    pub fn attach(&self, host: &Arc<PluginHost>) {
        let _ = self.host.set(Arc::downgrade(host));
    }

    /// Adds (or replaces, for a new version of the same plugin) the tools of `plugin`; a name taken by a
    /// built-in tool, by the operator's plugins, or by another plugin of the same bundle is refused.
    pub fn add_plugin(&self, plugin: Arc<ToolPlugin>) -> Result<(), ToolNameError> {
        let mut map = self.plugins.write();
        for t in &plugin.tools {
            if self.builtins.iter().any(|b| b.name == t.name) {
                return Err(ToolNameError::Builtin {
                    plugin: plugin.name.clone(),
                    tool: t.name.clone(),
                });
            }
            let clash = map.get(&t.name).and_then(|ps| {
                ps.iter().find(|other| {
                    other.name != plugin.name
                        && (scope(other).is_none() || scope(other) == scope(&plugin))
                })
            });
            if let Some(other) = clash {
                return Err(ToolNameError::Taken {
                    plugin: plugin.name.clone(),
                    tool: t.name.clone(),
                    other: other.name.clone(),
                });
            }
        }
        for ps in map.values_mut() {
            ps.retain(|p| p.name != plugin.name);
        }
        for t in &plugin.tools {
            map.entry(t.name.clone()).or_default().push(plugin.clone());
        }
        map.retain(|_, ps| !ps.is_empty());
        Ok(())
    }

    /// The plugin providing tool `name` to a run of `bundle` (`id@version`), if a plugin does.
    pub fn plugin_of(&self, name: &str, bundle: Option<&str>) -> Option<Arc<ToolPlugin>> {
        self.plugins
            .read()
            .get(name)?
            .iter()
            .find(|p| visible(p, bundle))
            .cloned()
    }

    /// Drops the tools bundle `bundle_ref` brought.
    pub fn remove_bundle(&self, bundle_ref: &str) {
        let mut map = self.plugins.write();
        for ps in map.values_mut() {
            ps.retain(|p| scope(p) != Some(bundle_ref));
        }
        map.retain(|_, ps| !ps.is_empty());
    }

    /// Drops the tools of every bundle not in `installed` (bundle refs): a deleted bundle's tools go with it.
    pub fn retain_bundles(&self, installed: &[String]) {
        let mut map = self.plugins.write();
        for ps in map.values_mut() {
            ps.retain(|p| scope(p).is_none_or(|b| installed.iter().any(|i| i == b)));
        }
        map.retain(|_, ps| !ps.is_empty());
    }
}

/// The bundle a tool plugin belongs to (`None`: the operator's).
fn scope(p: &ToolPlugin) -> Option<&str> {
    match &p.owner {
        Owner::Bundle { bundle_ref, .. } => Some(bundle_ref),
        Owner::Builtin | Owner::Operator => None,
    }
}

/// Whether a run of `bundle` may use `p`.
fn visible(p: &ToolPlugin, bundle: Option<&str>) -> bool {
    scope(p).is_none_or(|s| Some(s) == bundle)
}

fn workspace(ctx: &ToolContext, tool: &str) -> Result<Workspace, Error> {
    ctx.workspace_root
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(Workspace::new)
        .ok_or_else(|| {
            error(
                ErrorCode::Unavailable,
                format!("{tool}: this run has no workspace (its var workspace_root is not set)"),
            )
        })
}

/// A file tool: synchronous, given the run's workspace and the call's arguments.
type FileTool = fn(&Workspace, Value) -> Result<Value, Error>;

/// Runs a file tool off the async threads.
async fn blocking(ws: Workspace, args: Value, f: FileTool) -> Result<Value, Error> {
    tokio::task::spawn_blocking(move || f(&ws, args))
        .await
        .unwrap_or_else(|e| Err(error(ErrorCode::Internal, format!("file tool failed: {e}"))))
}

impl ToolBackend for ToolRegistry {
    fn list(&self, bundle: Option<&str>) -> Vec<ToolInfo> {
        let mut out = self.builtins.clone();
        for (name, plugins) in self.plugins.read().iter() {
            if let Some(t) = plugins
                .iter()
                .find(|p| visible(p, bundle))
                .and_then(|p| p.tools.iter().find(|t| &t.name == name))
            {
                out.push(t.clone());
            }
        }
        out
    }

    fn invoke(&self, ctx: ToolContext, name: &str, arguments: Value) -> Answer<Value> {
        let file_tool: Option<FileTool> = match name {
            "list_files" => Some(files::list_files),
            "read_file" => Some(files::read_file),
            "write_file" => Some(files::write_file),
            "search_files" => Some(files::search_files),
            _ => None,
        };
        if let Some(f) = file_tool {
            let ws = workspace(&ctx, name);
            return Box::pin(async move { blocking(ws?, arguments, f).await });
        }
        if name == "fetch_url" {
            return Box::pin(async move {
                fetch::fetch_url(&ctx.http, &ctx.grants, &ctx.private_ok, arguments).await
            });
        }
        let Some(plugin) = self.plugin_of(name, ctx.bundle.as_deref()) else {
            let msg = format!("no tool named {name:?}");
            return Box::pin(async move { Err(error(ErrorCode::NotFound, msg)) });
        };
        let host = self.host.get().and_then(Weak::upgrade);
        let name = name.to_string();
        Box::pin(async move {
            let Some(host) = host else {
                return Err(error(
                    ErrorCode::Unavailable,
                    "the plugin host that runs tool plugins is gone",
                ));
            };
            host.call_tool(&plugin, ctx, &name, arguments).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_tool_names_keep_their_messages() {
        let builtin = ToolNameError::Builtin {
            plugin: "b@1/t".into(),
            tool: "read_file".into(),
        };
        assert_eq!(
            builtin.to_string(),
            "tool plugin b@1/t: tool \"read_file\" is a built-in tool's name"
        );
        let taken = ToolNameError::Taken {
            plugin: "b@1/t".into(),
            tool: "lookup".into(),
            other: "ops".into(),
        };
        assert_eq!(
            String::from(taken),
            "tool plugin b@1/t: tool \"lookup\" is already provided by plugin ops"
        );
    }
}
