//! Python node plugins: the `plugin new NAME --lang python` scaffold, and `plugin build|bindings`.
//!
//! A Python plugin directory holds `app.py` (the `node` export of [`NODE_PLUGIN_WORLD`], typed by the
//! bindings componentize-py generates from the WIT), `NAME.grants.json` (the grants it asks for, in the format
//! of a bundle manifest's `grants` and of a plugins-dir sidecar) and `wit/` (the host's WIT package it was
//! generated against). `plugin build` runs `scripts/componentize.py`, embedded here: the same helper builds the
//! built-in Python component, so the componentize-py version, its virtualenv and the component checks live
//! in one place. The result, `NAME.wasm`, is an ordinary component: it runs in the same sandbox as a Rust
//! one, with only its grants.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    NODE_PLUGIN_WORLD, ScaffoldError, ToolArgs, WIT_FILES, camel, new_root, node_plugin_world,
    valid_name, write_files,
};
use crate::plugins::Grants;

/// The componentize-py helper, run with `python -c`.
const HELPER: &str = include_str!("../../../../scripts/componentize.py");

const APP_PY: &str = include_str!("templates/python/app.py");
const README_MD: &str = include_str!("templates/python/README.md");
const PYPROJECT_TOML: &str = include_str!("templates/python/pyproject.toml");
const GRANTS_JSON: &str = include_str!("templates/python/grants.json");
const GITIGNORE: &str = include_str!("templates/python/gitignore");

/// The module componentize-py builds: `app.py`, which defines `class Node`.
const APP_MODULE: &str = "app";
/// `NAME` + this is the grants file; its stem names the plugin and its component.
const GRANTS_SUFFIX: &str = ".grants.json";
/// Where the scaffold puts the WIT package, inside the plugin directory.
const WIT_DIR: &str = "wit";
/// Where `plugin bindings` writes, inside the plugin directory.
const BINDINGS_DIR: &str = "bindings";
/// Largest grants or WIT file read (they are a few KB).
const MAX_TEXT_BYTES: u64 = 1 << 20;

/// Creates the Python plugin directory `parent/name`; returns it.
pub fn new_python_plugin(name: &str, parent: &Path) -> Result<PathBuf, ScaffoldError> {
    let root = new_root(name, parent)?;
    let snake = name.replace('-', "_");
    let mut files: Vec<(String, String)> = vec![
        ("app.py".into(), render(APP_PY, name, &snake)),
        (
            format!("{name}{GRANTS_SUFFIX}"),
            render(GRANTS_JSON, name, &snake),
        ),
        ("README.md".into(), render(README_MD, name, &snake)),
        (
            "pyproject.toml".into(),
            render(PYPROJECT_TOML, name, &snake),
        ),
        (".gitignore".into(), GITIGNORE.into()),
    ];
    for (file, text) in WIT_FILES {
        files.push((format!("{WIT_DIR}/{file}"), (*text).to_string()));
    }
    write_files(&root, files)?;
    Ok(root)
}

/// A template with its `{{...}}` placeholders filled in (`name` is a checked plugin name: nothing to escape).
fn render(template: &str, name: &str, snake: &str) -> String {
    let (package, world, version) = node_plugin_world();
    template
        .replace("{{name}}", name)
        .replace("{{snake}}", snake)
        .replace("{{label}}", &camel(snake))
        .replace("{{world}}", NODE_PLUGIN_WORLD)
        .replace("{{world_name}}", world)
        .replace("{{wit_package}}", &format!("{package}@{version}"))
}

