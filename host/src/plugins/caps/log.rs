//! `log`: diagnostics, recorded with the node that wrote them.

use serde_json::json;

use super::super::bindings::log::{Host, Level};
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;

/// Longest message kept; the rest is cut.
const MAX_MESSAGE: usize = 16 * 1024;

impl Host for NodeCtx {
    async fn log(&mut self, lvl: Level, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let level = match lvl {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        // The live part never runs for a call answered from the ledger, so a replay logs nothing twice; the run
        // id is copied only when debug logging is on.
        let run = tracing::enabled!(tracing::Level::DEBUG).then(|| self.rec.run_id().to_string());
        let req = json!({"level": level, "message": message});
        let _: Result<(), _> = self
            .rec
            .call(HostFn::local("log", "log"), req, async move {
                if let Some(run) = run {
                    tracing::debug!(run = %run, level = %level, "plugin: {message}");
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}
