//! The node logic against an in-memory host: notes, recall, tags, rehydration and compaction across the
//! run, session and global scopes.

use std::collections::BTreeMap;

use abstractgateway_plugin_sdk::llm::{Request, Response, Usage};
use abstractgateway_plugin_sdk::{
    ContextEdit, Error, Invocation, NodeResult, Outputs, Value, json,
};
use node_memory::host::Host;
use node_memory::run_with;

/// A kv map, a scripted model and a clock that advances one second per reading.
#[derive(Default)]
struct Mem {
    kv: BTreeMap<String, Vec<u8>>,
    prompts: Vec<String>,
    reply: String,
    now: u64,
}

impl Host for Mem {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.kv.get(key).cloned())
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.kv.insert(key.into(), value.to_vec());
        Ok(())
    }
    fn list(&mut self, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .kv
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn complete(&mut self, req: Request) -> Result<Response, Error> {
        self.prompts.push(
            req.messages
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default(),
        );
        Ok(Response {
            content: self.reply.clone(),
            reasoning: None,
            tool_calls: vec![],
            finish_reason: "stop".into(),
            usage: Usage {
                input_tokens: 1,
                output_tokens: 1,
                total_tokens: 2,
            },
            provider: "lmstudio".into(),
            model: "fake-model".into(),
        })
    }
    fn now_ms(&mut self) -> u64 {
        self.now += 1000;
        1_764_000_000_000 + self.now
    }
}

fn invocation(ty: &str, run_id: &str, inputs: Value) -> Invocation {
    let config =
        json!({"_gateway": {"run_id": run_id, "session_id": "sess-1", "actor_id": "gateway"}});
    Invocation::new(ty, "n1", config, inputs)
}

/// Runs a node in a run without a context; its output pins.
fn run(h: &mut Mem, ty: &str, run_id: &str, inputs: Value) -> Result<Outputs, Error> {
    run_with(h, &invocation(ty, run_id, inputs)).map(|r| r.outputs)
}

/// Runs a node in a run whose context is `ctx`.
fn run_in(h: &mut Mem, ty: &str, run_id: &str, inputs: Value, ctx: Value) -> NodeResult {
    run_with(h, &invocation(ty, run_id, inputs).with_run_context(ctx)).expect(ty)
}

/// The messages a node replaced the run's context with.
fn replaced(r: &NodeResult) -> &[Value] {
    match &r.context_edit {
        Some(ContextEdit::Replace(list)) => list,
        other => panic!("no context replaced: {other:?}"),
    }
}

#[test]
fn an_empty_recall_renders_the_seed_text() {
    let mut h = Mem::default();
    let out = run(
        &mut h,
        "memory_query",
        "r1",
        json!({"query": "hello world", "limit": 8,
        "tags": {}, "tags_mode": "any", "scope": "all"}),
    )
    .expect("query");
    assert_eq!(out["rendered"], "No matching memory spans.");
    assert_eq!(out["results"], json!([]));
    assert_eq!(out["span_ids"], json!([]));
}

#[test]
fn a_session_note_is_recalled_by_another_run_of_the_session() {
    let mut h = Mem::default();
    let note = run(
        &mut h,
        "memory_note",
        "r1",
        json!({"content": "The user likes Rust.",
        "scope": "session", "tags": {"topic": "ltm", "kind": "ignored"}, "location": "paris"}),
    )
    .expect("note");
    let id = note["note_id"].as_str().expect("note id").to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(
        note["raw"]["results"][0]["output"],
        format!("Stored memory_note span_id={id} tags={{\"topic\": \"ltm\"}}")
    );
    // Run scope of another run sees nothing; its session scope sees the note.
    let own = run(&mut h, "memory_query", "r2", json!({"query": "rust"})).expect("q");
    assert_eq!(own["span_ids"], json!([]));
    let got = run(
        &mut h,
        "memory_query",
        "r2",
        json!({"query": "rust", "scope": "session"}),
    )
    .expect("q");
    assert_eq!(got["span_ids"], json!([id]));
    let rendered = got["rendered"].as_str().expect("text");
    assert!(rendered.starts_with("Recalled memory spans (provenance-preserving):\n\n[1] span_id="));
    assert!(
        rendered.contains("    note: The user likes Rust."),
        "{rendered}"
    );
    assert!(rendered.contains("    tags: topic=ltm"), "{rendered}");
    assert!(rendered.contains("    location: paris"), "{rendered}");
    assert!(rendered.contains("    sources.run_id: r1"), "{rendered}");
    assert_eq!(got["results"][0]["note_preview"], "The user likes Rust.");
    assert_eq!(got["results"][0]["created_by"], "gateway");
    // Tag filters: any/all modes, values case-insensitive.
    let by_tag = |h: &mut Mem, tags: Value, mode: &str| {
        run(
            h,
            "memory_query",
            "r2",
            json!({"tags": tags, "tags_mode": mode, "scope": "all"}),
        )
        .expect("q")["span_ids"]
            .clone()
    };
    assert_eq!(by_tag(&mut h, json!({"topic": "LTM"}), "all"), json!([id]));
    assert_eq!(
        by_tag(&mut h, json!({"topic": "ltm", "person": "bob"}), "all"),
        json!([])
    );
    assert_eq!(
        by_tag(&mut h, json!({"topic": "ltm", "person": "bob"}), "any"),
        json!([id])
    );
}

