//! `kg`: the knowledge-graph memory of the calling run (its run, session and the global owner), kept by the host
//! in the gateway's store. The effects are the seed's (crate `abstractgateway-kg`); this module only checks the
//! grant, says who is calling, and records the call.

use abstractgateway_kg::Graph;
use abstractgateway_kg::effects::{self, RunInfo};
use serde_json::{Map, Value, json};

use super::super::bindings::kg::Host;
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::{ErrorCode, denied, error};

/// Largest payload accepted, bytes of JSON (a thousand assertions with their provenance fit).
const MAX_PAYLOAD: usize = 8 << 20;

#[derive(Clone, Copy)]
enum Effect {
    Add,
    Query,
    Resolve,
}

impl Host for NodeCtx {
    async fn add(&mut self, payload: String) -> wasmtime::Result<Result<String, Error>> {
        self.kg_call(Effect::Add, payload).await
    }

    async fn query(&mut self, payload: String) -> wasmtime::Result<Result<String, Error>> {
        self.kg_call(Effect::Query, payload).await
    }

    async fn resolve(&mut self, payload: String) -> wasmtime::Result<Result<String, Error>> {
        self.kg_call(Effect::Resolve, payload).await
    }
}

impl NodeCtx {
    /// One recorded `kg` call. A write is recorded as a remote call (its record is durable before the component
    /// sees the answer); its assertion ids derive from the call's idempotency key, so a call repeated after a
    /// crash stores nothing twice.
    async fn kg_call(
        &mut self,
        effect: Effect,
        payload: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        let parsed: Result<Map<String, Value>, Error> = if payload.len() > MAX_PAYLOAD {
            Err(error(
                ErrorCode::TooLarge,
                format!("kg payloads are at most {MAX_PAYLOAD} bytes"),
            ))
        } else {
            match serde_json::from_str::<Value>(&payload) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(error(
                    ErrorCode::InvalidInput,
                    "a kg payload must be a JSON object",
                )),
            }
        };
        let request = match &parsed {
            Ok(m) => Value::Object(m.clone()),
            Err(_) => json!({"payload_bytes": payload.len()}),
        };
        let (allowed, store, run, shard) = (
            self.grants.kg,
            self.rec.store().cloned(),
            self.rec.run().clone(),
            self.rec.shard(),
        );
        let now = abstractgateway_model::time::format_iso(
            ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.now_ms) * 1_000_000)
                .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH),
        );
        let seed = self.rec.next_key();
        let (function, fun) = match effect {
            Effect::Add => ("add", HostFn::remote("kg", "add")),
            Effect::Query => ("query", HostFn::local("kg", "query")),
            Effect::Resolve => ("resolve", HostFn::local("kg", "resolve")),
        };
        let answer: Result<Value, Error> = self
            .rec
            .call(fun, request, async move {
                if !allowed {
                    return Err(denied("kg"));
                }
                let payload = parsed?;
                let store = store.ok_or_else(|| {
                    error(ErrorCode::Unavailable, "kg is not available outside a run")
                })?;
                tokio::task::spawn_blocking(move || {
                    let info = RunInfo::of(
                        &store,
                        &run.run_id,
                        &run.workflow_id,
                        run.session_id.clone(),
                        run.parent_run_id.clone(),
                    );
                    let graph = Graph::new(store).on_shard(shard);
                    let out = match effect {
                        Effect::Add => effects::assert(&graph, &info, &payload, &now, &seed),
                        Effect::Query => effects::query(&graph, &info, &payload),
                        Effect::Resolve => effects::resolve(&graph, &info, &payload),
                    };
                    out.map_err(|e| error(ErrorCode::InvalidInput, e))
                })
                .await
                .map_err(|e| error(ErrorCode::Internal, format!("kg {function} failed: {e}")))?
            })
            .await?;
        Ok(answer.map(|v| v.to_string()))
    }
}