/// Why `plugin build` or `plugin bindings` failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The path is not a directory.
    #[error("{0} is not a directory")]
    NotADir(PathBuf),
    /// A Rust plugin crate was given.
    #[error(
        "{0} is a Rust plugin crate: build it there with `cargo build --release --target wasm32-wasip2`"
    )]
    RustCrate(PathBuf),
    /// No `app.py`.
    #[error(
        "{0} has no app.py, so it is not a Python plugin directory \
         (`abstractgateway plugin new NAME --lang python` creates one)"
    )]
    NoApp(PathBuf),
    /// Not exactly one `NAME.grants.json`.
    #[error(
        "{dir}: expected exactly one NAME{GRANTS_SUFFIX}, which names the plugin (found {found})"
    )]
    GrantsFile {
        /// The plugin directory.
        dir: PathBuf,
        /// The grants files found.
        found: String,
    },
    /// The grants file's stem is not a plugin name.
    #[error(
        "invalid plugin name {0:?} (from its grants file): use 1-64 ASCII letters, digits, '-' or '_', \
         starting with a letter"
    )]
    InvalidName(String),
    /// The grants file does not parse or asks for what no plugin can have.
    #[error("{path}: {message}")]
    Grants {
        /// The grants file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No WIT package in `wit/`.
    #[error("{0}: no WIT package there (`plugin new` writes the host's into the plugin's wit/)")]
    NoWit(PathBuf),
    /// The plugin's WIT is another version than the one this binary builds for.
    #[error(
        "{path} declares package {found}, but this abstractgateway builds node plugins for {expected}: \
         scaffold a new plugin with `abstractgateway plugin new NAME --lang python` and move your code over"
    )]
    WitVersion {
        /// The WIT file.
        path: PathBuf,
        /// Its package.
        found: String,
        /// [`NODE_PLUGIN_WORLD`]'s package.
        expected: String,
    },
    /// Python could not be started.
    #[error(
        "cannot run {python}: {source} (the build needs Python 3 with the venv module: install python3, or \
         name an interpreter with --python or ABSTRACTGATEWAY_PYTHON)"
    )]
    NoPython {
        /// The interpreter asked for.
        python: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// componentize-py (or its installation) failed; the helper printed why.
    #[error("{0} failed (the reason is above)")]
    Failed(String),
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl BuildError {
    /// True when the directory given is unusable (a usage error), false when a build ran and failed.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            BuildError::NoPython { .. } | BuildError::Failed(_) | BuildError::Io { .. }
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A component `plugin build` wrote.
#[derive(Debug, Clone)]
pub struct Built {
    /// The plugin's name (the stem of its grants file).
    pub name: String,
    /// `DIR/NAME.wasm`.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its lower-case hex sha256 (what a bundle manifest declares).
    pub sha256: String,
    /// The grants it asks for, checked.
    pub grants: Grants,
}

/// Builds the Python plugin in `dir` into `dir/NAME.wasm`.
pub fn build_python_plugin(dir: &Path, tool: &ToolArgs) -> Result<Built, BuildError> {
    checked_dir(dir)?;
    if !dir.join("app.py").is_file() {
        return Err(if dir.join("Cargo.toml").is_file() {
            BuildError::RustCrate(dir.into())
        } else {
            BuildError::NoApp(dir.into())
        });
    }
    let name = plugin_name(dir)?;
    let grants_path = dir.join(format!("{name}{GRANTS_SUFFIX}"));
    let grants = read_grants(&grants_path)?;
    let wit = checked_wit(dir)?;
    let out = dir.join(format!("{name}.wasm"));
    let args: Vec<&std::ffi::OsStr> = vec![
        "componentize".as_ref(),
        "--wit".as_ref(),
        wit.as_os_str(),
        "--world".as_ref(),
        NODE_PLUGIN_WORLD.as_ref(),
        "--app-dir".as_ref(),
        dir.as_os_str(),
        "--module".as_ref(),
        APP_MODULE.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    run_helper(tool, &args, &format!("building {}", dir.display()))?;
    let bytes = fs::read(&out).map_err(io_err(&out))?;
    Ok(Built {
        name,
        size: bytes.len() as u64,
        sha256: crate::bundle::sha256_hex(&bytes),
        path: out,
        grants,
    })
}

/// Writes the typed Python bindings of the plugin's WIT world into `dir/bindings`; returns that directory.
pub fn write_python_bindings(dir: &Path, tool: &ToolArgs) -> Result<PathBuf, BuildError> {
    checked_dir(dir)?;
    let wit = checked_wit(dir)?;
    let out = dir.join(BINDINGS_DIR);
    let args: Vec<&std::ffi::OsStr> = vec![
        "bindings".as_ref(),
        "--wit".as_ref(),
        wit.as_os_str(),
        "--world".as_ref(),
        NODE_PLUGIN_WORLD.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    run_helper(tool, &args, "generating the bindings")?;
    Ok(out)
}

fn checked_dir(dir: &Path) -> Result<(), BuildError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(BuildError::NotADir(dir.into()))
    }
}

/// The plugin's name: the stem of the one `NAME.grants.json` in `dir`, checked like `plugin new` checks it.
fn plugin_name(dir: &Path) -> Result<String, BuildError> {
    let mut found: Vec<String> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let file = entry.file_name();
        if let Some(stem) = file.to_str().and_then(|f| f.strip_suffix(GRANTS_SUFFIX))
            && entry.path().is_file()
        {
            found.push(stem.to_string());
        }
    }
    found.sort();
    match found.as_slice() {
        [one] if valid_name(one) => Ok(one.clone()),
        [one] => Err(BuildError::InvalidName(one.clone())),
        _ => Err(BuildError::GrantsFile {
            dir: dir.into(),
            found: if found.is_empty() {
                "none".into()
            } else {
                found
                    .iter()
                    .map(|n| format!("{n}{GRANTS_SUFFIX}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
    }
}

/// Reads at most [`MAX_TEXT_BYTES`] of a text file.
fn read_text(path: &Path) -> Result<String, BuildError> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    let mut text = String::new();
    file.take(MAX_TEXT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io_err(path))?;
    if text.len() as u64 > MAX_TEXT_BYTES {
        return Err(BuildError::Io {
            path: path.into(),
            source: std::io::Error::other(format!("larger than {MAX_TEXT_BYTES} bytes")),
        });
    }
    Ok(text)
}

/// The grants file, checked with the parser the plugin host uses for bundle and plugins-dir grants.
fn read_grants(path: &Path) -> Result<Grants, BuildError> {
    let text = read_text(path)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| BuildError::Grants {
        path: path.into(),
        message: format!("not valid JSON: {e}"),
    })?;
    Grants::parse(&value).map_err(|e| BuildError::Grants {
        path: path.into(),
        message: e.to_string(),
    })
}

/// `dir/wit`, after checking every `package` declaration of its `.wit` files is [`NODE_PLUGIN_WORLD`]'s.
fn checked_wit(dir: &Path) -> Result<PathBuf, BuildError> {
    let wit = dir.join(WIT_DIR);
    let (package, _, version) = node_plugin_world();
    let expected = format!("{package}@{version}");
    let entries = fs::read_dir(&wit).map_err(|_| BuildError::NoWit(wit.clone()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wit") && p.is_file())
        .collect();
    files.sort();
    let mut declared = false;
    for path in files {
        let text = read_text(&path)?;
        if let Some(found) = package_of(&text) {
            if found != expected {
                return Err(BuildError::WitVersion {
                    path,
                    found: found.to_string(),
                    expected,
                });
            }
            declared = true;
        }
    }
    if declared {
        Ok(wit)
    } else {
        Err(BuildError::NoWit(wit))
    }
}

/// The `package a:b@v;` a WIT file declares, if any.
fn package_of(wit: &str) -> Option<&str> {
    wit.lines().find_map(|line| {
        line.trim()
            .strip_prefix("package ")
            .map(|rest| rest.trim().trim_end_matches(';').trim())
    })
}

/// Runs the embedded helper with the tool options and `args`; `what` names the step in errors.
fn run_helper(tool: &ToolArgs, args: &[&std::ffi::OsStr], what: &str) -> Result<(), BuildError> {
    let mut cmd = Command::new(&tool.python);
    cmd.arg("-c").arg(HELPER);
    if let Some(exe) = &tool.componentize_py {
        cmd.arg("--componentize-py").arg(exe);
    } else if let Some(venv) = &tool.venv {
        cmd.arg("--venv").arg(venv);
    }
    cmd.args(args);
    let status = cmd.status().map_err(|source| BuildError::NoPython {
        python: tool.python.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed(what.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_in() {
        for t in [APP_PY, README_MD, PYPROJECT_TOML, GRANTS_JSON] {
            let out = render(t, "my-plugin", "my_plugin");
            assert!(!out.contains("{{"), "{out}");
        }
        let app = render(APP_PY, "my-plugin", "my_plugin");
        assert!(app.contains("NODE_TYPE = \"my_plugin\""));
        assert!(app.contains("label=\"MyPlugin\""));
        assert!(render(README_MD, "p", "p").contains(NODE_PLUGIN_WORLD));
    }

    #[test]
    fn the_grants_template_is_valid_grants() {
        let v: serde_json::Value =
            serde_json::from_str(&render(GRANTS_JSON, "p", "p")).expect("JSON");
        assert_eq!(
            Grants::parse(&v).map(|g| g.memory_mb).ok(),
            Some(Grants::default().memory_mb)
        );
    }

    #[test]
    fn package_declarations() {
        assert_eq!(
            package_of("// x\npackage abstractgateway:plugin@0.1.0;\n"),
            Some("abstractgateway:plugin@0.1.0")
        );
        assert_eq!(package_of("interface x {}"), None);
    }

    /// The world constant follows the WIT this binary embeds: moving `wit/` to another version fails
    /// here until `NODE_PLUGIN_WORLD` names it.
    #[test]
    fn the_world_constant_matches_the_embedded_wit() {
        let (package, world, version) = node_plugin_world();
        let expected = format!("{package}@{version}");
        for (file, text) in WIT_FILES {
            assert_eq!(package_of(text), Some(expected.as_str()), "{file}");
        }
        let worlds = WIT_FILES
            .iter()
            .find(|(f, _)| *f == "worlds.wit")
            .map(|(_, t)| *t)
            .unwrap_or_default();
        assert!(worlds.contains(&format!("world {world} {{")), "{worlds}");
    }
}