#[test]
fn tagging_merges_and_a_tagged_span_is_found_by_its_new_tag() {
    let mut h = Mem::default();
    let id = run(
        &mut h,
        "memory_note",
        "r1",
        json!({"content": "n", "scope": "global",
        "tags": {"a": "1"}}),
    )
    .expect("note")["note_id"]
        .as_str()
        .expect("id")
        .to_string();
    let tagged = run(
        &mut h,
        "memory_tag",
        "r9",
        json!({"span_id": id, "scope": "global",
        "tags": {"b": "2"}, "merge": true}),
    )
    .expect("tag");
    assert_eq!(tagged["success"], true);
    assert_eq!(
        tagged["rendered"],
        format!(
            "Tagged span_id={id} scope=global runs=[global_memory] tags={{\"a\": \"1\", \"b\": \"2\"}}"
        )
    );
    let q = run(
        &mut h,
        "memory_query",
        "r3",
        json!({"tags": {"b": "2"}, "scope": "global"}),
    )
    .expect("q");
    assert_eq!(q["span_ids"], json!([id]));
    let err = run(
        &mut h,
        "memory_tag",
        "r9",
        json!({"span_id": "nope", "scope": "global",
        "tags": {"b": "2"}}),
    )
    .expect_err("unknown span");
    assert_eq!(err.message, "Unknown span_id: nope");
}

#[test]
fn a_note_kept_in_context_and_rehydrated_is_inserted_once() {
    let mut h = Mem::default();
    let ctx = json!({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]});
    let note = run_in(
        &mut h,
        "memory_note",
        "r1",
        json!({"content": "remember me", "keep_in_context": true}),
        ctx.clone(),
    );
    let id = note.outputs["note_id"].as_str().expect("id").to_string();
    let msgs = replaced(&note);
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2]["content"], "[MEMORY NOTE]\nremember me");
    assert_eq!(
        msgs[2]["metadata"]["message_id"],
        format!("memory_note:{id}")
    );
    // Rehydrating again (by 1-based index into the run's spans) skips the message already there.
    let again = run_in(
        &mut h,
        "memory_rehydrate",
        "r1",
        json!({"span_ids": [1]}),
        json!({"messages": msgs}),
    );
    assert_eq!(
        (
            again.outputs["inserted"].clone(),
            again.outputs["skipped"].clone()
        ),
        (json!(0), json!(1))
    );
    assert_eq!(again.context_edit, None);
    // Into a fresh context it lands after the system messages.
    let fresh = run_in(
        &mut h,
        "memory_rehydrate",
        "r1",
        json!({"span_ids": [id], "placement": "after_summary"}),
        ctx,
    );
    assert_eq!(fresh.outputs["inserted"], 1);
    assert_eq!(fresh.outputs["artifacts"][0]["kind"], "memory_note");
    let msgs = replaced(&fresh);
    assert_eq!(msgs[1]["content"], "[MEMORY NOTE]\nremember me");
    // Nothing requested: the seed's no-op.
    let none = run(&mut h, "memory_rehydrate", "r1", json!({"span_ids": []})).expect("noop");
    assert_eq!(
        none["raw"],
        json!({"inserted": 0, "skipped": 0, "artifacts": []})
    );
}

