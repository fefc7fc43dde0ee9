//! The seed's run LLM helpers: `POST /runs/{id}/summary` and `/chat` ask a model about a run from the digest of
//! its ledger (and its descendants'), `/chat_threads` saves a chat as an artifact. What they write to the ledger
//! (`abstract.summary`, `abstract.chat`, `abstract.chat.thread` records) goes through the runner, the one ledger
//! writer, as an internal command ([`record_event`]).

use std::collections::VecDeque;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::digest::{ToolSpecs, clamp, digest, llm_answer, llm_prompt, llm_usage, record_ts};
use crate::artifacts::NewArtifact;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::llm::{CancelToken, ChatMessage, ChatRequest};
use crate::run::{RECORD_EVENT_COMMAND, RunState};
use crate::state::SharedState;
use crate::store::NewCommand;
use crate::wire::observer::{
    ArtifactRef, AskAboutRun, ChatAnswer, SaveChatThread, SavedChatThread, SummarizeRun,
    SummaryAnswer,
};

/// Runs of a tree read for a summary or a chat, at most (the seed's bound).
const MAX_RUNS: usize = 2000;
/// Ledger records read for one summary or chat, across its runs, at most.
const MAX_RECORDS: usize = 100_000;
/// The context given to the model is cut to this many characters (as the seed does).
const MAX_CONTEXT_CHARS: usize = 180_000;
/// How long an endpoint waits for the runner to record its event.
const RECORD_WAIT: Duration = Duration::from_secs(30);
/// The seed's defaults when neither the request nor the environment names a provider or model.
const DEFAULT_PROVIDER: &str = "lmstudio";
const DEFAULT_MODEL: &str = "qwen/qwen3-next-80b";
/// `ABSTRACTGATEWAY_MAX_CHAT_THREAD_BYTES` when unset.
const DEFAULT_MAX_THREAD_BYTES: usize = 750_000;

const SUMMARY_SYSTEM: &str = "You are AbstractObserver. You are given an execution digest derived from an append-only workflow ledger.
Write a concise human-readable SUMMARY of what the workflow did.

Requirements:
- Start with 1 line: outcome (success/failure/cancelled/unknown)
- Then 3-8 short bullets: key actions, important files/commands/URLs, and any issues.
- Mention relevant tool/LLM activity (counts + notable calls); do not paste huge payloads.
- If any LLM call has `missing_response=true`, flag it as a likely runtime/model issue.
- Mention the original prompt.
- If the run failed, include the likely reason.
- Keep it compact and factual; do not invent actions.
";

const CHAT_SYSTEM: &str = "You are AbstractObserver Chat.
You are given:
- RUN_CONTEXT: a JSON object derived from an append-only workflow ledger (parent + subruns).
- CHAT_MESSAGES: a short chat history.

Your job:
- Answer the user's latest question using ONLY facts from RUN_CONTEXT.
- If RUN_CONTEXT does not contain enough information, say you don't know.
- You may provide a best-effort guess, but label it explicitly as a guess.
- Be concise, structured, and do not paste large raw payloads.
- If the run appears failed, explain the likely reason.
- Do not suggest running tools (this chat is read-only).
";

/// The seed's `generated_at`: UTC to the second.
fn now_seconds() -> String {
    let now = ::time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Appends an `emit_event` record named `name` to `run_id`'s ledger through the runner, and waits until it (and
/// the command's outcome) is durable. Errors are the caller's `"Failed to persist …"` 500, or 503 when the runner
/// does not answer in time.
pub(crate) async fn record_event(
    st: &SharedState,
    run_id: &str,
    node_id: &str,
    name: &str,
    payload: Value,
    idempotency_key: &str,
) -> Result<(), String> {
    let store = st.gw.store();
    let mut outcomes = store.watch_outcomes();
    let command_id = format!("rec-{}", uuid::Uuid::new_v4().simple());
    let cmd = NewCommand {
        command_id: command_id.clone(),
        run_id: run_id.to_string(),
        kind: RECORD_EVENT_COMMAND.to_string(),
        payload: json!({"node_id": node_id, "name": name, "payload": payload,
            "idempotency_key": idempotency_key}),
        ts: None,
        client_id: Some("gateway".into()),
    };
    st.gw
        .clone()
        .submit_command_async(cmd)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + RECORD_WAIT;
    loop {
        outcomes.borrow_and_update();
        if let Some((_, Some(outcome))) =
            store.get_command(&command_id).map_err(|e| e.to_string())?
        {
            return match outcome.status.as_str() {
                "applied" => Ok(()),
                _ => Err(outcome.reason.unwrap_or_else(|| "rejected".into())),
            };
        }
        match tokio::time::timeout_at(deadline, outcomes.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                return Err(format!(
                    "the runner did not record the event within {}s",
                    RECORD_WAIT.as_secs()
                ));
            }
        }
    }
}

