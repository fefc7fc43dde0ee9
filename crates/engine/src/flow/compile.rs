//! Compiles a VisualFlow into the graph the engine walks (§3.1 of the flow format).
//!
//! Every check that can fail does so here, at bundle load, so a run never meets an
//! unsupported node or a malformed branch halfway through.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde_json::{Value, json};

use super::catalogue;
use super::model::{Edge, Node, Pin, VisualFlow};
use crate::engine::nodes::{Control, NodeKind, NodeRegistry};
use crate::engine::pinexpr::{self, PinExpr, PinExprs};

/// Where execution goes after an exec node.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// No outgoing exec edge: the node completes the run (or returns to the active control node).
    End,
    /// One `exec-out` edge.
    Linear(String),
    /// Branch handles (`true|false`, `case:*|default`, `again|limit_reached`, `loop|done`, `then:*|completed`).
    Handles(BTreeMap<String, String>),
}

/// One data wire into a node pin.
#[derive(Debug, Clone)]
pub struct DataEdge {
    pub pin: String,
    pub source: String,
    pub handle: String,
}

/// A compiled node: its parsed form, how to run it and where to go next.
#[derive(Debug, Clone)]
pub struct CompiledNode {
    pub node: Node,
    pub kind: NodeKind,
    pub exec: bool,
    pub next: Next,
    /// Data wires into this node, keyed by target pin.
    pub inputs: Vec<DataEdge>,
    pub data_inputs: Vec<String>,
    pub data_outputs: Vec<String>,
    /// Ordered `then:*` handles for sequence/parallel.
    pub then_handles: Vec<String>,
    /// `data.pinExpressions`, applied last when the node's inputs resolve.
    pub pin_exprs: Vec<PinExpr>,
}

impl CompiledNode {
    /// The label a human sees in the editor (falls back to the id).
    pub fn label(&self) -> &str {
        self.node
            .data
            .get("label")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.node.id)
    }
    /// The target of a branch handle, if wired.
    pub fn handle_target(&self, handle: &str) -> Option<&str> {
        match &self.next {
            Next::Handles(m) => m.get(handle).map(String::as_str),
            Next::Linear(t) if handle == "exec-out" => Some(t),
            _ => None,
        }
    }
}

/// A flow ready to run.
#[derive(Debug, Clone)]
pub struct CompiledFlow {
    pub workflow_id: String,
    pub name: String,
    pub entry: String,
    pub nodes: foldhash::HashMap<String, CompiledNode>,
    /// `on_event` nodes: each starts a listener run next to every root run.
    pub listeners: Vec<String>,
    /// Node ids in document order.
    pub order: Vec<String>,
    /// How this flow's pin expressions are evaluated (`None` when it has none).
    pub pin_exprs: Option<PinExprs>,
    /// True when a run of this flow touches nothing but its own state: no effect, plugin, memory, listener or
    /// pin-expression node (see [`CompiledFlow::touches_only_its_run`]). Such a run can be stepped before its
    /// start is durable, because a step that is lost with an unacknowledged start did nothing anyone can see.
    pub self_contained: bool,
}

impl CompiledFlow {
    pub fn node(&self, id: &str) -> Option<&CompiledNode> {
        self.nodes.get(id)
    }

    /// Whether every node of this flow only reads and writes its run's own state. Kinds are listed, never
    /// excluded, so a kind added later is not self-contained until someone decides it is.
    fn touches_only_its_run(&self) -> bool {
        self.listeners.is_empty()
            && self.pin_exprs.is_none()
            && self.nodes.values().all(|n| {
                n.pin_exprs.is_empty()
                    && matches!(
                        n.kind,
                        NodeKind::Start
                            | NodeKind::Entry(_)
                            | NodeKind::End
                            | NodeKind::Control(_)
                            | NodeKind::VarWrite(_)
                            | NodeKind::Builtin(_)
                    )
            })
    }
}

/// A compile failure with the node it concerns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub message: String,
    pub node_id: Option<String>,
    pub node_type: Option<String>,
}

