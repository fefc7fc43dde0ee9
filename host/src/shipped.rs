//! The components this binary carries besides the built-in ones (`crates/sandbox/build.rs` embeds those): the
//! Python component, embedded by `host/build.rs`. Only the binary has them, not the library its tests link.

use abstractgateway::plugins::shipped::{self, Shipped};

include!(concat!(env!("OUT_DIR"), "/python_component.rs"));

/// Hands them to the plugin hosts this process sets up; they are compiled when a flow first needs one.
pub fn register() {
    let components = PYTHON_COMPONENT
        .iter()
        .map(|(bytes, grants)| Shipped {
            descriptor: shipped::PYTHON,
            bytes,
            grants,
        })
        .collect();
    shipped::register(components);
}
