//! `hostile`: one node type whose `inputs.attack` picks an attack on the host, to prove its limits hold.
//!
//! Attacks on the sandbox itself: `infinite_loop`, `memory_bomb`, `recursion`, `trap`,
//! `huge_output`, `call_flood`, `ungranted`. The first three and `trap` must end in a trap or limit
//! error on the host side; `huge_output` must be refused by the output cap; `call_flood` by the call
//! budget or the timeout; `ungranted` must come back with `access-denied` errors, which it reports
//! as its output.
//!
//! Attacks that wait or pile up inside the host, where wasm fuel and epochs do not tick: `sleep`
//! (one long WASI monotonic-clock wait), `poll` (many 1 ms waits, `secs` seconds in all),
//! `resource_flood` (WASI pollables created and never dropped), `log_flood`, `emit_flood` and
//! `artifact_put` (large payloads through host calls).
//!
//! Probes that report what the host answered instead of failing the node, as
//! `{ok: true, ...}` or `{ok: false, code, message}` (`code` as the WIT `error-code` spells it):
//! `artifact_put`, `kv_read`, `kv_write`, `http_get`, `llm_bad_options`, `tool_invoke`.

use std::hint::black_box;
use std::time::Duration;

use abstractgateway_plugin_sdk::bindings::node::abstractgateway::plugin as host;
use abstractgateway_plugin_sdk::{
    Error, ErrorCode, Invocation, Node, NodeResult, NodeType, Outputs, Value, artifacts,
    export_node, http, json, kv, llm, log, outputs, serde_json,
};

/// The plugin.
pub struct Hostile;

/// Every attack `inputs.attack` accepts.
pub const ATTACKS: [&str; 18] = [
    "infinite_loop",
    "memory_bomb",
    "recursion",
    "trap",
    "huge_output",
    "call_flood",
    "ungranted",
    "sleep",
    "poll",
    "resource_flood",
    "log_flood",
    "emit_flood",
    "artifact_put",
    "kv_read",
    "kv_write",
    "http_get",
    "llm_bad_options",
    "tool_invoke",
];

impl Node for Hostile {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("hostile")
                .label("Hostile")
                .description(
                    "Attacks the host (test plugin): infinite_loop, memory_bomb, recursion, trap, \
                     huge_output, call_flood, ungranted, sleep, poll, resource_flood, log_flood, \
                     emit_flood, artifact_put, kv_read, kv_write, http_get, llm_bad_options, \
                     tool_invoke.",
                )
                .input("attack", "string")
                .input_labeled("mode", "trap: panic | unreachable", "string")
                .input_labeled(
                    "mb",
                    "MiB: huge_output (default 64), emit_flood (default 16), artifact_put (default 1)",
                    "number",
                )
                .input_labeled("calls", "call_flood count (default 10,000,000)", "number")
                .input_labeled("secs", "sleep / poll: seconds (default 600)", "number")
                .input_labeled("kb", "log_flood message size in KiB (default 64)", "number")
                .input_labeled(
                    "count",
                    "log_flood lines (default 100,000); emit_flood extra emits (default 1); \
                     resource_flood handles (default 10,000,000)",
                    "number",
                )
                .input_labeled("url", "ungranted / http_get: URL to fetch", "string")
                .input_labeled("bucket", "ungranted / kv_read / kv_write: kv bucket", "string")
                .input_labeled("key", "kv_read / kv_write: key", "string")
                .input_labeled("value", "kv_write: value to store", "string")
                .input_labeled("tool", "tool_invoke: tool name", "string")
                .input_labeled(
                    "arguments",
                    "tool_invoke: arguments (JSON text is passed verbatim)",
                    "any",
                )
                .output("result", "object"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        attack(inv).map(NodeResult::from)
    }
}

export_node!(Hostile);