fn err(message: impl Into<String>) -> CompileError {
    CompileError {
        message: message.into(),
        node_id: None,
        node_type: None,
    }
}

const PURE_FALLBACK: [&str; 7] = [
    "get_var",
    "get_vars",
    "get_context",
    "bool_var",
    "var_decl",
    "break_object",
    "tool_parameters",
];

fn is_literal(ty: &str) -> bool {
    ty.starts_with("literal_") || ty == "json_schema"
}

/// §2.5: executable iff any pin is `execution`; pin-less nodes fall back by type.
fn is_exec_node(node: &Node) -> bool {
    if node.has_exec_pins() {
        return true;
    }
    if !node.has_no_pins() {
        return false;
    }
    let ty = node.ty.as_str();
    if is_literal(ty) || PURE_FALLBACK.contains(&ty) || crate::builtins::lookup(ty).is_some() {
        return false;
    }
    true
}

/// Compiles `raw` (an already namespaced VisualFlow) with the node types `registry` provides.
pub fn compile(raw: &Value, registry: &NodeRegistry) -> Result<CompiledFlow, CompileError> {
    let mut flow = VisualFlow::parse(raw).map_err(|e| err(e.to_string()))?;
    refuse_duplicate_ids(&flow)?;
    lower_reroutes(&mut flow)?;
    lower_loop_limits(&mut flow);
    // A flow that needs a component kept for first use (the Python one) loads it now.
    let loaded;
    let registry = if registry.needs_deferred(
        flow.nodes.iter().map(|n| n.ty.as_str()),
        flow.nodes
            .iter()
            .any(|n| !pinexpr::of_node(n, node_label(n)).is_empty()),
    ) {
        match registry.with_deferred_loaded() {
            Some(r) => {
                loaded = r;
                &loaded
            }
            None => registry,
        }
    } else {
        registry
    };

    let by_id: HashMap<&str, &Node> = flow.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    for e in &flow.edges {
        for end in [&e.source, &e.target] {
            if !by_id.contains_key(end.as_str()) {
                return Err(err(format!(
                    "Edge {:?} references unknown node {end:?}",
                    e.id
                )));
            }
        }
    }
    let exec: HashSet<&str> = flow
        .nodes
        .iter()
        .filter(|n| is_exec_node(n))
        .map(|n| n.id.as_str())
        .collect();

    // Entry (§3.1 step 4).
    let exec_in: HashSet<&str> = flow
        .edges
        .iter()
        .filter(|e| e.is_exec())
        .map(|e| e.target.as_str())
        .collect();
    let entry = flow
        .entry_node
        .as_deref()
        .filter(|id| exec.contains(id))
        .or_else(|| {
            flow.nodes
                .iter()
                .find(|n| exec.contains(n.id.as_str()) && !exec_in.contains(n.id.as_str()))
                .map(|n| n.id.as_str())
        })
        .or_else(|| {
            flow.nodes
                .iter()
                .find(|n| exec.contains(n.id.as_str()))
                .map(|n| n.id.as_str())
        })
        .ok_or_else(|| err("Flow has no executable node"))?
        .to_string();

    // Exec reachability from the entry and from every on_event listener.
    let mut exec_out: HashMap<&str, Vec<&Edge>> = HashMap::new();
    for e in flow.edges.iter().filter(|e| e.is_exec()) {
        exec_out.entry(e.source.as_str()).or_default().push(e);
    }
    let listeners: Vec<String> = flow
        .nodes
        .iter()
        .filter(|n| n.ty == "on_event")
        .map(|n| n.id.clone())
        .collect();
    let mut reachable: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<String> = VecDeque::from([entry.clone()]);
    queue.extend(listeners.iter().cloned());
    while let Some(id) = queue.pop_front() {
        if !reachable.insert(id.clone()) {
            continue;
        }
        for e in exec_out.get(id.as_str()).into_iter().flatten() {
            queue.push_back(e.target.clone());
        }
    }

    // Data edges (§3.3); a second wire into one pin is an error.
    let mut inputs: HashMap<&str, Vec<DataEdge>> = HashMap::new();
    let mut seen_pins: HashSet<(&str, &str)> = HashSet::new();
    for e in &flow.edges {
        if e.is_exec() || e.source_handle == "exec-out" {
            continue;
        }
        if !seen_pins.insert((e.target.as_str(), e.target_handle.as_str())) {
            return Err(CompileError {
                message: format!(
                    "Input pin {:?} of node {:?} has more than one incoming data edge",
                    e.target_handle, e.target
                ),
                node_id: Some(e.target.clone()),
                node_type: None,
            });
        }
        inputs.entry(e.target.as_str()).or_default().push(DataEdge {
            pin: e.target_handle.clone(),
            source: e.source.clone(),
            handle: e.source_handle.clone(),
        });
    }

    let connected: HashSet<&str> = flow
        .edges
        .iter()
        .flat_map(|e| [e.source.as_str(), e.target.as_str()])
        .collect();

    let mut nodes = foldhash::HashMap::default();
    let mut order = Vec::new();
    // Structural errors (loop-backs) take precedence over unsupported types, as in the seed.
    let mut unsupported: Option<CompileError> = None;
    for node in &flow.nodes {
        let is_exec = exec.contains(node.id.as_str());
        // Unreachable exec nodes are dropped silently, as the seed does (§3.1 step 5).
        if is_exec && !reachable.contains(&node.id) {
            continue;
        }
        if !is_exec && !connected.contains(node.id.as_str()) {
            continue;
        }
        let kind = match registry.lookup(&node.ty) {
            Some(k) => k,
            // A type of the seed's catalogue whose backend is missing here loads and fails when it runs.
            None if let Some(catalogue::Provider::Missing(m)) = catalogue::lookup(&node.ty) => {
                NodeKind::Missing(m)
            }
            None => {
                unsupported.get_or_insert_with(|| CompileError {
                    message: if node.ty == "code" {
                        // The one node type a plugin provides in every deployment: say how to get it.
                        format!(
                            "node type \"code\" (node {}) needs the Python component (python_code), which is not \
                             loaded on this gateway: this binary was built without it (AG_NO_PYTHON_COMPONENT) or \
                             it failed to load (see the log); build it with scripts/build-python-plugin.sh and put \
                             python_code.wasm with its grants in ABSTRACTGATEWAY_PLUGINS_DIR",
                            node.id
                        )
                    } else if let Some(catalogue::Provider::Component(component)) =
                        catalogue::lookup(&node.ty)
                    {
                        format!(
                            "node type {:?} (node {}) needs the component {component}, which is not loaded on \
                             this gateway (see the log, or put {component}.wasm with its grants in \
                             ABSTRACTGATEWAY_PLUGINS_DIR)",
                            node.ty, node.id
                        )
                    } else {
                        // Absent from the seed's catalogue: refused as the seed refuses it.
                        format!(
                            "unknown VisualFlow node type {:?} (node {}): this gateway has no handler for it \
                             (likely version skew: the flow was authored for a newer runtime; upgrade the \
                             gateway or remove the node)",
                            node.ty, node.id
                        )
                    },
                    node_id: Some(node.id.clone()),
                    node_type: Some(node.ty.clone()),
                });
                NodeKind::Start
            }
        };
        let pin_exprs = pinexpr::of_node(node, node_label(node));
        if !pin_exprs.is_empty() && registry.pin_evaluator().is_none() {
            return Err(CompileError {
                message: format!(
                    "pin expressions (Python) on node {} ({:?}) need the Python component (python_code), \
                     which is not loaded on this gateway: this binary was built without it \
                     (AG_NO_PYTHON_COMPONENT) or it failed to load (see the log); build it with \
                     scripts/build-python-plugin.sh and put python_code.wasm with its grants in \
                     ABSTRACTGATEWAY_PLUGINS_DIR",
                    node.id, node.ty
                ),
                node_id: Some(node.id.clone()),
                node_type: Some(node.ty.clone()),
            });
        }
        if node
            .data
            .get("inputRouteOverrides")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            return Err(CompileError {
                message: format!(
                    "inputRouteOverrides on node {} are not supported yet",
                    node.id
                ),
                node_id: Some(node.id.clone()),
                node_type: Some(node.ty.clone()),
            });
        }
        let outs: Vec<&Edge> = exec_out.get(node.id.as_str()).cloned().unwrap_or_default();
        let (next, then_handles) = if is_exec {
            classify_next(node, &kind, &outs)?
        } else {
            (Next::End, vec![])
        };
        order.push(node.id.clone());
        nodes.insert(
            node.id.clone(),
            CompiledNode {
                data_inputs: node.data_inputs(),
                data_outputs: node.data_outputs(),
                inputs: inputs.remove(node.id.as_str()).unwrap_or_default(),
                node: node.clone(),
                kind,
                exec: is_exec,
                next,
                then_handles,
                pin_exprs,
            },
        );
    }
    // A wire from a dropped (unreachable) node reads nothing; drop it so pulls stay simple.
    for n in nodes.values_mut() {
        n.inputs.retain(|d| by_id.contains_key(d.source.as_str()));
    }
    let compiled = CompiledFlow {
        workflow_id: flow.id.clone(),
        name: flow.name.clone(),
        entry,
        nodes,
        listeners,
        order,
        pin_exprs: None,
        self_contained: false,
    };
    let mut compiled = with_pin_exprs(compiled, raw.get("functions"), registry)?;
    compiled.self_contained = compiled.touches_only_its_run();
    refuse_loop_backs(&compiled)?;
    match unsupported {
        Some(e) => Err(e),
        None => Ok(compiled),
    }
}

