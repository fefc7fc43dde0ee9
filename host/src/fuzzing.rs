//! The bodies of the fuzz targets in `fuzz/`, one function per target, each taking the fuzzer's bytes.
//!
//! They live in the crate, compiled for its tests and with feature `fuzzing`, so the fuzzers and the
//! stable test that replays every checked-in input (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`)
//! run the same code, and so they reach crate-private parsers without widening the public API. Each
//! body feeds the bytes to the entry point production uses and checks properties that must hold for
//! every input, beyond "does not panic": round trips, ranges, and "what is written reads back".

use std::sync::{Arc, OnceLock};

use axum::http::HeaderValue;
use serde_json::{Map, Value, json};

use crate::bundle::{self, Limits, Manifest};
use crate::engine::{NodeRegistry, PinExprError, PinExprEvaluator, PluginNode, budget};
use crate::flow::{CompiledFlow, Next, compile};
use crate::run::{Obj, RunState};
use crate::store::codec;
use pycompat::literal_eval::{self as pylit, PyVal};
use pycompat::repr::{DumpOptions, py_json_dumps};
use pycompat::{MAX_BUILT_TEXT_BYTES, PyException, format as pyformat, json as pyjson};

/// A target's body: the fuzzer's bytes in, a panic when a property does not hold.
pub type Body = fn(&[u8]);

/// Every target: its name (the fuzz binary and the corpus directory) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("bundle", bundle),
    ("flow", flow),
    ("pylit", pylit),
    ("pyformat", pyformat),
    ("pyjson", pyjson),
    ("run_state", run_state),
    ("sse_cursor", sse_cursor),
];

/// A `.flow` upload as the gateway reads it (zip checks, manifest, flows, namespacing), then compiled as
/// an upload is; and the bytes as a `manifest.json` alone.
pub fn bundle(data: &[u8]) {
    if let Ok(b) = bundle::read_bundle_bytes(data, &Limits::default()) {
        assert_eq!(b.sha256, bundle::sha256_hex(data));
        assert_manifest_round_trips(&b.manifest);
        for id in b.sorted_flow_ids() {
            assert!(
                b.manifest.flows.contains_key(&id),
                "flow {id} not in the manifest"
            );
            assert!(
                b.flow(&id).is_some(),
                "flow {id} of the manifest was not read"
            );
            assert!(b.raw_flow(&id).is_some(), "flow {id} has no stored bytes");
        }
        let _ = bundle::inspect_bundle(&b);
        let _ = bundle::verify_bundle(&b);
        if let Ok(flows) = crate::runner::catalog::compile_bundle(&b, registry()) {
            flows.iter().for_each(check_compiled);
        }
    }
    if let Ok(m) = Manifest::from_json_bytes(data) {
        assert_manifest_round_trips(&m);
    }
}

/// A manifest the gateway accepted is accepted again, unchanged, from the JSON it writes for it (`pack`
/// and `bundle inspect` write that JSON).
fn assert_manifest_round_trips(m: &Manifest) {
    let text = m.to_pretty_json();
    match Manifest::from_json_bytes(text.as_bytes()) {
        Ok(again) => assert_eq!(&again, m, "manifest changed through its JSON: {text}"),
        Err(e) => panic!("a valid manifest's own JSON is refused: {e}\n{text}"),
    }
}

/// A VisualFlow document, namespaced and compiled as a bundle's flow is at load.
pub fn flow(data: &[u8]) {
    let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // What the HTTP API shows of a flow, read before it is compiled.
    let raw_value = Value::Object(raw.clone());
    let _ = bundle::entry_inputs_of(&raw_value);
    let _ = bundle::node_index_of(&raw_value);
    let own_id = ["id", "flow_id", "workflow_id"]
        .iter()
        .find_map(|k| raw.get(*k).and_then(Value::as_str))
        .unwrap_or("flow")
        .to_string();
    let bundle_ref = "fuzz@0.0.0";
    let ids = bundle::namespace::id_map(bundle_ref, std::iter::once(own_id.as_str()));
    let namespaced =
        bundle::namespace_flow(&raw, &bundle::namespaced_id(bundle_ref, &own_id), &ids);
    if let Ok(compiled) = compile(&namespaced, registry()) {
        check_compiled(&compiled);
    }
}

/// What the engine relies on in a compiled flow: it starts at an executable node that exists, and every
/// exec edge it follows lands on a node that exists.
fn check_compiled(f: &CompiledFlow) {
    let entry = f
        .node(&f.entry)
        .unwrap_or_else(|| panic!("entry {:?} is not a compiled node", f.entry));
    assert!(entry.exec, "entry {:?} is not executable", f.entry);
    for id in &f.order {
        assert!(f.nodes.contains_key(id), "ordered node {id:?} is missing");
    }
    assert_eq!(f.order.len(), f.nodes.len(), "order and nodes disagree");
    for (id, n) in &f.nodes {
        let targets: Vec<&String> = match &n.next {
            Next::End => Vec::new(),
            Next::Linear(t) => vec![t],
            Next::Handles(m) => m.values().collect(),
        };
        for t in targets {
            assert!(
                f.nodes.contains_key(t),
                "node {id:?} continues at {t:?}, which is not compiled"
            );
        }
    }
}

