//! `hostile`: one node type whose `inputs.attack` picks an attack on the host, to prove its limits hold.
//!
//! Attacks: `infinite_loop`, `memory_bomb`, `recursion`, `trap`, `huge_output`, `call_flood`,
//! `ungranted`. The first three and `trap` must end in a trap or limit error on the host side;
//! `huge_output` must be refused by the output cap; `call_flood` by the call budget or the timeout;
//! `ungranted` must come back with `access-denied` errors, which it reports as its output.

use std::hint::black_box;

use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeType, Outputs, Value, export_node, http, json, kv, log, outputs,
};

/// The plugin.
pub struct Hostile;

/// Every attack `inputs.attack` accepts.
pub const ATTACKS: [&str; 7] = [
    "infinite_loop",
    "memory_bomb",
    "recursion",
    "trap",
    "huge_output",
    "call_flood",
    "ungranted",
];

impl Node for Hostile {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("hostile")
                .label("Hostile")
                .description("Attacks the host (test plugin): infinite_loop, memory_bomb, recursion, trap, huge_output, call_flood, ungranted.")
                .input("attack", "string")
                .input_labeled("mode", "trap: panic | unreachable", "string")
                .input_labeled("mb", "huge_output size in MiB (default 64)", "number")
                .input_labeled("calls", "call_flood count (default 10,000,000)", "number")
                .input_labeled("url", "ungranted: URL to fetch", "string")
                .input_labeled("bucket", "ungranted: kv bucket to read", "string")
                .output("result", "object"),
        ]
    }

    fn run(inv: Invocation) -> Result<Outputs, Error> {
        match inv.input_str("attack")? {
            "infinite_loop" => infinite_loop(),
            "memory_bomb" => Ok(memory_bomb()),
            "recursion" => Ok(outputs! { "depth" => recurse(0, black_box(1)) }),
            "trap" => trap(inv.input_str_opt("mode")?.unwrap_or("panic")),
            "huge_output" => {
                let mb = inv.input_i64_opt("mb")?.unwrap_or(64);
                let mb =
                    usize::try_from(mb).map_err(|_| Error::invalid_input("mb must be >= 0"))?;
                Ok(outputs! { "data" => "x".repeat(mb << 20) })
            }
            "call_flood" => {
                let calls = inv.input_i64_opt("calls")?.unwrap_or(10_000_000).max(0);
                for i in 0..calls {
                    log::log(
                        log::Level::Debug,
                        black_box(if i % 2 == 0 { "flood" } else { "flood!" }),
                    );
                }
                Ok(outputs! { "calls" => calls })
            }
            "ungranted" => {
                let url = inv
                    .input_str_opt("url")?
                    .unwrap_or("https://ungranted.example.invalid/secret");
                let bucket = inv.input_str_opt("bucket")?.unwrap_or("ungranted-bucket");
                Ok(ungranted(url, bucket))
            }
            other => Err(Error::invalid_input(format!(
                "unknown attack '{other}'; one of: {}",
                ATTACKS.join(", ")
            ))),
        }
    }
}

export_node!(Hostile);

/// Spins forever; only the host's epoch deadline (or fuel) can stop it.
fn infinite_loop() -> Result<Outputs, Error> {
    let mut x = black_box(1u64);
    loop {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        if black_box(x) == 0 && black_box(false) {
            return Ok(outputs! { "x" => x });
        }
    }
}

/// Allocates and touches 1 MiB chunks until an allocation fails (the store's memory limit makes
/// `memory.grow` fail, which `try_reserve` reports), then says how far it got.
fn memory_bomb() -> Outputs {
    const CHUNK: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut failed = false;
    // 4 GiB is all a wasm32 memory can address; past that something else is wrong.
    while chunks.len() < 4096 {
        if chunks.try_reserve(1).is_err() {
            failed = true;
            break;
        }
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(CHUNK).is_err() {
            failed = true;
            break;
        }
        chunk.resize(CHUNK, chunks.len() as u8);
        chunks.push(black_box(chunk));
    }
    let allocated: usize = chunks.iter().map(Vec::len).sum();
    outputs! { "allocation_failed" => failed, "allocated_mb" => allocated >> 20 }
}

/// Recurses without bound; each frame keeps 256 bytes live on the shadow stack so that both the
/// wasm call stack and linear memory are consumed.
#[inline(never)]
#[allow(unconditional_recursion)] // the attack: only the host's stack limit ends it
fn recurse(depth: u64, salt: u64) -> u64 {
    let frame = black_box([salt as u8; 256]);
    let below = recurse(
        black_box(depth + 1),
        salt.wrapping_add(u64::from(frame[depth as usize % 256])),
    );
    black_box(below).wrapping_add(u64::from(frame[0]))
}

/// Traps the instance: a Rust panic (which aborts, i.e. `unreachable`) or the raw instruction.
fn trap(mode: &str) -> Result<Outputs, Error> {
    match mode {
        "panic" => panic!("hostile plugin panicked on purpose"),
        "unreachable" => {
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
            #[cfg(not(target_arch = "wasm32"))]
            std::process::abort();
        }
        other => Err(Error::invalid_input(format!(
            "trap mode '{other}': panic or unreachable"
        ))),
    }
}

/// Calls capabilities nobody granted and reports exactly what came back.
fn ungranted(url: &str, bucket: &str) -> Outputs {
    let http_result = match http::get(url) {
        Ok(resp) => json!({"status": resp.status, "body_bytes": resp.body.len()}),
        Err(e) => error_json(&e),
    };
    let kv_result = match kv::get(bucket, "secret") {
        Ok(Some(v)) => json!({"value_bytes": v.len()}),
        Ok(None) => json!({"value": null}),
        Err(e) => error_json(&e),
    };
    outputs! { "http" => http_result, "kv" => kv_result }
}

fn error_json(e: &Error) -> Value {
    json!({"error": format!("{:?}", e.code), "message": e.message, "retryable": e.retryable})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_attack_lists_the_known_ones() {
        let e = Hostile::run(Invocation::new(
            "hostile",
            "h",
            Value::Null,
            json!({"attack": "nope"}),
        ))
        .unwrap_err();
        assert!(
            e.message.contains("infinite_loop, memory_bomb"),
            "{}",
            e.message
        );
    }

    #[test]
    fn huge_output_has_the_asked_size() {
        let out = Hostile::run(Invocation::new(
            "hostile",
            "h",
            Value::Null,
            json!({"attack": "huge_output", "mb": 1}),
        ))
        .unwrap();
        assert_eq!(out["data"].as_str().map(str::len), Some(1 << 20));
    }
}