/// Runs the attack `inputs.attack` names; its outputs.
fn attack(inv: Invocation) -> Result<Outputs, Error> {
    match inv.input_str("attack")? {
        "infinite_loop" => infinite_loop(),
        "memory_bomb" => Ok(memory_bomb()),
        "recursion" => Ok(outputs! { "depth" => recurse(0, black_box(1)) }),
        "trap" => trap(inv.input_str_opt("mode")?.unwrap_or("panic")),
        "huge_output" => {
            let mb = non_negative(&inv, "mb", 64)?;
            Ok(outputs! { "data" => "x".repeat(mib(mb)?) })
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
        "sleep" => {
            let secs = non_negative(&inv, "secs", 600)?;
            std::thread::sleep(Duration::from_secs(secs));
            Ok(outputs! { "slept" => secs })
        }
        "poll" => Ok(poll(non_negative(&inv, "secs", 600)?)),
        "resource_flood" => resource_flood(non_negative(&inv, "count", 10_000_000)?),
        "log_flood" => {
            let kb = non_negative(&inv, "kb", 64)?;
            let count = non_negative(&inv, "count", 100_000)?;
            Ok(log_flood(kib(kb)?, count))
        }
        "emit_flood" => {
            let mb = non_negative(&inv, "mb", 16)?;
            let count = non_negative(&inv, "count", 1)?;
            Ok(emit_flood(mib(mb)?, count))
        }
        "artifact_put" => {
            let mb = non_negative(&inv, "mb", 1)?;
            Ok(artifact_put(mib(mb)?))
        }
        "kv_read" => {
            let (bucket, key) = bucket_and_key(&inv)?;
            Ok(match kv::get(bucket, key) {
                Ok(value) => outputs! {
                    "ok" => true,
                    "value" => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                },
                Err(e) => refusal(&e),
            })
        }
        "kv_write" => {
            let (bucket, key) = bucket_and_key(&inv)?;
            let value = inv.input_str_opt("value")?.unwrap_or("");
            Ok(match kv::set(bucket, key, value.as_bytes()) {
                Ok(()) => outputs! { "ok" => true },
                Err(e) => refusal(&e),
            })
        }
        "http_get" => Ok(match http::get(inv.input_str("url")?) {
            Ok(resp) => {
                outputs! { "ok" => true, "status" => resp.status, "body" => resp.text() }
            }
            Err(e) => refusal(&e),
        }),
        "llm_bad_options" => Ok(llm_bad_options()),
        "tool_invoke" => tool_invoke(&inv),
        other => Err(Error::invalid_input(format!(
            "unknown attack '{other}'; one of: {}",
            ATTACKS.join(", ")
        ))),
    }
}

/// A non-negative integer input, `default` when absent.
fn non_negative(inv: &Invocation, name: &str, default: u64) -> Result<u64, Error> {
    match inv.input_i64_opt(name)? {
        None => Ok(default),
        Some(n) => {
            u64::try_from(n).map_err(|_| Error::invalid_input(format!("{name} must be >= 0")))
        }
    }
}

/// `n` MiB in bytes, if it fits the address space.
fn mib(n: u64) -> Result<usize, Error> {
    bytes(n, 20)
}

/// `n` KiB in bytes, if it fits the address space.
fn kib(n: u64) -> Result<usize, Error> {
    bytes(n, 10)
}

fn bytes(n: u64, shift: u32) -> Result<usize, Error> {
    n.checked_shl(shift)
        .filter(|b| b >> shift == n)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| Error::invalid_input(format!("{n} << {shift} bytes is too large")))
}

/// The `bucket` and `key` inputs (defaults `hostile` and `key`).
fn bucket_and_key(inv: &Invocation) -> Result<(&str, &str), Error> {
    Ok((
        inv.input_str_opt("bucket")?.unwrap_or("hostile"),
        inv.input_str_opt("key")?.unwrap_or("key"),
    ))
}

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

/// Blocks in the host `secs * 1000` times for 1 ms each: every wait is short, together they are long.
fn poll(secs: u64) -> Outputs {
    let polls = secs.saturating_mul(1000);
    for _ in 0..polls {
        std::thread::sleep(Duration::from_millis(1));
    }
    outputs! { "polls" => polls, "secs" => secs }
}

/// Creates `count` WASI pollables (monotonic-clock subscriptions an hour away) and never drops them:
/// each one is an entry in the host's resource table that only the end of the instance frees.
fn resource_flood(count: u64) -> Result<Outputs, Error> {
    #[cfg(target_arch = "wasm32")]
    {
        // The same import std's `thread::sleep` uses; declared by hand because std drops its
        // pollable and the SDK does not expose WASI. Canonical ABI: `u64` in, the `own<pollable>`
        // handle out.
        #[link(wasm_import_module = "wasi:clocks/monotonic-clock@0.2.0")]
        unsafe extern "C" {
            #[link_name = "subscribe-duration"]
            fn subscribe_duration(nanos: i64) -> i32;
        }
        const HOUR_NS: i64 = 3_600_000_000_000;
        let mut last = 0;
        for _ in 0..count {
            // SAFETY: the host function takes a duration and returns a new handle; the handle is
            // deliberately leaked (never passed to `[resource-drop]pollable`).
            last = black_box(unsafe { subscribe_duration(black_box(HOUR_NS)) });
        }
        Ok(outputs! { "created" => count, "last_handle" => last })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = count;
        Err(Error::new(
            ErrorCode::Unsupported,
            "resource_flood needs the WASI host",
        ))
    }
}

/// Logs `count` lines of `bytes` bytes each.
fn log_flood(bytes: usize, count: u64) -> Outputs {
    let line = "x".repeat(bytes);
    for _ in 0..count {
        log::log(log::Level::Info, black_box(&line));
    }
    outputs! { "logged" => count, "line_bytes" => bytes }
}

