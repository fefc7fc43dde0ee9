//! `memact_compose`: composes Active Memory from a knowledge-graph query result (flow-format §4 C).
//!
//! The seed's adapter reads `kg_result` (or a `raw` / `result` pin), `stimulus` (or `query_text`), `marker`
//! and `max_items`. Without a dict result it completes with `ok: false` and its error, which is what a flow on
//! a gateway without a knowledge-graph store always gets (its `memory_kg_query` fails before). Composing a real
//! result needs the seed's Active Memory model, which this gateway does not have: that case fails the node
//! with a message that says so instead of inventing a composition.

use serde_json::{Map, Value, json};

use super::{BuiltinCtx, PyResult};
use pycompat::PyException;

/// `memact_compose(kg_result, stimulus, marker, max_items)`.
pub fn memact_compose(inputs: &Map<String, Value>, _ctx: &BuiltinCtx) -> PyResult {
    let kg_result = ["kg_result", "raw", "result"]
        .iter()
        .find_map(|k| inputs.get(*k).filter(|v| !v.is_null()));
    match kg_result {
        Some(Value::Object(_)) => Err(PyException::value_error(
            "memact_compose needs the knowledge-graph memory (Active Memory), which this gateway does not have",
        )),
        _ => Ok(json!({
            "ok": false,
            "error": "memact_compose requires a dict kg_result (connect memory_kg_query.raw or output)",
            "delta": {},
            "trace": {},
            "active_memory": {},
            "memact_system_prompt": "",
            "memact_blocks": [],
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(inputs: Value) -> PyResult {
        let data = json!({});
        let vars = Map::new();
        let ctx = BuiltinCtx {
            node_type: "memact_compose",
            node_id: "m",
            data: &data,
            pin_order: &[],
            output_pins: &[],
            vars: &vars,
        };
        memact_compose(inputs.as_object().expect("object"), &ctx)
    }

    #[test]
    fn without_a_dict_result_it_reports_the_seeds_error() {
        for inputs in [
            json!({}),
            json!({"kg_result": "text"}),
            json!({"kg_result": [1], "stimulus": "hi"}),
        ] {
            let out = call(inputs).expect("completes");
            assert_eq!(out["ok"], false);
            assert_eq!(
                out["error"],
                "memact_compose requires a dict kg_result (connect memory_kg_query.raw or output)"
            );
            assert_eq!(out["memact_blocks"], json!([]));
        }
    }

    #[test]
    fn a_real_result_is_not_composed_by_guesswork() {
        let err = call(json!({"raw": {"items": []}})).expect_err("no Active Memory here");
        assert!(err.message.contains("Active Memory"), "{}", err.message);
    }
}
