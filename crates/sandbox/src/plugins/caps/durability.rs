//! `durability`: stable idempotency keys, waiting durably for an event, client-visible events.

use serde_json::json;

use super::super::bindings::durability::{Host, Wait};
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::super::sandbox::HostStop;
use super::{ErrorCode, denied, error};
use crate::engine::{PluginWait, WaitKind};
use crate::run::Obj;

/// A JSON object from its text (empty text and `null` are an empty object); `None` for anything else.
pub(crate) fn json_object(text: &str) -> Option<Obj> {
    if text.trim().is_empty() {
        return Some(Obj::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        Ok(serde_json::Value::Null) => Some(Obj::new()),
        _ => None,
    }
}

impl NodeCtx {
    /// Waits durably for what `wait` names (any contract version's wait comes here): on replay the
    /// payload that resumed the run is this call's recorded answer; otherwise the node stops here and the run
    /// waits.
    pub(crate) async fn await_wait(
        &mut self,
        wait: PluginWait,
    ) -> wasmtime::Result<Result<String, Error>> {
        if wait.name.is_empty() || wait.name.len() > 256 {
            return Ok(Err(error(
                ErrorCode::InvalidInput,
                "event name must be 1..256 bytes",
            )));
        }
        if self.rec.replaying() {
            // The event that resumed the run was recorded as this call's answer (under the name every
            // contract version shares: the ledger keeps one label for one durable operation).
            let answer: Result<String, Error> = self
                .rec
                .call(
                    HostFn::local("durability", "await-event"),
                    json!({"name": wait.name}),
                    async { Err(error(ErrorCode::Internal, "unreachable: replayed call")) },
                )
                .await?;
            if let Ok(text) = &answer
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
            {
                // A person's answer to listed tool calls is what lets `tools.invoke` run them.
                self.note_approval(&wait.details, &v);
            }
            return Ok(answer);
        }
        // Nothing recorded yet: the node stops here and the run waits durably.
        self.suspend = Some(wait);
        Err(HostStop::Suspended.into())
    }
}

impl Host for NodeCtx {
    async fn idempotency_key(&mut self) -> wasmtime::Result<String> {
        let key = self.rec.next_key();
        let got: Result<String, Error> = self
            .rec
            .call(
                HostFn::local("durability", "idempotency-key"),
                json!({}),
                async move { Ok(key) },
            )
            .await?;
        got.map_err(|e| HostStop::Failed(e.message).into())
    }

    async fn await_(&mut self, w: Wait) -> wasmtime::Result<Result<String, Error>> {
        let (kind, req) = match w {
            Wait::User(r) => (WaitKind::User, r),
            Wait::Key(r) => (WaitKind::Key, r),
            Wait::Event(r) => (WaitKind::Event, r),
        };
        let details = match json_object(&req.details) {
            Some(d) => d,
            None => {
                return Ok(Err(error(
                    ErrorCode::InvalidInput,
                    "wait details must be a JSON object",
                )));
            }
        };
        self.await_wait(PluginWait {
            kind,
            name: req.name,
            prompt: req.prompt,
            choices: req
                .choices
                .map(|c| c.into_iter().map(serde_json::Value::String).collect()),
            details,
        })
        .await
    }

    async fn emit(&mut self, name: String, payload: String) -> wasmtime::Result<()> {
        // Refusals are dropped like the event itself: `emit` has no result for the component to read,
        // and a refused emit is recorded, so the run's ledger shows it.
        let refusal = if !self.grants.events {
            Some(denied("events (durability.emit)"))
        } else if payload.len() as u64 > self.grants.max_emit_bytes || name.len() > 256 {
            Some(error(
                ErrorCode::TooLarge,
                format!(
                    "emit payloads are at most {} bytes and names 256 bytes (got {} and {})",
                    self.grants.max_emit_bytes,
                    payload.len(),
                    name.len()
                ),
            ))
        } else {
            None
        };
        let request = match &refusal {
            Some(_) => {
                json!({"name": name.chars().take(256).collect::<String>(), "payload_len": payload.len()})
            }
            None => {
                let payload: serde_json::Value =
                    serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload));
                json!({"name": name, "payload": payload})
            }
        };
        let _: Result<(), Error> = self
            .rec
            .call(HostFn::remote("durability", "emit"), request, async move {
                match refusal {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            })
            .await?;
        Ok(())
    }
}