/// The label error messages name a node by (`data.label`, else its id), as [`CompiledNode::label`].
fn node_label(node: &Node) -> &str {
    node.data
        .get("label")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(&node.id)
}

/// §3.1 step 2: compiles the flow `functions` and every pin expression once, so a syntax error is a load
/// error, and attaches the evaluator to a flow that has expressions.
fn with_pin_exprs(
    mut flow: CompiledFlow,
    functions: Option<&Value>,
    registry: &NodeRegistry,
) -> Result<CompiledFlow, CompileError> {
    let declares_functions = functions
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty());
    let mut owners: Vec<(&str, &PinExpr)> = Vec::new();
    for id in &flow.order {
        if let Some(n) = flow.nodes.get(id) {
            owners.extend(n.pin_exprs.iter().map(|e| (id.as_str(), e)));
        }
    }
    // Without the sandbox, unused functions are inert (nodes with expressions were refused already).
    let Some(evaluator) = registry.pin_evaluator() else {
        return Ok(flow);
    };
    if owners.is_empty() && !declares_functions {
        return Ok(flow);
    }
    let functions = functions.cloned().unwrap_or(Value::Null);
    let exprs: Vec<(&str, &str)> = owners
        .iter()
        .map(|(_, e)| (e.site.as_str(), e.source.as_str()))
        .collect();
    if let Err(crate::engine::PinExprError { index, message }) = evaluator.check(&functions, &exprs)
    {
        let node = index
            .and_then(|i| owners.get(i))
            .and_then(|(id, _)| flow.nodes.get(*id));
        return Err(CompileError {
            message,
            node_id: node.map(|n| n.node.id.clone()),
            node_type: node.map(|n| n.node.ty.clone()),
        });
    }
    if !owners.is_empty() {
        flow.pin_exprs = Some(PinExprs {
            evaluator: evaluator.clone(),
            functions: std::sync::Arc::new(functions),
        });
    }
    Ok(flow)
}