/// The run, or the seed's 400/404.
fn load_run(st: &SharedState, run_id: &str) -> Result<RunState, ApiError> {
    find_run(st, run_id)?.ok_or_else(|| ApiError::run_not_found(run_id.trim()))
}

/// The run a helper's path names, `None` when there is none; the seed's 400 for a blank id and 500 when the
/// store cannot read it.
pub(crate) fn find_run(st: &SharedState, run_id: &str) -> Result<Option<RunState>, ApiError> {
    let rid = run_id.trim();
    if rid.is_empty() {
        return Err(ApiError::bad_request("run_id is required"));
    }
    st.gw
        .store()
        .get_run(rid)
        .map_err(|e| ApiError::internal(format!("Failed to load run: {e}")))
}

/// The run ids of `root`'s tree, root first, breadth first, at most [`MAX_RUNS`].
fn tree(st: &SharedState, root: &str, include_subruns: bool) -> Vec<String> {
    let mut out = vec![root.to_string()];
    if !include_subruns {
        return out;
    }
    let mut queue = VecDeque::from([root.to_string()]);
    while let Some(parent) = queue.pop_front() {
        for child in st.gw.store().child_run_ids(&parent).unwrap_or_default() {
            if out.len() >= MAX_RUNS {
                return out;
            }
            out.push(child.clone());
            queue.push_back(child);
        }
    }
    out
}

/// Each run's ledger records, in tree order, [`MAX_RECORDS`] at most in all.
fn ledgers(st: &SharedState, ids: &[String]) -> Vec<(String, Vec<Value>)> {
    let mut budget = MAX_RECORDS;
    ids.iter()
        .map(|id| {
            let recs: Vec<Value> = st
                .gw
                .store()
                .ledger_after(id, 0, budget)
                .unwrap_or_default()
                .iter()
                .filter_map(|e| serde_json::from_str(e.json.get()).ok())
                .collect();
            budget = budget.saturating_sub(recs.len());
            (id.clone(), recs)
        })
        .collect()
}

fn tool_specs(st: &SharedState) -> ToolSpecs {
    let tools = st
        .plugin_caps
        .tools
        .as_ref()
        .map(|t| t.list(None))
        .unwrap_or_default();
    ToolSpecs::new(
        tools
            .iter()
            .map(|t| (t.name.as_str(), t.parameters.as_str())),
    )
}

/// The seed's summary/chat context: the run, its prompt, the overall and per-run digests.
fn context(st: &SharedState, run: &RunState, runs: &[(String, Vec<Value>)]) -> Map<String, Value> {
    let specs = tool_specs(st);
    let mut per_run = Map::new();
    let mut all = Vec::new();
    for (id, recs) in runs {
        per_run.insert(id.clone(), digest(recs, &specs));
        all.extend(recs.iter().cloned());
    }
    let prompt = run
        .vars
        .get("prompt")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let status = serde_json::to_value(run.status).unwrap_or(Value::Null);
    let mut ctx = Map::new();
    ctx.insert("run_id".into(), json!(run.run_id));
    ctx.insert("workflow_id".into(), json!(run.workflow_id));
    ctx.insert("status".into(), status);
    ctx.insert("prompt".into(), json!(prompt));
    ctx.insert("overall".into(), digest(&all, &specs));
    ctx.insert("per_run".into(), Value::Object(per_run));
    ctx
}

