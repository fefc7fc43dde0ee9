//! `abstractgateway plugin new|build|bindings`: node plugins written in Rust or Python.
//!
//! `plugin new NAME` scaffolds a node-plugin crate that builds to a WebAssembly component. By default the
//! scaffold vendors the plugin SDK and the WIT package this binary was built with (in `NAME/sdk/`), so an
//! author outside this repository gets a crate that builds offline-first and speaks exactly the host's WIT.
//! `--sdk-path` or `--sdk-git` depend on a shared SDK instead. `plugin new NAME --lang python` scaffolds a
//! Python plugin instead (`plugin/python.rs`), which `plugin build` compiles with componentize-py.

mod python;

use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use super::EXIT_USAGE;

pub use python::{
    BuildError, Built, build_python_plugin, new_python_plugin, write_python_bindings,
};

/// The WIT world node plugins are generated and built against, as `package/world@version`. The one place
/// to change when the WIT package (`wit/`) moves to a new version; the embedded WIT files follow the
/// checkout, and a unit test checks they declare this package.
pub const NODE_PLUGIN_WORLD: &str = "abstractgateway:plugin/node-plugin@0.2.0";

/// `(package, world, version)` of [`NODE_PLUGIN_WORLD`]: `("abstractgateway:plugin", "node-plugin", "0.2.0")`.
pub fn node_plugin_world() -> (&'static str, &'static str, &'static str) {
    let (package, rest) = NODE_PLUGIN_WORLD
        .split_once('/')
        .unwrap_or((NODE_PLUGIN_WORLD, ""));
    let (world, version) = rest.split_once('@').unwrap_or((rest, ""));
    (package, world, version)
}

/// The language of a plugin `plugin new` writes.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// A cargo crate using the plugin SDK (`cargo build --target wasm32-wasip2`).
    Rust,
    /// `app.py` compiled with CPython into a component by componentize-py (`plugin build`).
    Python,
}

/// `abstractgateway plugin ...` subcommands.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Create a ready-to-build node plugin in DIR/NAME.
    New {
        /// Plugin name: ASCII letters, digits, `-` or `_`, starting with a letter (at most 64).
        name: String,
        /// Parent directory of the new plugin (default: the current directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The plugin's language.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
        /// Depend on the SDK crate at this path (`plugins/sdk` of an abstractgateway checkout)
        /// instead of vendoring a copy (Rust only).
        #[arg(long, conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Depend on the SDK from this git repository (an abstractgateway repository URL; Rust only).
        #[arg(long)]
        sdk_git: Option<String>,
        /// Git revision, tag or branch for `--sdk-git`.
        #[arg(long, requires = "sdk_git")]
        sdk_rev: Option<String>,
    },
    /// Build a Python plugin directory (`plugin new --lang python`) into DIR/NAME.wasm with componentize-py.
    Build {
        /// The plugin directory: `app.py`, `NAME.grants.json` and `wit/`.
        dir: PathBuf,
        #[command(flatten)]
        tool: ToolArgs,
    },
    /// Write the typed Python bindings of a Python plugin's WIT world into DIR/bindings (for editors and
    /// type checkers; the build generates its own).
    Bindings {
        /// The plugin directory (its `wit/` is read).
        dir: PathBuf,
        #[command(flatten)]
        tool: ToolArgs,
    },
}

/// How `plugin build|bindings` gets Python and componentize-py.
#[derive(Args, Debug, Clone, Default)]
pub struct ToolArgs {
    /// Virtualenv holding componentize-py, created and filled on first use
    /// (default: `abstractgateway/componentize-py` in the user cache directory).
    #[arg(long, env = "ABSTRACTGATEWAY_COMPONENTIZE_VENV")]
    pub venv: Option<PathBuf>,
    /// A componentize-py executable to use as it is (it must be the pinned version) instead of a virtualenv.
    #[arg(long, env = "ABSTRACTGATEWAY_COMPONENTIZE_PY", conflicts_with = "venv")]
    pub componentize_py: Option<PathBuf>,
    /// The Python 3 interpreter that runs the build (and creates the virtualenv).
    #[arg(long, env = "ABSTRACTGATEWAY_PYTHON", default_value = "python3")]
    pub python: PathBuf,
}

/// Where the new crate gets the SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A copy of the SDK and WIT embedded in this binary, written to `NAME/sdk/`.
    Vendored,
    /// A path dependency on an SDK crate directory (written relative to the new crate when possible).
    Path(PathBuf),
    /// A git dependency on an abstractgateway repository.
    Git {
        /// Repository URL.
        url: String,
        /// Revision, tag or branch (`rev = ...` in Cargo.toml).
        rev: Option<String>,
    },
}