/// Emits the event `hostile_flood` with a `{"data": "xx..."}` payload of `bytes` characters, once and
/// then `count` more times; the JSON text is built once so the guest holds a single copy.
fn emit_flood(bytes: usize, count: u64) -> Outputs {
    let mut payload = String::with_capacity(bytes + 12);
    payload.push_str("{\"data\":\"");
    payload.extend(std::iter::repeat_n('x', bytes));
    payload.push_str("\"}");
    let total = count.saturating_add(1);
    for _ in 0..total {
        host::durability::emit("hostile_flood", black_box(&payload));
    }
    outputs! { "emitted" => total, "payload_bytes" => payload.len() }
}

/// Stores `bytes` bytes as the artifact `big.bin`; reports the artifact or the refusal.
fn artifact_put(bytes: usize) -> Outputs {
    match artifacts::put(
        "application/octet-stream",
        &vec![b'x'; bytes],
        Some("big.bin"),
    ) {
        Ok(a) => outputs! {
            "ok" => true,
            "id" => a.id,
            "content_type" => a.content_type,
            "size" => a.size,
            "name" => a.name,
        },
        Err(e) => refusal(&e),
    }
}

/// Chat completions whose provider options are out of any sane range; reports each answer.
fn llm_bad_options() -> Outputs {
    let call = |options: Value| {
        let req = llm::Request {
            options: Some(options),
            ..llm::Request::prompt("hi")
        };
        match llm::complete(req) {
            Ok(r) => json!({
                "ok": true,
                "content": r.content,
                "finish_reason": r.finish_reason,
                "provider": r.provider,
                "model": r.model,
            }),
            Err(e) => Value::Object(refusal(&e)),
        }
    };
    outputs! {
        "huge_timeout" => call(json!({"timeout_s": 1e300})),
        "negative_timeout" => call(json!({"timeout_s": -1})),
        "huge_retries" => call(json!({"max_retries": 1e300})),
    }
}

/// Invokes `inputs.tool`; a string `inputs.arguments` goes to the host verbatim (even if it is not
/// JSON), anything else as its JSON text, absent as `{}`.
fn tool_invoke(inv: &Invocation) -> Result<Outputs, Error> {
    let tool = inv.input_str("tool")?;
    let arguments = match inv.input("arguments") {
        None => "{}".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    Ok(match host::tools::invoke(tool, &arguments) {
        Ok(text) => {
            let result = serde_json::from_str(&text).unwrap_or(Value::String(text));
            outputs! { "ok" => true, "result" => result }
        }
        Err(e) => refusal(&e.into()),
    })
}

/// A host call's error as outputs: `{ok: false, code, message}`.
fn refusal(e: &Error) -> Outputs {
    outputs! { "ok" => false, "code" => code_name(e.code), "message" => e.message }
}

/// An error code as the WIT `error-code` enum spells it.
fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidInput => "invalid-input",
        ErrorCode::AccessDenied => "access-denied",
        ErrorCode::NotFound => "not-found",
        ErrorCode::RateLimited => "rate-limited",
        ErrorCode::Timeout => "timeout",
        ErrorCode::Cancelled => "cancelled",
        ErrorCode::Unavailable => "unavailable",
        ErrorCode::TooLarge => "too-large",
        ErrorCode::Internal => "internal",
        ErrorCode::Unsupported => "unsupported",
    }
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
        assert_eq!(out.outputs["data"].as_str().map(str::len), Some(1 << 20));
    }

    #[test]
    fn every_attack_is_described_and_dispatched() {
        let description = &Hostile::describe()[0].description;
        for attack in ATTACKS {
            assert!(
                description.contains(attack),
                "{attack} not in {description}"
            );
        }
        let e = Hostile::run(Invocation::new(
            "hostile",
            "h",
            Value::Null,
            json!({"attack": "nope"}),
        ))
        .unwrap_err();
        assert!(e.message.ends_with(&ATTACKS.join(", ")), "{}", e.message);
    }

    #[test]
    fn sizes_refuse_negatives_and_overflow() {
        let inv = |inputs| Invocation::new("hostile", "h", Value::Null, inputs);
        assert_eq!(non_negative(&inv(json!({})), "mb", 16), Ok(16));
        assert_eq!(non_negative(&inv(json!({"mb": 3})), "mb", 16), Ok(3));
        assert!(non_negative(&inv(json!({"mb": -1})), "mb", 16).is_err());
        assert_eq!(mib(2), Ok(2 << 20));
        assert_eq!(kib(64), Ok(64 << 10));
        assert!(mib(u64::MAX).is_err());
    }

    #[test]
    fn refusals_name_the_wit_code() {
        let out = refusal(&Error::new(ErrorCode::AccessDenied, "not granted"));
        assert_eq!(
            Value::Object(out),
            json!({"ok": false, "code": "access-denied", "message": "not granted"})
        );
    }
}
