//! `http_steps`: N sequential host HTTP GETs with optional deterministic CPU work between them.
//!
//! Used by kill -9 replay tests: every GET is a recorded host call, so a run killed between two
//! steps must resume without repeating the steps already recorded. With `journal` (a kv bucket) each
//! step also writes its body to kv and the log, and the node ends by storing all bodies as an artifact:
//! every kind of host call in one node.

use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeResult, NodeType, Value, artifacts, export_node, http, kv, log,
    outputs,
};

/// The plugin.
pub struct HttpSteps;

/// Steps when `inputs.count` is absent.
pub const DEFAULT_COUNT: i64 = 3;

impl Node for HttpSteps {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("http_steps")
                .label("HTTP steps")
                .description("GETs {base_url}/step/0 .. /step/{count-1} in order, optionally burning CPU between calls.")
                .input("base_url", "string")
                .input_labeled("count", "Steps (default 3)", "number")
                .input_labeled("spin", "Hash iterations between calls", "number")
                .input_labeled("journal", "kv bucket to journal steps into (optional)", "string")
                .output("bodies", "array")
                .output("count", "number")
                .output("artifact_id", "string"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        let base = inv.input_str("base_url")?.trim_end_matches('/').to_string();
        let count = inv.input_i64_opt("count")?.unwrap_or(DEFAULT_COUNT);
        let count = u32::try_from(count)
            .map_err(|_| Error::invalid_input("count must be between 0 and 2^32-1"))?;
        let spin = inv.input_i64_opt("spin")?.unwrap_or(0);
        let spin = u64::try_from(spin).map_err(|_| Error::invalid_input("spin must be >= 0"))?;
        let journal = inv.input_str_opt("journal")?.filter(|j| !j.is_empty());
        let mut bodies = Vec::with_capacity(count as usize);
        let mut digest = 0u64;
        for i in 0..count {
            if i > 0 && spin > 0 {
                digest = spin_hash(digest ^ u64::from(i), spin);
            }
            let url = format!("{base}/step/{i}");
            let body = http::get(&url)?.error_for_status()?.text();
            if let Some(bucket) = journal {
                kv::set(bucket, &url, body.as_bytes())?;
                log::info(&format!("step {i}: {body}"));
            }
            bodies.push(Value::String(body));
        }
        let artifact_id = match journal {
            Some(_) => {
                let all = Value::Array(bodies.clone()).to_string();
                artifacts::put("application/json", all.as_bytes(), Some("bodies.json"))?.id
            }
            None => String::new(),
        };
        Ok(
            outputs! { "bodies" => bodies, "count" => count, "spin_digest" => format!("{digest:016x}"),
            "artifact_id" => artifact_id }
            .into(),
        )
    }
}

export_node!(HttpSteps);

/// `iterations` rounds of a 64-bit mix chain; each round depends on the previous one, so the
/// optimizer can neither skip nor batch them, and the result is the same on every replay.
pub fn spin_hash(seed: u64, iterations: u64) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..iterations {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
        h = std::hint::black_box(h);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_is_deterministic_and_depends_on_iterations() {
        assert_eq!(spin_hash(7, 1000), spin_hash(7, 1000));
        assert_ne!(spin_hash(7, 1000), spin_hash(7, 1001));
        assert_ne!(spin_hash(7, 1000), spin_hash(8, 1000));
    }

    #[test]
    fn bad_inputs_are_rejected_before_any_call() {
        let inv = |inputs| Invocation::new("http_steps", "h", Value::Null, inputs);
        let e = HttpSteps::run(inv(abstractgateway_plugin_sdk::json!({"count": 2}))).unwrap_err();
        assert_eq!(e.message, "input 'base_url' is required");
        let e = HttpSteps::run(inv(
            abstractgateway_plugin_sdk::json!({"base_url": "http://x", "count": -1}),
        ))
        .unwrap_err();
        assert_eq!(e.message, "count must be between 0 and 2^32-1");
    }
}
