//! `log`: diagnostics, recorded with the node that wrote them.

use serde::Serialize;

use super::super::bindings::log::{Host, Level};
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;

/// A `log` call's request as recorded: `{"level", "message"}`, written into the record without building a map.
#[derive(Serialize)]
struct LogRequest<'a> {
    level: &'a str,
    message: &'a str,
}

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
        let level = match lvl {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        // The live part never runs for a call answered from the ledger, so a replay logs nothing twice; the run
        // id and the message are copied only when debug logging is on.
        let debug = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (self.rec.run_id().to_string(), message.clone()));
        let req = LogRequest {
            level,
            message: &message,
        };
        let _: Result<(), _> = self
            .rec
            .call(HostFn::local("log", "log"), req, async move {
                if let Some((run, message)) = debug {
                    tracing::debug!(run = %run, level = %level, "plugin: {message}");
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::LogRequest;

    /// The record's request is byte for byte what the `{"level", "message"}` object gave (replay compares it).
    #[test]
    fn the_request_is_written_as_the_object_was() {
        for message in [
            "",
            "plain",
            "quote \" and \\ and \n",
            "ünïcödé ✓",
            "\u{0}\u{1f}",
        ] {
            let typed = serde_json::to_vec(&LogRequest {
                level: "warn",
                message,
            })
            .expect("encodes");
            let object =
                serde_json::to_vec(&serde_json::json!({"level": "warn", "message": message}))
                    .expect("encodes");
            assert_eq!(typed, object, "{message:?}");
        }
    }
}