fn node_err(node: &Node, message: String) -> CompileError {
    CompileError {
        message,
        node_id: Some(node.id.clone()),
        node_type: Some(node.ty.clone()),
    }
}

/// §3.1 step 7: classify the outgoing exec edges of one node.
fn classify_next(
    node: &Node,
    kind: &NodeKind,
    outs: &[&Edge],
) -> Result<(Next, Vec<String>), CompileError> {
    let handles: BTreeMap<String, String> = outs
        .iter()
        .map(|e| (e.source_handle.clone(), e.target.clone()))
        .collect();
    if outs.is_empty() {
        return Ok((Next::End, vec![]));
    }
    let check = |allowed: &dyn Fn(&str) -> bool| -> Result<(), CompileError> {
        let unknown: Vec<&str> = outs
            .iter()
            .map(|e| e.source_handle.as_str())
            .filter(|h| !allowed(h))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(node_err(
                node,
                format!(
                    "Control node '{}' has unsupported execution outputs: {unknown:?}",
                    node.id
                ),
            ))
        }
    };
    match kind {
        NodeKind::Control(Control::Sequence | Control::Parallel) => {
            let parallel = matches!(kind, NodeKind::Control(Control::Parallel));
            check(&|h: &str| h.starts_with("then:") || (parallel && h == "completed"))?;
            let mut then: Vec<String> = handles
                .keys()
                .filter(|h| h.starts_with("then:"))
                .cloned()
                .collect();
            then.sort_by_key(|h| h[5..].parse::<u64>().unwrap_or(u64::MAX));
            return Ok((Next::Handles(handles), then));
        }
        NodeKind::Control(Control::Loop | Control::For | Control::While) => {
            check(&|h: &str| h == "loop" || h == "done")?;
            return Ok((Next::Handles(handles), vec![]));
        }
        _ => {}
    }
    let branchy = |h: &str| {
        matches!(h, "true" | "false" | "default" | "again" | "limit_reached")
            || h.starts_with("case:")
    };
    if outs.len() == 1 {
        let h = outs[0].source_handle.as_str();
        if h == "exec-out" {
            return Ok((Next::Linear(outs[0].target.clone()), vec![]));
        }
        if !branchy(h) {
            return Err(node_err(
                node,
                format!(
                    "Node '{}' has unsupported branching output '{h}'. Branching is not yet supported.",
                    node.id
                ),
            ));
        }
        return Ok((Next::Handles(handles), vec![]));
    }
    let multi = || {
        node_err(
            node,
            format!(
                "Node '{}' has multiple outgoing edges. Branching is not yet supported.",
                node.id
            ),
        )
    };
    if handles.len() != outs.len() {
        return Err(multi());
    }
    let hs: Vec<&str> = handles.keys().map(String::as_str).collect();
    let ok = hs.iter().all(|h| matches!(*h, "true" | "false"))
        || hs.iter().all(|h| matches!(*h, "again" | "limit_reached"))
        || hs.iter().all(|h| *h == "default" || h.starts_with("case:"));
    if !ok {
        return Err(multi());
    }
    Ok((Next::Handles(handles), vec![]))
}