/// Plugin node types the stock gateway registers; with them the fixtures' flows compile as they do on a
/// gateway with its built-in components, so the fuzzer gets past the node-type check.
const PLUGIN_TYPES: &[&str] = &[
    "agent",
    "answer_user",
    "call_tool",
    "code",
    "generate_voice",
    "listen_voice",
    "llm_call",
    "memory_compact",
    "memory_kg_assert",
    "memory_kg_query",
    "memory_kg_resolve",
    "memory_note",
    "memory_query",
    "memory_rehydrate",
    "memory_tag",
    "provider_models",
    "tool_calls",
    "transcribe_audio",
    "write_file",
];

/// Accepts every pin expression and flow function: the Python sandbox is not what these targets test,
/// and accepting lets the compiler's later checks run.
struct AcceptAllExprs;

impl PinExprEvaluator for AcceptAllExprs {
    fn check(&self, _: &Value, _: &[(&str, &str)]) -> Result<(), PinExprError> {
        Ok(())
    }
    fn eval(
        &self,
        _: &Value,
        _: &[(&str, &str, &Value)],
        _: &Obj,
    ) -> Result<Vec<Value>, PinExprError> {
        Err(PinExprError::new("pin expressions are not evaluated here"))
    }
}

fn registry() -> &'static NodeRegistry {
    static REGISTRY: OnceLock<NodeRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut reg = NodeRegistry::new();
        for ty in PLUGIN_TYPES {
            reg.register_plugin(Arc::new(PluginNode::new(
                *ty,
                "fuzz",
                "0".repeat(64),
                Some((*ty).to_string()),
            )));
        }
        reg.set_pin_evaluator(Arc::new(AcceptAllExprs));
        reg
    })
}

/// `ast.literal_eval` on the text, as `parse_json` falls back to it. Its JSON form must survive Python's
/// `json.dumps` → `json.loads`.
pub fn pylit(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `literal_eval` turns a panic of its parser thread into a `MemoryError`, which would hide it from
    // the replay test; this runs the same parser on the same stack size but lets a panic through.
    let result = std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .stack_size(pylit::PARSER_STACK_BYTES)
            .spawn_scoped(scope, || pylit::literal_eval_here(text))
            .expect("cannot spawn the parser thread");
        parser
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    match result {
        Ok(v) => {
            check_literal(&v);
            let j = pylit::to_json(&v);
            let dumped = py_json_dumps(&j, DumpOptions::default());
            assert_eq!(
                pyjson::loads(&dumped).as_ref(),
                Some(&j),
                "json.loads does not read back {dumped}"
            );
        }
        Err(PyException { kind, .. }) => assert!(
            matches!(
                kind,
                "SyntaxError"
                    | "IndentationError"
                    | "TabError"
                    | "ValueError"
                    | "MemoryError"
                    | "TypeError"
            ),
            "literal_eval raised {kind}"
        ),
    }
}

/// Only what `literal_eval` can produce: a dict's keys are unique.
fn check_literal(v: &PyVal) {
    match v {
        PyVal::Tuple(items) | PyVal::List(items) | PyVal::Set(items) => {
            items.iter().for_each(check_literal)
        }
        PyVal::Dict(pairs) => {
            for (i, (k, val)) in pairs.iter().enumerate() {
                assert!(
                    !pairs[..i].iter().any(|(other, _)| other == k),
                    "duplicate dict key {k:?}"
                );
                check_literal(k);
                check_literal(val);
            }
        }
        _ => {}
    }
}

/// `template.format(**values)` as the `format` node runs it. The input is the template, or the template,
/// a NUL byte and the values as a JSON object. The result never grows past the gateway's limit.
pub fn pyformat(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, kwargs) = match text.split_once('\0') {
        Some((t, json)) => match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(m)) => (t, m),
            _ => (t, default_kwargs()),
        },
        None => (text, default_kwargs()),
    };
    if let Ok(s) = pyformat::str_format(template, &kwargs) {
        assert!(
            s.len() <= MAX_BUILT_TEXT_BYTES,
            "formatted string of {} bytes",
            s.len()
        );
    }
}

