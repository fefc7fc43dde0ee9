//! Embeds the Python component (`code` nodes, pin expressions) in the `abstractgateway` binary, so a server
//! started from the binary alone runs every node type of the example bundles. `scripts/build-python-plugin.sh`
//! builds it into `target/plugins/` first (both README commands run it); the plugin host compiles it only
//! when a flow first needs it. `AG_NO_PYTHON_COMPONENT=1` builds a binary without it (flows with `code` nodes
//! or pin expressions are then refused unless its plugins dir has the component).

use std::path::PathBuf;

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = manifest.join("../target/plugins");
    let wasm = dir.join("python_code.wasm");
    let grants = dir.join("python_code.grants.json");
    println!("cargo:rerun-if-env-changed=AG_NO_PYTHON_COMPONENT");
    println!("cargo:rerun-if-changed={}", wasm.display());
    println!("cargo:rerun-if-changed={}", grants.display());
    let code = if std::env::var_os("AG_NO_PYTHON_COMPONENT").is_some_and(|v| v != "0") {
        "None".to_string()
    } else {
        let grants = std::fs::read_to_string(&grants).unwrap_or_else(|_| {
            panic!(
                "{} is missing: the binary ships the Python component; build it first with \
                 scripts/build-python-plugin.sh, or set AG_NO_PYTHON_COMPONENT=1 to build a binary without it",
                grants.display()
            )
        });
        if !wasm.is_file() {
            panic!(
                "{} is missing: the binary ships the Python component; build it first with \
                 scripts/build-python-plugin.sh, or set AG_NO_PYTHON_COMPONENT=1 to build a binary without it",
                wasm.display()
            );
        }
        format!(
            "Some((include_bytes!({:?}), {grants:?}))",
            wasm.display().to_string()
        )
    };
    std::fs::write(
        out.join("python_component.rs"),
        format!(
            "/// The Python component and its grants (JSON), unless built with AG_NO_PYTHON_COMPONENT.\n\
             pub static PYTHON_COMPONENT: Option<(&[u8], &str)> = {code};\n"
        ),
    )
    .expect("cannot write python_component.rs");
}