/// Removes `reroute` relay nodes; a data wire through one is re-joined, an exec wire is refused.
fn lower_reroutes(flow: &mut VisualFlow) -> Result<(), CompileError> {
    let reroutes: HashSet<String> = flow
        .nodes
        .iter()
        .filter(|n| n.ty == "reroute")
        .map(|n| n.id.clone())
        .collect();
    if reroutes.is_empty() {
        return Ok(());
    }
    for e in &flow.edges {
        if e.is_exec() && (reroutes.contains(&e.source) || reroutes.contains(&e.target)) {
            return Err(err(format!(
                "Execution wire {:?} passes through a reroute node; only data wires may",
                e.id
            )));
        }
    }
    // Resolve each reroute's upstream source, following chains.
    let upstream: HashMap<String, (String, String)> = flow
        .edges
        .iter()
        .filter(|e| reroutes.contains(&e.target))
        .map(|e| {
            (
                e.target.clone(),
                (e.source.clone(), e.source_handle.clone()),
            )
        })
        .collect();
    let resolve = |mut id: String| -> Option<(String, String)> {
        for _ in 0..=reroutes.len() {
            let (s, h) = upstream.get(&id)?.clone();
            if !reroutes.contains(&s) {
                return Some((s, h));
            }
            id = s;
        }
        None
    };
    let mut edges = Vec::new();
    for e in flow.edges.drain(..) {
        if reroutes.contains(&e.target) {
            continue;
        }
        if reroutes.contains(&e.source) {
            if let Some((s, h)) = resolve(e.source.clone()) {
                edges.push(Edge {
                    source: s,
                    source_handle: h,
                    ..e
                });
            }
            continue;
        }
        edges.push(e);
    }
    flow.edges = edges;
    flow.nodes.retain(|n| n.ty != "reroute");
    Ok(())
}