/// One value of every JSON type a template can name, under short names a fuzzer finds.
fn default_kwargs() -> Map<String, Value> {
    match json!({
        "a": 1, "b": -2.5, "c": "text", "d": true, "e": null, "f": [1, "x", [2]],
        "g": {"k": "v", "n": 3}, "h": 18446744073709551615u64, "i": -9223372036854775808i64,
        "j": 1e300, "k": "", "l": 0, "m": 0.1, "n": "\u{e9}\u{1f600}",
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Python's `json.loads` and `raw_decode` (the `parse_json` node). What they accept survives
/// `json.dumps` with every option combination and the SSE encoder, and `raw_decode` agrees with `loads`.
pub fn pyjson(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = pyjson::loads(text);
    let raw = pyjson::raw_decode(text.trim_start_matches([' ', '\t', '\n', '\r']));
    let Some(v) = loaded else {
        return;
    };
    assert_eq!(raw.as_ref(), Some(&v), "raw_decode disagrees with loads");
    for opts in [
        DumpOptions::default(),
        DumpOptions {
            sort_keys: true,
            ensure_ascii: true,
            ..Default::default()
        },
        DumpOptions {
            compact: true,
            ..Default::default()
        },
        DumpOptions {
            indent: Some(2),
            ..Default::default()
        },
    ] {
        let dumped = py_json_dumps(&v, opts);
        assert_eq!(
            pyjson::loads(&dumped).as_ref(),
            Some(&v),
            "json.loads does not read back {dumped} ({opts:?})"
        );
    }
    for ascii in [false, true] {
        let sse = pycompat::json::dumps(&v, ascii);
        assert_eq!(
            pyjson::loads(&sse).as_ref(),
            Some(&v),
            "SSE data {sse} does not read back"
        );
    }
}

/// A stored run state, decoded as the store reads it; and the bytes as a value a run holds.
pub fn run_state(data: &[u8]) {
    // Whatever decodes is stored again unchanged.
    if let Ok(run) = codec::decode_run("fuzz", data) {
        let bytes = codec::encode_run(&run).expect("a decoded run cannot be encoded");
        match codec::decode_run("fuzz", &bytes) {
            Ok(again) => assert_eq!(again, run, "run changed through the store"),
            Err(e) => panic!("a decoded run does not read back once stored: {e}"),
        }
        assert_eq!(codec::decode_status("fuzz", &bytes).ok(), Some(run.status));
    }
    // Every write the budgets let through reads back: Python's `json.loads` (the `parse_json` node)
    // accepts far deeper documents than the store's decoder, and such a value may land in a variable.
    let Some(value) = std::str::from_utf8(data).ok().and_then(pyjson::loads) else {
        return;
    };
    let mut run: RunState =
        crate::run::new_run_state("fuzz@0.0.0:flow", "node", Obj::new(), None, None, None);
    run.vars.insert("x".into(), value.clone());
    run.output = Some(value);
    if budget::check_run(&run, &[]).is_ok() {
        let bytes = codec::encode_run(&run).expect("a run within its budgets cannot be encoded");
        match codec::decode_run("fuzz", &bytes) {
            Ok(again) => assert_eq!(again, run, "run changed through the store"),
            Err(e) => panic!("a run within its budgets does not read back once stored: {e}"),
        }
    }
}

/// The ledger stream's `Last-Event-ID` header and `?after=&heartbeat_s=` query. The input is the header
/// value, a newline, and the raw query.
pub fn sse_cursor(data: &[u8]) {
    let (header, query) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let header = header.and_then(|h| HeaderValue::from_bytes(h).ok());
    // The server hands the handler the query as text: axum reads it from a valid URI.
    let query = String::from_utf8_lossy(query);
    let from_header = header
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match crate::server::routes::ledger::stream_params(Some(&query), header.as_ref()) {
        Ok(p) => {
            if let Some(seq) = from_header {
                assert_eq!(p.after, seq, "Last-Event-ID {seq} not honoured");
            } else {
                assert!(p.after <= i64::MAX as u64, "after {} out of range", p.after);
            }
            let hb = p.heartbeat.as_secs_f64();
            assert!((0.1..=60.0).contains(&hb), "heartbeat {hb} s out of range");
        }
        Err(e) => {
            // Only an invalid `after` or `heartbeat_s` is refused; any other query is fine.
            let named = |name: &str| query.contains(name) || query.contains('%');
            assert!(
                named("after") || named("heartbeat_s"),
                "query {query:?} refused: {e:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {

    /// Every checked-in input of every target (the seed corpora grown by the fuzzers, and each crash
    /// they found once) still passes, without a nightly toolchain.
    #[test]
    fn checked_in_fuzz_inputs_replay() {
        let root = abstractgateway_testkit::repo_root().join("fuzz");
        let mut failures = Vec::new();
        for (name, body) in super::TARGETS {
            let mut count = 0;
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort();
                for path in paths.iter().filter(|p| p.is_file()) {
                    let bytes = std::fs::read(path).expect("cannot read a fuzz input");
                    count += 1;
                    if std::panic::catch_unwind(|| body(&bytes)).is_err() {
                        failures.push(format!("{name}: {}", path.display()));
                    }
                }
            }
            assert!(count > 0, "target {name} has no checked-in inputs");
        }
        assert!(failures.is_empty(), "fuzz inputs failing: {failures:#?}");
    }
}
