//! `abstractgateway plugin new`: the scaffold it writes, and that the scaffold really builds to a component.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_abstractgateway"))
}

fn repo() -> PathBuf {
    abstractgateway_testkit::repo_root()
}

fn new_plugin(args: &[&str]) -> Output {
    bin()
        .args(["plugin", "new"])
        .args(args)
        .output()
        .expect("binary runs")
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn vendored_scaffold_has_crate_sdk_and_the_hosts_wit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("utf-8 path");
    let out = new_plugin(&["my-plugin", "--dir", dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let root = tmp.path().join("my-plugin");

    let cargo = read(&root.join("Cargo.toml"));
    assert!(cargo.contains("name = \"my-plugin\""), "{cargo}");
    assert!(cargo.contains("abstractgateway-plugin-sdk = { path = \"sdk\" }"));
    assert!(cargo.contains("crate-type = [\"cdylib\", \"rlib\"]"));
    let lib = read(&root.join("src/lib.rs"));
    assert!(lib.contains("NodeType::new(\"my_plugin\")"), "{lib}");
    assert!(lib.contains("export_node!(MyPlugin);"));
    let readme = read(&root.join("README.md"));
    assert!(readme.contains("cargo build --release --target wasm32-wasip2"));
    assert!(readme.contains("\"path\": \"plugins/my_plugin.wasm\""));

    // The vendored WIT is byte-for-byte the host's, and the bindings read it from the vendored place.
    for f in ["types.wit", "host.wit", "node.wit", "worlds.wit"] {
        assert_eq!(
            read(&root.join("sdk/wit").join(f)),
            read(&repo().join("wit").join(f)),
            "{f}"
        );
    }
    let bindings = read(&root.join("sdk/src/bindings.rs"));
    assert_eq!(bindings.matches("path: \"wit\"").count(), 2);
    assert!(!bindings.contains("../../wit"));
    assert!(read(&root.join("sdk/Cargo.toml")).contains("wit-bindgen = \"0.63\""));

    // A second run must not overwrite the author's work.
    let again = new_plugin(&["my-plugin", "--dir", dir]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn bad_names_and_sdk_paths_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("utf-8 path");
    for bad in ["1plugin", "a/b", "../escape", "with space"] {
        let out = new_plugin(&[bad, "--dir", dir]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("invalid plugin name"),
            "{}",
            stderr(&out)
        );
    }
    let out = new_plugin(&["p", "--dir", dir, "--sdk-path", dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no Cargo.toml of abstractgateway-plugin-sdk"));
    assert_eq!(fs::read_dir(tmp.path()).expect("ls").count(), 0);
}

#[test]
fn sdk_path_and_git_dependencies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("utf-8 path");
    let sdk = repo().join("plugins/sdk");
    let out = new_plugin(&[
        "by-path",
        "--dir",
        dir,
        "--sdk-path",
        sdk.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cargo = read(&tmp.path().join("by-path/Cargo.toml"));
    let line = cargo
        .lines()
        .find(|l| l.starts_with("abstractgateway-plugin-sdk"))
        .expect("dependency line");
    let rel = line.split('"').nth(1).expect("quoted path").to_string();
    assert!(rel.starts_with(".."), "relative path expected: {line}");
    let resolved = fs::canonicalize(tmp.path().join("by-path").join(&rel)).expect("path resolves");
    assert_eq!(resolved, fs::canonicalize(&sdk).expect("sdk"));
    assert!(!tmp.path().join("by-path/sdk").exists());

    let out = new_plugin(&[
        "by-git",
        "--dir",
        dir,
        "--sdk-git",
        "https://example.com/abstractgateway.git",
        "--sdk-rev",
        "v0.1.0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(read(&tmp.path().join("by-git/Cargo.toml")).contains(
        "abstractgateway-plugin-sdk = { git = \"https://example.com/abstractgateway.git\", rev = \"v0.1.0\" }"
    ));
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    // Shares the plugins workspace's target dir so the SDK's dependencies compile once.
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", repo().join("plugins/target"))
        .output()
        .expect("cargo runs")
}

/// A real wasm32-wasip2 build of the generated crate (about 10 s with the plugins workspace
/// already built, 1-3 min cold).
#[test]
fn vendored_scaffold_builds_to_a_node_component() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = new_plugin(&["built-plugin", "--dir", tmp.path().to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let root = tmp.path().join("built-plugin");
    // The plugins workspace's lock pins the same dependency versions, so nothing new is resolved.
    fs::copy(repo().join("plugins/Cargo.lock"), root.join("Cargo.lock")).expect("copy lock");

    let _ = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .output();
    let build = cargo(&root, &["build", "--release", "--target", "wasm32-wasip2"]);
    assert!(build.status.success(), "{}", stderr(&build));
    let wasm = fs::read(repo().join("plugins/target/wasm32-wasip2/release/built_plugin.wasm"))
        .expect("component written");
    assert_eq!(&wasm[..8], b"\0asm\x0d\x00\x01\x00", "not a component");
    let export = b"abstractgateway:plugin/node@0.2.0";
    assert!(
        wasm.windows(export.len()).any(|w| w == export),
        "the component does not name the node interface"
    );

    let test = cargo(&root, &["test", "--release"]);
    assert!(test.status.success(), "{}", stderr(&test));
    assert!(String::from_utf8_lossy(&test.stdout).contains("test tests::text_is_required ... ok"));
}