/// Edges name nodes by id, so two nodes with one id make every wire to it ambiguous (and the compiled
/// node would mix the two); the editor never writes such a flow.
fn refuse_duplicate_ids(flow: &VisualFlow) -> Result<(), CompileError> {
    let mut seen = HashSet::new();
    for n in &flow.nodes {
        if !seen.insert(n.id.as_str()) {
            return Err(node_err(
                n,
                format!(
                    "Node id {:?} is used by more than one node; node ids must be unique",
                    n.id
                ),
            ));
        }
    }
    Ok(())
}

/// §3.7: `edge.data.loopLimit{max}` on `S.h → T` becomes `S.h → L; L.again → T; L.limit_reached → X`.
fn lower_loop_limits(flow: &mut VisualFlow) {
    // A generated id never takes one a node or an earlier loop limit has (edge ids need not be unique).
    let mut taken: HashSet<String> = flow.nodes.iter().map(|n| n.id.clone()).collect();
    let mut added_nodes = Vec::new();
    let mut extra = Vec::new();
    let snapshot = flow.edges.clone();
    for (i, e) in snapshot.iter().enumerate() {
        let Some(max) = e
            .data
            .get("loopLimit")
            .and_then(|l| l.get("max"))
            .filter(|m| !m.is_null())
        else {
            continue;
        };
        if !e.is_exec() {
            continue;
        }
        let base = format!(
            "__loop_limit__{}",
            if e.id.is_empty() {
                i.to_string()
            } else {
                e.id.clone()
            }
        );
        let mut lid = base.clone();
        let mut n = 1;
        while taken.contains(&lid) {
            n += 1;
            lid = format!("{base}_{n}");
        }
        taken.insert(lid.clone());
        let other = match e.source_handle.as_str() {
            "true" => Some("false"),
            "false" => Some("true"),
            _ => None,
        };
        let other_target = other.and_then(|o| {
            snapshot
                .iter()
                .find(|x| x.is_exec() && x.source == e.source && x.source_handle == o)
                .map(|x| x.target.clone())
        });
        let exec_pin = |id: &str| Pin {
            id: id.into(),
            label: String::new(),
            ty: "execution".into(),
        };
        added_nodes.push(Node {
            id: lid.clone(),
            ty: "loop_limit".into(),
            data: json!({"label": "Loop limit", "pinDefaults": {"max": max}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            inputs: vec![
                exec_pin("exec-in"),
                Pin {
                    id: "max".into(),
                    label: "max".into(),
                    ty: "number".into(),
                },
            ],
            outputs: vec![exec_pin("again"), exec_pin("limit_reached")],
        });
        flow.edges[i].target = lid.clone();
        extra.push(Edge {
            id: format!("{lid}:again"),
            source: lid.clone(),
            source_handle: "again".into(),
            target: e.target.clone(),
            target_handle: "exec-in".into(),
            data: Value::Null,
        });
        if let Some(x) = other_target {
            extra.push(Edge {
                id: format!("{lid}:limit"),
                source: lid,
                source_handle: "limit_reached".into(),
                target: x,
                target_handle: "exec-in".into(),
                data: Value::Null,
            });
        }
    }
    flow.nodes.extend(added_nodes);
    flow.edges.extend(extra);
}

/// §3.1: an exec wire from inside a loop body back to the loop (or anything before it) never ends.
fn refuse_loop_backs(flow: &CompiledFlow) -> Result<(), CompileError> {
    let succ = |id: &str| -> Vec<String> {
        match flow.nodes.get(id).map(|n| &n.next) {
            Some(Next::Linear(t)) => vec![t.clone()],
            Some(Next::Handles(m)) => m.values().cloned().collect(),
            _ => vec![],
        }
    };
    let reach = |from: &str, stop: &str| -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut q = VecDeque::from([from.to_string()]);
        while let Some(id) = q.pop_front() {
            if id == stop || !seen.insert(id.clone()) {
                continue;
            }
            q.extend(succ(&id));
        }
        seen
    };
    for lid in &flow.order {
        let Some(l) = flow.nodes.get(lid) else {
            continue;
        };
        if !matches!(
            l.kind,
            NodeKind::Control(Control::Loop | Control::For | Control::While)
        ) {
            continue;
        }
        let Some(body_start) = l.handle_target("loop") else {
            continue;
        };
        let body = reach(body_start, lid);
        for s in &body {
            let Some(sn) = flow.nodes.get(s) else {
                continue;
            };
            let targets: Vec<(String, String)> = match &sn.next {
                Next::Linear(t) => vec![("exec-out".into(), t.clone())],
                Next::Handles(m) => m.iter().map(|(h, t)| (h.clone(), t.clone())).collect(),
                Next::End => vec![],
            };
            for (h, t) in targets {
                if body.contains(&t) {
                    continue;
                }
                let goes_back = t == *lid || reach(&t, "").contains(lid);
                if goes_back {
                    let tl = flow
                        .nodes
                        .get(&t)
                        .map(|n| n.label().to_string())
                        .unwrap_or(t.clone());
                    return Err(CompileError {
                        message: format!(
                            "Wire {}.{h} -> {tl} goes back out of {}'s loop body: the run would never end. \
                             A path inside a loop body can only repeat within the body; to repeat the whole loop, \
                             wire the loop-back after the loop's done.",
                            sn.label(),
                            l.label()
                        ),
                        node_id: Some(s.clone()),
                        node_type: Some(sn.node.ty.clone()),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::compile;
    use crate::engine::nodes::{Control, NodeKind, NodeRegistry};

    fn exec_node(id: &str, ty: &str, ins: &[&str], outs: &[&str]) -> Value {
        let pins = |ids: &[&str]| -> Vec<Value> {
            ids.iter()
                .map(|p| json!({"id": p, "type": "execution"}))
                .collect()
        };
        json!({"id": id, "type": ty, "data": {"inputs": pins(ins), "outputs": pins(outs)}})
    }

    fn edge(id: &str, from: &str, handle: &str, to: &str, data: Value) -> Value {
        json!({"id": id, "source": from, "sourceHandle": handle, "target": to, "targetHandle": "exec-in", "data": data})
    }

    /// Deferred components that count their loads and provide `code`.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl crate::engine::DeferredPlugins for Counting {
        fn provides(&self, node_type: &str) -> bool {
            node_type == "code"
        }
        fn evaluates_pin_expressions(&self) -> bool {
            false
        }
        fn load(&self) -> Option<crate::engine::DeferredLoaded> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Some(crate::engine::DeferredLoaded {
                nodes: vec![std::sync::Arc::new(crate::engine::PluginNode::new(
                    "code", "python", "d1", None,
                ))],
                pin_evaluator: None,
            })
        }
    }

    #[test]
    fn deferred_components_load_only_for_a_flow_that_needs_them() {
        let counting = std::sync::Arc::new(Counting(Default::default()));
        let mut reg = NodeRegistry::new();
        reg.set_deferred(counting.clone());
        let flow = |ty: &str| {
            json!({"id": "f", "nodes": [
                exec_node("s", "on_flow_start", &[], &["exec-out"]),
                exec_node("x", ty, &["exec-in"], &["exec-out"]),
            ], "edges": [edge("e", "s", "exec-out", "x", Value::Null)]})
        };
        let loads = || counting.0.load(std::sync::atomic::Ordering::SeqCst);
        compile(&flow("ask_user"), &reg).expect("a native type compiles");
        // A type nobody provides does not load them either: it is refused as unknown, as on the seed.
        let e = compile(&flow("teleport"), &reg).expect_err("unknown type");
        assert!(
            e.message
                .contains("unknown VisualFlow node type \"teleport\""),
            "{e}"
        );
        assert_eq!(e.node_id.as_deref(), Some("x"));
        // A catalogued type whose component is not loaded names the component.
        let e = compile(&flow("generate_image"), &reg).expect_err("no image component");
        assert!(e.message.contains("needs the component node_image"), "{e}");
        // A catalogued type whose backend is missing loads, to fail when it runs.
        let c = compile(&flow("memory_recall"), &reg).expect("loads");
        assert!(matches!(
            c.node("x").map(|n| &n.kind),
            Some(NodeKind::Missing(_))
        ));
        assert_eq!(loads(), 0);
        let c = compile(&flow("code"), &reg).expect("loaded on first need");
        assert!(matches!(
            c.node("x").map(|n| &n.kind),
            Some(NodeKind::Plugin(p)) if p.plugin == "python"
        ));
        assert_eq!(loads(), 1);
    }

    #[test]
    fn two_nodes_with_one_id_are_refused() {
        let flow = json!({"id": "f", "nodes": [
            exec_node("s", "on_flow_start", &[], &["exec-out"]),
            exec_node("x", "on_flow_end", &["exec-in"], &[]),
            exec_node("x", "ask_user", &["exec-in"], &["exec-out"]),
        ], "edges": [edge("e", "s", "exec-out", "x", Value::Null)]});
        let e = compile(&flow, &NodeRegistry::new()).expect_err("ambiguous ids compile");
        assert!(
            e.message.contains("\"x\" is used by more than one node"),
            "{e}"
        );
        assert_eq!(e.node_id.as_deref(), Some("x"));
    }

    #[test]
    fn generated_loop_limit_ids_never_collide() {
        // Two limited wires share an edge id, and a node already has the id the first would get.
        let limit = json!({"loopLimit": {"max": 2}});
        let flow = json!({"id": "f", "nodes": [
            exec_node("s", "on_flow_start", &[], &["exec-out"]),
            exec_node("c", "if", &["exec-in"], &["true", "false"]),
            exec_node("a", "on_flow_end", &["exec-in"], &[]),
            exec_node("b", "on_flow_end", &["exec-in"], &[]),
            exec_node("__loop_limit__e", "on_flow_end", &["exec-in"], &[]),
        ], "edges": [
            edge("s1", "s", "exec-out", "c", Value::Null),
            edge("e", "c", "true", "a", limit.clone()),
            edge("e", "c", "false", "b", limit),
        ]});
        let f = compile(&flow, &NodeRegistry::new()).expect("compiles");
        let mut limits: Vec<&str> = f
            .nodes
            .values()
            .filter(|n| matches!(n.kind, NodeKind::Control(Control::LoopLimit)))
            .map(|n| n.node.id.as_str())
            .collect();
        limits.sort();
        assert_eq!(limits, ["__loop_limit__e_2", "__loop_limit__e_3"]);
        assert_eq!(f.order.len(), f.nodes.len());
    }

    #[test]
    fn unreadable_flows_are_refused_with_the_parse_message() {
        let reg = NodeRegistry::new();
        let message = |v: Value| compile(&v, &reg).expect_err("refused").message;
        assert_eq!(message(json!([])), "flow JSON must be an object");
        assert_eq!(message(json!({"nodes": []})), "flow has no \"id\"");
        assert_eq!(
            message(json!({"id": "f", "nodes": [{"id": "n1"}]})),
            "node \"n1\" has no type"
        );
    }
}
