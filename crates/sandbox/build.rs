//! Builds the built-in plugin components (`plugins/builtin/*`, `plugins/nodes/*`) for wasm32-wasip2 and
//! embeds them in the binary, each with its `grants.json`. Set `AG_NO_BUILTIN_PLUGINS=1` to skip (the
//! binary then ships none; plugins still load from a plugins dir).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let plugins = manifest.join("../../plugins");
    println!("cargo:rerun-if-env-changed=AG_NO_BUILTIN_PLUGINS");
    for p in ["Cargo.toml", "Cargo.lock", "sdk", "builtin", "nodes"] {
        println!("cargo:rerun-if-changed={}", plugins.join(p).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("../../wit").display()
    );
    let crates = if std::env::var_os("AG_NO_BUILTIN_PLUGINS").is_some() {
        Vec::new()
    } else {
        builtin_crates(&plugins)
    };
    let mut entries = String::new();
    if !crates.is_empty() {
        let target = out.join("wasm");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&plugins)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
            .arg(&target);
        for (name, _) in &crates {
            cmd.args(["-p", name]);
        }
        // The host build's own settings must not leak into the guest build.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            cmd.env_remove(var);
        }
        let status = cmd
            .status()
            .expect("cannot run cargo to build the built-in plugins");
        if !status.success() {
            panic!(
                "building the built-in plugins failed (is the wasm32-wasip2 target installed? \
                 `rustup target add wasm32-wasip2`); set AG_NO_BUILTIN_PLUGINS=1 to build without them"
            );
        }
        for (name, dir) in &crates {
            let file = name.replace('-', "_");
            let wasm = target.join(format!("wasm32-wasip2/release/{file}.wasm"));
            let grants =
                std::fs::read_to_string(dir.join("grants.json")).unwrap_or_else(|_| "{}".into());
            entries.push_str(&format!(
                "    ({file:?}, include_bytes!({:?}), {grants:?}),\n",
                wasm.display().to_string()
            ));
        }
    }
    std::fs::write(
        out.join("builtin_plugins.rs"),
        format!("/// `(name, component, grants JSON)` of every built-in plugin.\npub static COMPONENTS: &[(&str, &[u8], &str)] = &[\n{entries}];\n"),
    )
    .expect("cannot write builtin_plugins.rs");
}

/// `(package name, dir)` of every crate under `plugins/builtin` and `plugins/nodes`.
fn builtin_crates(plugins: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for group in ["builtin", "nodes"] {
        let Ok(entries) = std::fs::read_dir(plugins.join(group)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for dir in dirs {
            let Ok(toml) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
                continue;
            };
            let name = toml.lines().find_map(|l| {
                l.trim().strip_prefix("name").map(|r| {
                    r.trim_start_matches([' ', '='])
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
            });
            if let Some(name) = name {
                out.push((name, dir));
            }
        }
    }
    out
}