#[test]
fn compaction_archives_older_messages_behind_a_summary() {
    let mut h = Mem {
        reply: r#"{"summary": "They greeted.", "key_points": ["hello"], "confidence": 0.5}"#.into(),
        ..Mem::default()
    };
    let mut messages = vec![json!({"role": "system", "content": "sys"})];
    for i in 0..5 {
        messages.push(json!({"role": "user", "content": format!("u{i}")}));
        messages.push(json!({"role": "assistant", "content": format!("a{i}")}));
    }
    let few = run_in(
        &mut h,
        "memory_compact",
        "r1",
        json!({}),
        json!({"messages": messages[..3]}),
    );
    assert_eq!(few.context_edit, None);
    let few = few.outputs;
    assert_eq!(
        few["raw"]["results"][0]["output"],
        "Nothing to compact (non-system messages <= preserve_recent=6)."
    );
    assert_eq!(few["span_id"], Value::Null);
    let empty = run(&mut h, "memory_compact", "r1", json!({})).expect("compact");
    assert_eq!(
        empty["raw"]["results"][0]["output"],
        "No messages to compact."
    );

    let result = run_in(
        &mut h,
        "memory_compact",
        "r1",
        json!({"preserve_recent": 4, "focus": "greetings"}),
        json!({"messages": messages}),
    );
    let out = &result.outputs;
    let id = out["span_id"].as_str().expect("span id").to_string();
    assert_eq!(
        out["raw"]["results"][0]["output"],
        format!("Compacted 6 messages into span_id={id}.")
    );
    assert_eq!(
        out["raw"]["results"][0]["meta"]["key_points"],
        json!(["hello"])
    );
    assert!(h.prompts[0].contains("OLDER MESSAGES (to be archived):\nuser: u0\nassistant: a0\n"));
    assert!(h.prompts[0].contains("Focus: greetings\n"));
    let msgs = replaced(&result);
    assert_eq!(msgs.len(), 1 + 1 + 4);
    assert_eq!(
        msgs[1]["content"],
        format!("[CONVERSATION HISTORY SUMMARY span_id={id}]: They greeted.")
    );
    assert_eq!(msgs[2]["content"], "u3");
    // The span is recallable by keyword (deep scan of its archived messages) and rehydrates after its summary.
    let q = run_in(
        &mut h,
        "memory_query",
        "r1",
        json!({"query": "a1"}),
        json!({"messages": msgs}),
    )
    .outputs;
    assert_eq!(q["span_ids"], json!([id]));
    assert!(
        q["rendered"]
            .as_str()
            .expect("text")
            .contains("    summary: [CONVERSATION HISTORY SUMMARY")
    );
    let back = run_in(
        &mut h,
        "memory_rehydrate",
        "r1",
        json!({"span_ids": [id], "max_messages": 2}),
        json!({"messages": msgs}),
    );
    assert_eq!(back.outputs["inserted"], 2);
    let after = replaced(&back);
    assert_eq!(after[2]["content"], "u0");
    assert_eq!(after[3]["content"], "a0");
    assert_eq!(after[4]["content"], "u3");
}

#[test]
fn bad_inputs_fail_with_the_seed_messages() {
    let mut h = Mem::default();
    let e = run(&mut h, "memory_note", "r1", json!({"content": "  "})).expect_err("empty");
    assert_eq!(
        e.message,
        "MEMORY_NOTE requires payload.note (non-empty string)"
    );
    let e = run(&mut h, "memory_query", "r1", json!({"scope": "planet"})).expect_err("scope");
    assert_eq!(e.message, "Unknown memory_query scope: planet");
    let e = run(
        &mut h,
        "memory_query",
        "r1",
        json!({"recall_level": "extreme"}),
    )
    .expect_err("level");
    assert_eq!(e.message, "Unknown recall_level: extreme");
    let e = run(
        &mut h,
        "memory_tag",
        "r1",
        json!({"span_id": 1, "scope": "all", "tags": {"a": "b"}}),
    )
    .expect_err("index with all");
    assert_eq!(
        e.message,
        "memory_tag scope='all' requires span_id as artifact id (no indices)"
    );
}

#[test]
fn the_context_nodes_declare_they_read_it_and_every_type_fails_the_run() {
    use abstractgateway_plugin_sdk::{InputFailure, Node, NodeFailure};
    for t in node_memory::MemoryNodes::describe() {
        assert_eq!(t.reads.run_context, t.name != "memory_tag", "{}", t.name);
        assert!(!t.reads.vars, "{}", t.name);
        assert_eq!(t.input_failure(), InputFailure::FailRun, "{}", t.name);
        assert_eq!(t.on_failure, NodeFailure::FailRun, "{}", t.name);
    }
}
