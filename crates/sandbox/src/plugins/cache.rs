//! Compiled components on disk, keyed by the sha256 of the component and of the engine's configuration,
//! so a restart deserializes in a fraction of a millisecond instead of compiling for seconds.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

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

    /// The component for `bytes` (digest `sha`): from the compiled cache when valid, else compiled and cached.
    pub fn load(&self, engine: &Engine, sha: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        let compiled = self.compiled_path(engine, sha);
        if compiled.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with this exact
            // configuration (the path carries its hash) into a directory only this process writes.
            match unsafe { Component::deserialize_file(engine, &compiled) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!("recompiling {sha}: cached form unusable ({e})"),
            }
        }
        let component = Component::new(engine, bytes)?;
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
