//! `durability`: stable idempotency keys, waiting durably for an event, client-visible events.

use serde_json::json;
use wasmtime::format_err as anyhow;

use super::super::bindings::durability::Host;
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::{ErrorCode, error};

/// What the component sees when it is suspended: it never returns into the component.
pub const SUSPENDED: &str = "suspended: waiting for an event";

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
        got.map_err(|e| anyhow!(e.message))
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
            return self
                .rec
                .call(
                    HostFn::local("durability", "await-event"),
                    json!({"name": name}),
                    async { Err(error(ErrorCode::Internal, "unreachable: replayed call")) },
                )
                .await;
        }
        // Nothing recorded yet: the node stops here and the run waits durably for the event.
        self.suspend = Some((name, details));
        Err(anyhow!(SUSPENDED))
    }

    async fn emit(&mut self, name: String, payload: String) -> wasmtime::Result<()> {
        let payload: serde_json::Value =
            serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload));
        let _: Result<(), Error> = self
            .rec
            .call(
                HostFn::remote("durability", "emit"),
                json!({"name": name, "payload": payload}),
                async { Ok(()) },
            )
            .await?;
        Ok(())
    }
}
