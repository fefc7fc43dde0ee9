//! Diagnostics kept in the ledger with the node that wrote them.

use crate::bindings::node::abstractgateway::plugin::log as wit;

/// Severity of a log line.
pub use wit::Level;

/// Writes one log line at `level`.
pub fn log(level: Level, message: &str) {
    wit::log(level, message);
}

/// Writes a trace line.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes an info line.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes a warning.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes an error line.
pub fn error(message: &str) {
    log(Level::Error, message);
}
