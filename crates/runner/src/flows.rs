//! The set of runnable flows, keyed by namespaced workflow id (`bundle@version:flow`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::flow::CompiledFlow;

/// Compiled flows the runner can start and resume; swapped whole on reload.
#[derive(Default, Clone)]
pub struct Flows {
    by_id: HashMap<String, Arc<CompiledFlow>>,
    /// Listener workflows start at their `on_event` node instead of the flow's entry.
    entries: HashMap<String, String>,
}

impl Flows {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds (or replaces) a compiled flow under its workflow id.
    pub fn insert(&mut self, flow: CompiledFlow) {
        self.by_id.insert(flow.workflow_id.clone(), Arc::new(flow));
    }
    /// Registers the listener workflow of one `on_event` node (same graph, entry = that node).
    pub fn insert_listener(&mut self, id: &str, flow: Arc<CompiledFlow>, node_id: &str) {
        self.by_id.insert(id.to_string(), flow);
        self.entries.insert(id.to_string(), node_id.to_string());
    }
    /// The node a new run of `workflow_id` starts at.
    pub fn entry(&self, workflow_id: &str) -> Option<String> {
        self.entries
            .get(workflow_id)
            .cloned()
            .or_else(|| self.by_id.get(workflow_id).map(|f| f.entry.clone()))
    }
    /// Registers a compiled flow and the listener workflows of its `on_event` nodes.
    pub fn insert_with_listeners(&mut self, flow: CompiledFlow) {
        let flow = Arc::new(flow);
        for node in &flow.listeners {
            self.insert_listener(
                &crate::bundle::event_listener_workflow_id(&flow.workflow_id, node),
                flow.clone(),
                node,
            );
        }
        self.by_id.insert(flow.workflow_id.clone(), flow);
    }
    /// The flow registered under `workflow_id`.
    pub fn get(&self, workflow_id: &str) -> Option<Arc<CompiledFlow>> {
        self.by_id.get(workflow_id).cloned()
    }
    /// Number of flows.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
    /// True when no flow is loaded.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Flows shared by the API and the runner: the bundles' flows plus the generated wrappers of
/// scheduled runs (which survive bundle reloads and restarts).
#[derive(Default)]
pub struct SharedFlows {
    current: parking_lot::RwLock<Arc<Flows>>,
    /// Generated flows: their JSON (to persist and serve) and their compiled form.
    dynamic: parking_lot::Mutex<
        std::collections::BTreeMap<String, (serde_json::Value, Arc<CompiledFlow>)>,
    >,
}

impl SharedFlows {
    /// Starts with the bundles' flows.
    pub fn new(flows: Flows) -> Self {
        SharedFlows {
            current: parking_lot::RwLock::new(Arc::new(flows)),
            dynamic: Default::default(),
        }
    }
    /// The flows as of now (a cheap snapshot).
    pub fn get(&self) -> Arc<Flows> {
        self.current.read().clone()
    }
    /// Replaces the bundles' flows, keeping every generated flow.
    pub fn set_bundles(&self, mut flows: Flows) {
        for (id, (_, compiled)) in self.dynamic.lock().iter() {
            flows.by_id.insert(id.clone(), compiled.clone());
        }
        *self.current.write() = Arc::new(flows);
    }
    /// Adds or replaces a generated flow (a schedule wrapper; its `id` is its workflow id).
    pub fn put_dynamic(
        &self,
        id: &str,
        raw: serde_json::Value,
    ) -> Result<(), crate::flow::CompileError> {
        let compiled = Arc::new(crate::flow::compile(
            &raw,
            &crate::engine::NodeRegistry::new(),
        )?);
        self.dynamic
            .lock()
            .insert(id.to_string(), (raw, compiled.clone()));
        let mut flows = (*self.get()).clone();
        flows.by_id.insert(id.to_string(), compiled);
        *self.current.write() = Arc::new(flows);
        Ok(())
    }
    /// The JSON of a generated flow.
    pub fn dynamic(&self, id: &str) -> Option<serde_json::Value> {
        self.dynamic.lock().get(id).map(|(raw, _)| raw.clone())
    }
}
