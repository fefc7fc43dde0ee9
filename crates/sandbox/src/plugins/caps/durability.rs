//! `durability`: stable idempotency keys, waiting durably for an event, client-visible events.

use serde_json::json;

use super::super::bindings::durability::Host;
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::super::sandbox::HostStop;
use super::{ErrorCode, denied, error};

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

    async fn await_event(
        &mut self,
        name: String,
        details: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        if name.is_empty() || name.len() > 256 {
            return Ok(Err(error(
                ErrorCode::InvalidInput,
                "event name must be 1..256 bytes",
            )));
        }
        let details = match serde_json::from_str::<serde_json::Value>(&details) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(serde_json::Value::Null) => Default::default(),
            _ => {
                return Ok(Err(error(
                    ErrorCode::InvalidInput,
                    "await-event details must be a JSON object",
                )));
            }
        };
        if self.rec.replaying() {
            // The event that resumed the run was recorded as this call's answer.
            let answer: Result<String, Error> = self
                .rec
                .call(
                    HostFn::local("durability", "await-event"),
                    json!({"name": name}),
                    async { Err(error(ErrorCode::Internal, "unreachable: replayed call")) },
                )
                .await?;
            if let Ok(text) = &answer
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
            {
                // A person's answer to listed tool calls is what lets `tools.invoke` run them.
                self.note_approval(&details, &v);
            }
            return Ok(answer);
        }
        // Nothing recorded yet: the node stops here and the run waits durably for the event.
        self.suspend = Some((name, details));
        Err(HostStop::Suspended.into())
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