/// Why the scaffold could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not usable as a crate, file and node-type name.
    #[error(
        "invalid plugin name {0:?}: use 1-64 ASCII letters, digits, '-' or '_', starting with a letter"
    )]
    InvalidName(String),
    /// The crate directory exists and holds files.
    #[error("{0} already exists and is not an empty directory")]
    Exists(PathBuf),
    /// `--sdk-path` does not point at the SDK crate.
    #[error("--sdk-path {0}: no Cargo.toml of abstractgateway-plugin-sdk there")]
    NotAnSdk(PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs a plugin subcommand.
pub fn run(cmd: PluginCommand) -> ExitCode {
    match cmd {
        PluginCommand::New {
            name,
            dir,
            lang,
            sdk_path,
            sdk_git,
            sdk_rev,
        } => {
            let parent = dir.unwrap_or_else(|| PathBuf::from("."));
            if lang == Lang::Python {
                if sdk_path.is_some() || sdk_git.is_some() {
                    eprintln!("error: --sdk-path and --sdk-git apply to --lang rust only");
                    return ExitCode::from(EXIT_USAGE);
                }
                return match new_python_plugin(&name, &parent) {
                    Ok(created) => {
                        println!("created {}", created.display());
                        println!(
                            "build it: abstractgateway plugin build {}",
                            created.display()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => usage_error(e),
                };
            }
            let sdk = match (sdk_path, sdk_git) {
                (Some(p), _) => SdkSource::Path(p),
                (None, Some(url)) => SdkSource::Git { url, rev: sdk_rev },
                (None, None) => SdkSource::Vendored,
            };
            match new_plugin(&name, &parent, &sdk) {
                Ok(created) => {
                    println!("created {}", created.display());
                    println!(
                        "build it: cd {} && cargo build --release --target wasm32-wasip2",
                        created.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => usage_error(e),
            }
        }
        PluginCommand::Build { dir, tool } => match build_python_plugin(&dir, &tool) {
            Ok(built) => {
                println!(
                    "built {} ({} bytes, sha256 {})",
                    built.path.display(),
                    built.size,
                    built.sha256
                );
                ExitCode::SUCCESS
            }
            Err(e) => build_error(e),
        },
        PluginCommand::Bindings { dir, tool } => match write_python_bindings(&dir, &tool) {
            Ok(out) => {
                println!(
                    "wrote the bindings of {NODE_PLUGIN_WORLD} into {}",
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => build_error(e),
        },
    }
}

fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_USAGE)
}

/// A plugin directory that is not usable exits 2 (usage); a build that ran and failed exits 1.
fn build_error(e: BuildError) -> ExitCode {
    eprintln!("error: {e}");
    if e.is_usage() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::from(1)
    }
}

/// The SDK sources embedded for vendoring: (path inside the SDK crate, contents); the WIT is [`WIT_FILES`].
const SDK_SOURCES: &[(&str, &str)] = &[
    (
        "src/lib.rs",
        include_str!("../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "src/artifacts.rs",
        include_str!("../../../plugins/sdk/src/artifacts.rs"),
    ),
    (
        "src/bindings.rs",
        include_str!("../../../plugins/sdk/src/bindings.rs"),
    ),
    (
        "src/durability.rs",
        include_str!("../../../plugins/sdk/src/durability.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../../plugins/sdk/src/error.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../plugins/sdk/src/http.rs"),
    ),
    (
        "src/image.rs",
        include_str!("../../../plugins/sdk/src/image.rs"),
    ),
    ("src/kg.rs", include_str!("../../../plugins/sdk/src/kg.rs")),
    ("src/kv.rs", include_str!("../../../plugins/sdk/src/kv.rs")),
    (
        "src/llm.rs",
        include_str!("../../../plugins/sdk/src/llm.rs"),
    ),
    (
        "src/log.rs",
        include_str!("../../../plugins/sdk/src/log.rs"),
    ),
    (
        "src/node.rs",
        include_str!("../../../plugins/sdk/src/node.rs"),
    ),
    (
        "src/tool.rs",
        include_str!("../../../plugins/sdk/src/tool.rs"),
    ),
    (
        "src/tools.rs",
        include_str!("../../../plugins/sdk/src/tools.rs"),
    ),
    (
        "src/voice.rs",
        include_str!("../../../plugins/sdk/src/voice.rs"),
    ),
];

/// The host's WIT package (`wit/`), embedded: (file name, contents). Both scaffolds vendor it.
const WIT_FILES: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("host.wit", include_str!("../../../wit/host.wit")),
    ("node.wit", include_str!("../../../wit/node.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

/// The WIT path the SDK uses inside this repository, and the one a vendored copy uses.
const REPO_WIT_PATH: &str = "path: \"../../wit\"";
const VENDORED_WIT_PATH: &str = "path: \"wit\"";

/// Version of the vendored SDK crate (the host's version: they are released together).
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Creates the plugin crate `parent/name`; returns its directory.
pub fn new_plugin(name: &str, parent: &Path, sdk: &SdkSource) -> Result<PathBuf, ScaffoldError> {
    let root = new_root(name, parent)?;
    let dependency = match sdk {
        SdkSource::Vendored => "{ path = \"sdk\" }".to_string(),
        SdkSource::Path(p) => {
            let sdk_dir = checked_sdk_dir(p)?;
            fs::create_dir_all(&root).map_err(io_err(&root))?;
            let crate_dir = fs::canonicalize(&root).map_err(io_err(&root))?;
            let shown = relative_path(&crate_dir, &sdk_dir).unwrap_or(sdk_dir);
            format!("{{ path = {} }}", toml_str(&slashes(&shown)))
        }
        SdkSource::Git { url, rev } => match rev {
            Some(rev) => format!("{{ git = {}, rev = {} }}", toml_str(url), toml_str(rev)),
            None => format!("{{ git = {} }}", toml_str(url)),
        },
    };
    let snake = name.replace('-', "_");
    let mut files: Vec<(String, String)> = vec![
        ("Cargo.toml".into(), cargo_toml(name, &dependency, sdk)),
        ("src/lib.rs".into(), lib_rs(&snake)),
        ("README.md".into(), readme(name, &snake, sdk)),
        (".gitignore".into(), "/target\n".into()),
    ];
    if *sdk == SdkSource::Vendored {
        files.push(("sdk/Cargo.toml".into(), vendored_sdk_toml()));
        for (path, text) in SDK_SOURCES {
            let text = if *path == "src/bindings.rs" {
                text.replace(REPO_WIT_PATH, VENDORED_WIT_PATH)
            } else {
                (*text).to_string()
            };
            files.push((format!("sdk/{path}"), text));
        }
        for (file, text) in WIT_FILES {
            files.push((format!("sdk/wit/{file}"), (*text).to_string()));
        }
    }
    write_files(&root, files)?;
    Ok(root)
}

/// `parent/name` for a new plugin: `name` is checked (it can only name a direct child of `parent`), and the
/// directory must not exist yet or be an empty directory (not a link to one).
fn new_root(name: &str, parent: &Path) -> Result<PathBuf, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::InvalidName(name.to_string()));
    }
    let root = parent.join(name);
    match fs::symlink_metadata(&root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&root)(e)),
        Ok(meta) => {
            let empty =
                meta.is_dir() && fs::read_dir(&root).map_err(io_err(&root))?.next().is_none();
            if !empty {
                return Err(ScaffoldError::Exists(root));
            }
        }
    }
    Ok(root)
}

/// Writes `(path relative to root, contents)` pairs, creating directories as needed.
fn write_files(root: &Path, files: Vec<(String, String)>) -> Result<(), ScaffoldError> {
    for (rel, text) in files {
        let path = root.join(&rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        fs::write(&path, text).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Cargo accepts more, but these names are also valid file stems, node-type names and Rust idents, and
/// can only name a direct child of a directory (no separator, no `.` or `..`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The canonical SDK directory, after checking it holds the SDK crate.
fn checked_sdk_dir(p: &Path) -> Result<PathBuf, ScaffoldError> {
    let manifest = p.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).map_err(|_| ScaffoldError::NotAnSdk(p.into()))?;
    if !text.contains("name = \"abstractgateway-plugin-sdk\"") {
        return Err(ScaffoldError::NotAnSdk(p.into()));
    }
    fs::canonicalize(p).map_err(io_err(p))
}

/// `to` relative to `from` (both absolute and canonical); `None` when they share no root.
fn relative_path(from: &Path, to: &Path) -> Option<PathBuf> {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return None;
    }
    let mut rel = PathBuf::new();
    for _ in common..a.len() {
        rel.push("..");
    }
    for c in &b[common..] {
        rel.push(c);
    }
    Some(rel)
}

fn slashes(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn cargo_toml(name: &str, dependency: &str, sdk: &SdkSource) -> String {
    let members = if *sdk == SdkSource::Vendored {
        "members = [\".\", \"sdk\"]\n"
    } else {
        ""
    };
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
abstractgateway-plugin-sdk = {dependency}

# A workspace of its own, so the crate builds wherever it is placed.
[workspace]
{members}
# Small components (tens of KB instead of MBs): strip drops std's symbol names and DWARF.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"
"#
    )
}

fn vendored_sdk_toml() -> String {
    format!(
        r#"[package]
name = "abstractgateway-plugin-sdk"
description = "Write abstractgateway node and tool plugins (WebAssembly components) in a few lines"
version = "{SDK_VERSION}"
edition = "2024"
license = "MIT"
publish = false

[dependencies]
wit-bindgen = "0.63"
serde_json = "1"
"#
    )
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn lib_rs(snake: &str) -> String {
    let ty = camel(snake);
    format!(
        r#"//! The `{snake}` node type.

use abstractgateway_plugin_sdk::{{Error, Invocation, Node, NodeResult, NodeType, export_node, log, outputs}};

/// The plugin: one type implementing `Node` serves every node type it describes.
pub struct {ty};

impl Node for {ty} {{
    fn describe() -> Vec<NodeType> {{
        vec![
            NodeType::new("{snake}")
                .label("{ty}")
                .description("Upper-cases a text and counts its characters.")
                .input("text", "string")
                .output("text", "string")
                .output("length", "number"),
        ]
    }}

    fn run(inv: Invocation) -> Result<NodeResult, Error> {{
        let text = inv.input_str("text")?;
        log::info(&format!("node {{}} got {{}} bytes", inv.node_id(), text.len()));
        Ok(outputs! {{ "text" => text.to_uppercase(), "length" => text.chars().count() }}.into())
    }}
}}

export_node!({ty});

#[cfg(test)]
mod tests {{
    use super::*;
    use abstractgateway_plugin_sdk::json;

    #[test]
    fn text_is_required() {{
        let inv = Invocation::new("{snake}", "n1", json!({{}}), json!({{}}));
        assert_eq!({ty}::run(inv).unwrap_err().message, "input 'text' is required");
    }}
}}
"#
    )
}

fn readme(name: &str, snake: &str, sdk: &SdkSource) -> String {
    let sdk_note = match sdk {
        SdkSource::Vendored => {
            "`sdk/` is a copy of the plugin SDK and of the host's WIT package (`sdk/wit/`), written by\n\
             `abstractgateway plugin new`; regenerate the crate with a newer host to update it."
        }
        SdkSource::Path(_) => {
            "The SDK comes from a local abstractgateway checkout (a path dependency)."
        }
        SdkSource::Git { .. } => "The SDK comes from an abstractgateway git repository.",
    };
    format!(
        r#"# {name}

An abstractgateway node plugin: a WebAssembly component providing the node type `{snake}`.
{sdk_note}

## Build

```sh
rustup target add wasm32-wasip2
cargo test --release        # unit tests, natively (host calls are not available there)
cargo build --release --target wasm32-wasip2
# -> target/wasm32-wasip2/release/{snake}.wasm (a component: it starts with 00 61 73 6d 0d 00 01 00)
```

## Put it in a bundle

```sh
mkdir -p mybundle/plugins
cp target/wasm32-wasip2/release/{snake}.wasm mybundle/plugins/
sha256sum mybundle/plugins/{snake}.wasm
```

Declare it in `mybundle/manifest.json` with the capabilities it may use (none are granted by default):

```json
"plugins": [
  {{"path": "plugins/{snake}.wasm", "sha256": "<hex from sha256sum>",
   "grants": {{"http": [], "llm": [], "tools": [], "kv": [], "memory_mb": 64, "timeout_ms": 30000}}}}
]
```

and use the node type in a flow: `{{"id": "n1", "type": "{snake}", "data": {{}}, ...}}`. Then pack and
check the bundle with `abstractgateway bundle pack mybundle --out mybundle.flow` and
`abstractgateway bundle verify mybundle.flow`. See the host's `docs/plugins.md` for the full guide.
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["a", "my-plugin", "my_plugin2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "-x", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn relative_paths_and_toml_strings() {
        let rel = relative_path(Path::new("/a/b/c"), Path::new("/a/x/sdk"));
        assert_eq!(rel, Some(PathBuf::from("../../x/sdk")));
        assert_eq!(toml_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(camel("my_cool__plugin"), "MyCoolPlugin");
    }

    #[test]
    fn vendored_bindings_point_at_the_vendored_wit() {
        let bindings = SDK_SOURCES
            .iter()
            .find(|(p, _)| *p == "src/bindings.rs")
            .map(|(_, t)| *t)
            .unwrap_or_default();
        assert_eq!(bindings.matches(REPO_WIT_PATH).count(), 2);
    }
}