/// The context of `run`'s tree (off the async threads) and each run's ledger length; with `excerpts` (the chat),
/// the context also holds those lengths and each run's ledger excerpt.
async fn gather(
    st: &SharedState,
    run: &RunState,
    include_subruns: bool,
    excerpts: bool,
) -> Result<(Map<String, Value>, Value), ApiError> {
    let (st, run) = (st.clone(), run.clone());
    tokio::task::spawn_blocking(move || {
        let ids = tree(&st, &run.run_id, include_subruns);
        let runs = ledgers(&st, &ids);
        let mut ctx = context(&st, &run, &runs);
        let lens: Map<String, Value> = runs
            .iter()
            .map(|(id, r)| (id.clone(), json!(r.len())))
            .collect();
        if excerpts {
            let parts: Map<String, Value> = runs
                .iter()
                .map(|(id, r)| (id.clone(), json!(excerpt(r))))
                .collect();
            ctx.insert("ledger_len_by_run".into(), Value::Object(lens.clone()));
            ctx.insert("ledger_excerpt_by_run".into(), Value::Object(parts));
        }
        (ctx, Value::Object(lens))
    })
    .await
    .map_err(|e| ApiError::internal(format!("Failed to load run: {e}")))
}

/// Provider and model: the request's, else `ABSTRACTGATEWAY_PROVIDER`/`_MODEL`, else the seed's defaults.
fn route(provider: Option<String>, model: Option<String>) -> (String, String) {
    let pick = |given: Option<String>, var: &str, default: &str| {
        given
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                std::env::var(var)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| default.to_string())
    };
    (
        pick(provider, "ABSTRACTGATEWAY_PROVIDER", DEFAULT_PROVIDER),
        pick(model, "ABSTRACTGATEWAY_MODEL", DEFAULT_MODEL),
    )
}

/// One completion at temperature 0.2; the answer's text, trimmed.
async fn ask(
    st: &SharedState,
    provider: &str,
    model: &str,
    mut messages: Vec<ChatMessage>,
    system: &str,
) -> Result<String, String> {
    let providers = st
        .plugin_caps
        .providers
        .clone()
        .ok_or_else(|| "no LLM provider is configured on this gateway".to_string())?;
    messages.insert(0, ChatMessage::new("system", system));
    let req = ChatRequest {
        provider: Some(provider.to_string()),
        model: Some(model.to_string()),
        messages,
        temperature: Some(0.2),
        ..Default::default()
    };
    providers
        .complete(&req, CancelToken::never())
        .await
        .map(|r| r.content.trim().to_string())
        .map_err(|e| e.message)
}

