//! Compiled components on disk, keyed by the sha256 of the component and of the engine's configuration,
//! so a restart deserializes in a fraction of a millisecond instead of compiling for seconds.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A component compiled because no compiled form was cached (its first use on this data dir, or a new engine):
/// seconds for a large one, so the host says so.
#[derive(Debug, Clone)]
pub enum CompileEvent {
    /// Compiling `name` (`bytes` long) started.
    Started { name: String, bytes: usize },
    /// It ended after `took`, successfully or not.
    Finished {
        name: String,
        took: Duration,
        ok: bool,
    },
}

type CompileObserver = Box<dyn Fn(&CompileEvent) + Send + Sync>;

static OBSERVER: OnceLock<CompileObserver> = OnceLock::new();

/// Sets what the process does when a component compiles (the CLI shows progress, the server logs a line); the
/// first call wins. Without one, compiles are logged at `info`.
pub fn on_compile(observer: impl Fn(&CompileEvent) + Send + Sync + 'static) {
    let _ = OBSERVER.set(Box::new(observer));
}

fn notify(event: CompileEvent) {
    match OBSERVER.get() {
        Some(o) => o(&event),
        None => tracing::info!(?event, "component compile"),
    }
}

/// The on-disk cache of `.wasm` sources and their compiled `.cwasm`.
pub struct ComponentCache {
    dir: PathBuf,
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ComponentCache {
    /// A cache under `dir` (created on first write).
    pub fn new(dir: &Path) -> Self {
        ComponentCache {
            dir: dir.to_path_buf(),
        }
    }

    /// The component `name` for `bytes` (digest `sha`): from the compiled cache when valid, else compiled (with
    /// [`CompileEvent`]s) and cached.
    pub fn load(
        &self,
        engine: &Engine,
        name: &str,
        sha: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let compiled = self.compiled_path(engine, sha);
        if compiled.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with this exact
            // configuration (the path carries its hash) into a directory only this process writes.
            match unsafe { Component::deserialize_file(engine, &compiled) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!("recompiling {sha}: cached form unusable ({e})"),
            }
        }
        notify(CompileEvent::Started {
            name: name.to_string(),
            bytes: bytes.len(),
        });
        let started = Instant::now();
        let compiled_now = Component::new(engine, bytes);
        notify(CompileEvent::Finished {
            name: name.to_string(),
            took: started.elapsed(),
            ok: compiled_now.is_ok(),
        });
        let component = compiled_now?;
        if let Err(e) = self.store(&compiled, &component.serialize()?) {
            tracing::warn!("cannot cache compiled component {sha}: {e}");
        }
        self.keep_source(sha, bytes);
        Ok(component)
    }

    /// The source of a component loaded before, by digest (runs pinned to an older version replay against it).
    pub fn source(&self, sha: &str) -> Option<Vec<u8>> {
        if !sha.bytes().all(|b| b.is_ascii_hexdigit()) || sha.len() != 64 {
            return None;
        }
        let bytes = std::fs::read(self.dir.join(format!("{sha}.wasm"))).ok()?;
        (sha256_hex(&bytes) == sha).then_some(bytes)
    }

    fn keep_source(&self, sha: &str, bytes: &[u8]) {
        let path = self.dir.join(format!("{sha}.wasm"));
        if !path.exists()
            && let Err(e) = self.store(&path, bytes)
        {
            tracing::warn!("cannot keep component source {sha}: {e}");
        }
    }

    fn compiled_path(&self, engine: &Engine, sha: &str) -> PathBuf {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        let cfg = std::hash::Hasher::finish(&h);
        self.dir.join(format!("{sha}.{cfg:016x}.cwasm"))
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }
}
