//! `log`: diagnostics, recorded with the node that wrote them.

use serde_json::json;

use super::super::bindings::log::{Host, Level};
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;

/// Longest message kept; the rest is cut.
const MAX_MESSAGE: usize = 16 * 1024;

impl Host for NodeCtx {
    async fn log(&mut self, lvl: Level, message: String) -> wasmtime::Result<()> {
        // Past its byte budget a component's messages are dropped unrecorded: logging cannot fill the
        // ledger (the budget is per execution; the host-call budget bounds how many calls are made).
        let left = self.grants.max_log_bytes.saturating_sub(self.log_bytes);
        if left == 0 {
            return Ok(());
        }
        let mut message = message;
        let cap = usize::try_from(left).unwrap_or(usize::MAX).min(MAX_MESSAGE);
        if message.len() > cap {
            let mut cut = cap;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        self.log_bytes += message.len().max(1) as u64;
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