/// An LLM summary of the run from its ledger digest (recorded as abstract.summary).
///
/// The model reads the digest of the run's ledger (and, by default, its descendants'); its answer is appended to
/// the run's ledger before it is returned.
#[utoipa::path(post, path = "/api/gateway/runs/{run_id}/summary", tag = "observer",
    params(("run_id" = String, Path)),
    request_body = SummarizeRun,
    responses((status = 200, description = "The summary", body = SummaryAnswer),
              (status = 400, description = "Blank run id, or the model failed", body = ErrorBody),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn summary(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<SummaryAnswer>> {
    let a = SummarizeRun::parse(&headers, &body)?;
    let run = load_run(&st, &run_id)?;
    let rid = run.run_id.clone();
    let (ctx, lens) = gather(&st, &run, a.include_subruns, false).await?;
    let (provider, model) = route(a.provider, a.model);
    let user = serde_json::to_string_pretty(&ctx).unwrap_or_default();
    let messages = vec![ChatMessage::new("user", clamp(&user, MAX_CONTEXT_CHARS))];
    let text = ask(&st, &provider, &model, messages, SUMMARY_SYSTEM)
        .await
        .map_err(|e| ApiError::bad_request(format!("Failed to generate summary: {e}")))?;
    let generated_at = now_seconds();
    let payload = json!({"text": text, "generated_at": generated_at, "provider": provider, "model": model,
        "source": {"run_id": rid, "include_subruns": a.include_subruns, "ledger_len_by_run": lens}});
    let key = format!("observer:summary:{generated_at}");
    record_event(&st, &rid, "observer", "abstract.summary", payload, &key)
        .await
        .map_err(|e| ApiError::internal(format!("Failed to persist summary: {e}")))?;
    Ok(Json(SummaryAnswer {
        ok: true,
        run_id: rid,
        provider,
        model,
        generated_at,
        summary: text,
    }))
}

/// A slim view of one record for the chat's ledger excerpt.
fn slim(rec: &Value) -> Value {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").trim().to_string();
    let dump = |v: Option<&Value>, max: usize| {
        let text = match v {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(t)) => t.clone(),
            Some(other) => serde_json::to_string_pretty(other).unwrap_or_default(),
        };
        clamp(&text, max)
    };
    let effect = rec.get("effect").filter(|e| e.is_object());
    let kind = effect.map(|e| s(e.get("type"))).unwrap_or_default();
    let payload = effect.and_then(|e| e.get("payload"));
    let result = rec.get("result");
    let ts = record_ts(rec);
    let error = rec.get("error").filter(|e| !e.is_null()).map(|e| match e {
        Value::String(t) => clamp(t, 400),
        other => clamp(&other.to_string(), 400),
    });
    let mut out = json!({"ts": ts, "node_id": s(rec.get("node_id")), "status": s(rec.get("status")),
        "effect_type": kind, "error": error});
    match kind.as_str() {
        "llm_call" => {
            let p = payload.unwrap_or(&Value::Null);
            let r = result.unwrap_or(&Value::Null);
            let content = llm_answer(r);
            out["llm"] = json!({"provider": s(p.get("provider")), "model": s(p.get("model")),
                "prompt": clamp(&llm_prompt(p), 2400), "response": clamp(&content, 2400),
                "missing_response": content.is_empty(), "usage": llm_usage(r)});
        }
        "tool_calls" => {
            let calls: Vec<Value> = payload
                .and_then(|p| p.get("tool_calls"))
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .take(20)
                        .map(|c| {
                            json!({"name": c.get("name"), "call_id": c.get("call_id"),
                            "arguments": c.get("arguments")})
                        })
                        .collect()
                })
                .unwrap_or_default();
            let results: Vec<Value> = result
                .and_then(|r| r.get("results"))
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .take(20)
                        .map(|r| json!({"call_id": r.get("call_id"), "success": r.get("success"),
                            "error": r.get("error").filter(|e| !e.is_null()).map(|e| clamp(&e.to_string(), 800)),
                            "output": dump(r.get("output"), 50_000)}))
                        .collect()
                })
                .unwrap_or_default();
            out["tools"] = json!({"tool_calls": calls, "results": results});
        }
        "emit_event" => {
            out["event"] = json!({"name": payload.and_then(|p| p.get("name")),
                "payload": dump(payload.and_then(|p| p.get("payload")), 4000)});
        }
        _ => {
            out["payload"] = json!(dump(payload, 1500));
            out["result"] = json!(dump(result, 1500));
        }
    }
    out
}

/// All records when there are 120 or fewer, else the first 30 and the last 90.
fn excerpt(recs: &[Value]) -> Vec<Value> {
    if recs.len() <= 120 {
        return recs.iter().map(slim).collect();
    }
    recs[..30]
        .iter()
        .chain(&recs[recs.len() - 90..])
        .map(slim)
        .collect()
}

/// The chat messages the model sees: user and assistant turns with text, each cut to 12,000 characters.
fn chat_turns(messages: &[Value]) -> Vec<ChatMessage> {
    messages
        .iter()
        .filter_map(|m| {
            let role = m.get("role")?.as_str()?.trim().to_ascii_lowercase();
            let content = m.get("content")?.as_str()?.trim();
            ((role == "user" || role == "assistant") && !content.is_empty())
                .then(|| ChatMessage::new(role, clamp(content, 12_000)))
        })
        .collect()
}

/// Ask an LLM about the run, grounded in its ledger (persist: recorded as abstract.chat).
///
/// The model is given the digest and an excerpt of the run's ledger (and, by default, its descendants') and is
/// told to answer from them only.
#[utoipa::path(post, path = "/api/gateway/runs/{run_id}/chat", tag = "observer",
    params(("run_id" = String, Path)),
    request_body = AskAboutRun,
    responses((status = 200, description = "The model's answer", body = ChatAnswer),
              (status = 400, description = "Blank run id, or the model failed", body = ErrorBody),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn chat(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ChatAnswer>> {
    let AskAboutRun {
        provider,
        model,
        include_subruns,
        messages,
        persist,
    } = AskAboutRun::parse(&headers, &body)?;
    let run = load_run(&st, &run_id)?;
    let rid = run.run_id.clone();
    let (ctx, _) = gather(&st, &run, include_subruns, true).await?;
    let (provider, model) = route(provider, model);
    let context = serde_json::to_string_pretty(&ctx).unwrap_or_default();
    let mut prompt = vec![ChatMessage::new(
        "user",
        format!("RUN_CONTEXT:\n{}", clamp(&context, MAX_CONTEXT_CHARS)),
    )];
    prompt.extend(chat_turns(&messages));
    let answer = ask(&st, &provider, &model, prompt, CHAT_SYSTEM)
        .await
        .map_err(|e| ApiError::bad_request(format!("Failed to generate chat answer: {e}")))?;
    let generated_at = now_seconds();
    if persist {
        let question = messages
            .iter()
            .rev()
            .find_map(|m| {
                (m.get("role").and_then(Value::as_str) == Some("user"))
                    .then(|| m.get("content").and_then(Value::as_str).map(str::trim))
                    .flatten()
                    .filter(|c| !c.is_empty())
            })
            .unwrap_or("");
        let payload = json!({"generated_at": generated_at, "provider": provider, "model": model,
            "question": question, "answer": answer,
            "source": {"run_id": rid, "include_subruns": include_subruns}});
        let key = format!("observer:chat:{generated_at}");
        record_event(&st, &rid, "observer", "abstract.chat", payload, &key)
            .await
            .map_err(|e| ApiError::internal(format!("Failed to persist chat: {e}")))?;
    }
    Ok(Json(ChatAnswer {
        ok: true,
        run_id: rid,
        provider,
        model,
        generated_at,
        answer,
    }))
}

fn max_thread_bytes() -> usize {
    std::env::var("ABSTRACTGATEWAY_MAX_CHAT_THREAD_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_THREAD_BYTES)
}

/// Save a chat thread as an artifact of the run (recorded as abstract.chat.thread).
///
/// The thread becomes a JSON artifact of the run plus an `abstract.chat.thread` record. No model is called;
/// provider and model are labels.
#[utoipa::path(post, path = "/api/gateway/runs/{run_id}/chat_threads", tag = "observer",
    params(("run_id" = String, Path)),
    request_body = SaveChatThread,
    responses((status = 200, description = "The saved thread", body = SavedChatThread),
              (status = 400, description = "Blank run id, or the artifact was refused", body = ErrorBody),
              (status = 404, description = "No such run", body = ErrorBody),
              (status = 413, description = "The thread is over ABSTRACTGATEWAY_MAX_CHAT_THREAD_BYTES, or the \
                                            artifact store's limit", body = ErrorBody),
              (status = 503, description = "The artifact store cannot take writes now", body = ErrorBody)))]
pub async fn chat_threads(
    State(st): State<SharedState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<SavedChatThread>> {
    let SaveChatThread {
        provider,
        model,
        include_subruns,
        messages,
        title,
    } = SaveChatThread::parse(&headers, &body)?;
    let run = load_run(&st, &run_id)?;
    let rid = run.run_id.clone();
    let (provider, model) = route(provider, model);
    let kept: Vec<Value> = messages
        .iter()
        .filter_map(|m| {
            let content = m.get("content")?.as_str()?.trim();
            if content.is_empty() {
                return None;
            }
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or("user");
            let mut out = json!({"role": role, "content": content});
            if let Some(ts) = m
                .get("ts")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                out["ts"] = json!(ts);
            }
            Some(out)
        })
        .collect();
    let title = title
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            kept.iter()
                .find(|m| m["role"] == "user")
                .and_then(|m| m["content"].as_str())
                .map(|c| clamp(&c.replace('\n', " "), 80))
        })
        .filter(|t| !t.is_empty());
    let thread_id = uuid::Uuid::new_v4().to_string();
    let created_at = now_seconds();
    let doc = json!({"schema": "abstract.chat.thread.v0", "thread_id": thread_id, "created_at": created_at,
        "workflow_id": run.workflow_id, "run_id": rid, "provider": provider, "model": model,
        "include_subruns": include_subruns, "title": title, "messages": kept});
    let blob = serde_json::to_vec_pretty(&doc)
        .map_err(|e| ApiError::bad_request(format!("Failed to encode chat thread: {e}")))?;
    let max = max_thread_bytes();
    if blob.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Chat thread too large ({} bytes > {max} bytes)", blob.len()),
        ));
    }
    let sha = super::attachments::sha256_hex(&blob);
    let mut extra = NewArtifact::default();
    for (k, v) in [
        ("kind", "chat_thread".to_string()),
        ("target", "observer".into()),
        ("thread_id", thread_id.clone()),
        ("workflow_id", run.workflow_id.clone()),
        ("source_run_id", rid.clone()),
        ("created_at", created_at.clone()),
        ("provider", provider.clone()),
        ("model", model.clone()),
        ("include_subruns", include_subruns.to_string()),
        ("message_count", kept.len().to_string()),
        ("sha256", sha.clone()),
    ] {
        extra.tags.insert(k.into(), v);
    }
    if let Some(t) = &title {
        extra.tags.insert("title".into(), clamp(t, 140));
    }
    if let Some(s) = &run.session_id {
        extra.tags.insert("session_id".into(), s.clone());
    }
    let meta = super::attachments::store_artifact(
        &st,
        &rid,
        blob,
        "application/json; charset=utf-8",
        extra,
        "chat thread artifact",
    )
    .await?;
    let chat_artifact = ArtifactRef {
        artifact_id: meta.artifact_id,
        content_type: meta.content_type,
        filename: "chat_thread.json".into(),
        sha256: sha,
        size_bytes: meta.size_bytes,
    };
    let payload = json!({"thread_id": thread_id, "created_at": created_at, "workflow_id": run.workflow_id,
        "run_id": rid, "provider": provider, "model": model, "include_subruns": include_subruns,
        "title": title, "message_count": kept.len(), "chat_artifact": chat_artifact});
    let key = format!("observer:chat_thread:{thread_id}");
    record_event(&st, &rid, "observer", "abstract.chat.thread", payload, &key)
        .await
        .map_err(|e| ApiError::internal(format!("Failed to persist chat thread event: {e}")))?;
    Ok(Json(SavedChatThread {
        ok: true,
        run_id: rid,
        workflow_id: run.workflow_id,
        thread_id,
        created_at,
        duplicate: false,
        title,
        message_count: kept.len(),
        chat_artifact,
    }))
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(summary))
        .documented(routes!(chat))
        .documented(routes!(chat_threads))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{excerpt, slim};

    #[test]
    fn slim_llm_records_follow_the_digests_rules() {
        let rec = json!({"node_id": "n", "status": "completed", "started_at": "t0",
            "effect": {"type": "llm_call", "payload": {"provider": "p", "model": "m",
                "messages": [{"role": "user", "content": " first "}, {"role": "user", "content": " last "}]}},
            "result": {"response": "  answer  ", "token_usage": {"input_tokens": 1}}});
        let s = slim(&rec);
        assert_eq!(s["ts"], "t0");
        assert_eq!(s["llm"]["prompt"], "last");
        assert_eq!(s["llm"]["response"], "answer");
        assert_eq!(s["llm"]["missing_response"], false);
        assert_eq!(s["llm"]["usage"], json!({"input_tokens": 1}));
    }

    #[test]
    fn a_long_ledger_is_excerpted_head_and_tail() {
        let recs: Vec<_> = (0..200)
            .map(|i| json!({"node_id": format!("n{i}")}))
            .collect();
        let ex = excerpt(&recs);
        assert_eq!(ex.len(), 120);
        assert_eq!(ex[29]["node_id"], "n29");
        assert_eq!(ex[30]["node_id"], "n110");
        assert_eq!(excerpt(&recs[..120]).len(), 120);
    }
}
