//! Reading a bundle from a `.flow` zip, from upload bytes, or from an unpacked directory.
//!
//! Hostile input is refused before any content is used: unsafe entry names, symlinks, duplicates,
//! encryption, exotic compression, too many entries, and decompression bombs. Sizes are counted on
//! the bytes actually produced by the decompressor, never taken from the headers.
//!
//! Digests: for a zip (file or upload) the sha256 of its bytes. For a directory, the sha256 of
//! the files the reader uses (`manifest.json`, every `manifest.flows` and `manifest.plugins` path), each encoded as
//! `relpath UTF-8 bytes, 0x00, u64 big-endian length, content`, in byte order of relpath.

use std::collections::HashSet;
use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::{CompressionMethod, ZipArchive};

use super::error::BundleError;
use super::manifest::{Manifest, check_relpath};
use super::model::{Bundle, BundleSource};
use super::plugin::PluginDecl;

/// Name of the manifest inside a bundle.
pub const MANIFEST_NAME: &str = "manifest.json";

/// Resource limits applied while reading a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most entries a zip may hold.
    pub max_entries: usize,
    /// Most bytes all entries together may decompress to (also bounds a directory's files).
    pub max_total_bytes: u64,
    /// Most an entry may expand relative to its compressed size.
    pub max_ratio: u64,
    /// Entries producing at most this many bytes are exempt from the ratio rule: small, very
    /// repetitive JSON files compress legitimately well, and their size cannot hurt.
    pub ratio_exempt_bytes: u64,
    /// Most bytes one `manifest.plugins` file may hold (it also counts towards `max_total_bytes`).
    pub max_plugin_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_total_bytes: 256 * 1024 * 1024,
            max_ratio: 200,
            ratio_exempt_bytes: 1024 * 1024,
            max_plugin_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Reads a bundle from a `.flow` zip file or an unpacked bundle directory.
pub fn read_bundle(path: &Path, limits: &Limits) -> Result<Bundle, BundleError> {
    let meta = fs::metadata(path).map_err(|e| BundleError::io(path, e))?;
    if meta.is_dir() {
        return read_dir_bundle(path, limits);
    }
    // A zip cannot need much more room than what it may decompress to; refuse giant files unread.
    let max_file = limits.max_total_bytes.saturating_mul(2).max(1024 * 1024);
    if meta.len() > max_file {
        return Err(BundleError::Refused(format!(
            "bundle file is {} bytes (limit {max_file})",
            meta.len()
        )));
    }
    let bytes = fs::read(path).map_err(|e| BundleError::io(path, e))?;
    let (manifest, files, plugins) = read_zip(&bytes, limits)?;
    let mut bundle = Bundle::assemble(
        manifest,
        sha256_hex(&bytes),
        BundleSource::File(path.to_path_buf()),
        files,
    )?;
    bundle.plugins = plugins;
    Ok(bundle)
}

/// Reads a bundle from `.flow` bytes (an upload); the source is [`BundleSource::Upload`].
pub fn read_bundle_bytes(bytes: &[u8], limits: &Limits) -> Result<Bundle, BundleError> {
    let (manifest, files, plugins) = read_zip(bytes, limits)?;
    let mut bundle = Bundle::assemble(manifest, sha256_hex(bytes), BundleSource::Upload, files)?;
    bundle.plugins = plugins;
    Ok(bundle)
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `(flow_id, relpath, bytes)` of every `manifest.flows` file, in manifest order.
type FlowFiles = Vec<(String, String, Vec<u8>)>;

/// Every `manifest.plugins` declaration with its file's bytes, in manifest order.
type PluginFiles = Vec<(PluginDecl, Vec<u8>)>;

/// Running decompression budget shared by all entries of one bundle.
struct Budget<'a> {
    limits: &'a Limits,
    used: u64,
}

impl Budget<'_> {
    fn remaining(&self) -> u64 {
        self.limits.max_total_bytes.saturating_sub(self.used)
    }

    fn total_exceeded(&self, name: &str) -> BundleError {
        BundleError::Refused(format!(
            "content exceeds {} bytes when decompressed (reached at \"{name}\")",
            self.limits.max_total_bytes
        ))
    }

    fn plugin_too_large(&self, name: &str) -> BundleError {
        BundleError::Refused(format!(
            "plugin file \"{name}\" is larger than {} bytes (the per-plugin limit)",
            self.limits.max_plugin_bytes
        ))
    }

    /// Reads `reader` to the end, refusing it as soon as it passes a limit; `keep` retains the bytes.
    /// `plugin` applies the per-plugin file cap on top of the shared budget.
    fn consume(
        &mut self,
        reader: impl Read,
        name: &str,
        compressed: Option<u64>,
        plugin: bool,
        keep: bool,
    ) -> Result<Vec<u8>, BundleError> {
        let remaining = self.remaining();
        let ratio_cap = compressed.map(|c| {
            c.saturating_mul(self.limits.max_ratio)
                .max(self.limits.ratio_exempt_bytes)
        });
        let shared_cap = ratio_cap.map_or(remaining, |r| r.min(remaining));
        let plugin_cap = plugin.then_some(self.limits.max_plugin_bytes);
        let cap = plugin_cap.map_or(shared_cap, |p| p.min(shared_cap));
        let mut limited = reader.take(cap.saturating_add(1));
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut count: u64 = 0;
        loop {
            let n = limited
                .read(&mut buf)
                .map_err(|e| BundleError::Zip(format!("cannot read \"{name}\": {e}")))?;
            if n == 0 {
                break;
            }
            count += n as u64;
            if count > cap {
                if plugin_cap == Some(cap) {
                    return Err(self.plugin_too_large(name));
                }
                return Err(match (compressed, ratio_cap) {
                    (Some(c), Some(r)) if r < remaining => BundleError::Refused(format!(
                        "zip entry \"{name}\" expands more than {}x its compressed size of {c} bytes",
                        self.limits.max_ratio
                    )),
                    _ => self.total_exceeded(name),
                });
            }
            if keep {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        self.used += count;
        Ok(kept)
    }
}

/// Validates the zip structure, then the manifest, then reads the flows and plugins under the limits.
fn read_zip(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(Manifest, FlowFiles, PluginFiles), BundleError> {
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| BundleError::Zip(e.to_string()))?;
    if archive.has_duplicate_names() {
        return Err(BundleError::Refused("zip has duplicate entry names".into()));
    }
    if archive.len() > limits.max_entries {
        return Err(BundleError::Refused(format!(
            "zip has {} entries (limit {})",
            archive.len(),
            limits.max_entries
        )));
    }
    let names = check_entries(&archive)?;

    let mut budget = Budget { limits, used: 0 };
    let manifest_idx = names
        .iter()
        .position(|n| n == MANIFEST_NAME)
        .ok_or_else(|| BundleError::Missing(format!("{MANIFEST_NAME} not found in bundle")))?;
    let manifest_bytes = read_entry(
        &mut archive,
        manifest_idx,
        &names,
        &mut budget,
        bytes,
        false,
        true,
    )?;
    let manifest = Manifest::from_json_bytes(&manifest_bytes)?;

    // Every other entry is decompressed (and counted) so a bomb cannot hide in an unused file.
    let mut contents: Vec<Option<Vec<u8>>> = vec![None; names.len()];
    let plugin_paths: HashSet<&str> = manifest.plugins.iter().map(|p| p.path.as_str()).collect();
    let wanted: HashSet<&str> = manifest.flows.iter().map(|(_, p)| p).collect();
    for i in (0..names.len()).filter(|&i| i != manifest_idx) {
        let plugin = plugin_paths.contains(names[i].as_str());
        let keep = plugin || wanted.contains(names[i].as_str());
        let data = read_entry(&mut archive, i, &names, &mut budget, bytes, plugin, keep)?;
        if keep {
            contents[i] = Some(data);
        }
    }

    let mut files = Vec::with_capacity(manifest.flows.len());
    for (flow_id, path) in manifest.flows.iter() {
        let data = if path == MANIFEST_NAME {
            Some(manifest_bytes.clone())
        } else {
            names
                .iter()
                .position(|n| n == path)
                .and_then(|i| contents[i].clone())
        };
        let data = data.ok_or_else(|| {
            BundleError::Missing(format!(
                "manifest.flows[\"{flow_id}\"]: file \"{path}\" not found in bundle"
            ))
        })?;
        files.push((flow_id.to_string(), path.to_string(), data));
    }

    let mut plugins = Vec::with_capacity(manifest.plugins.len());
    for (i, decl) in manifest.plugins.iter().enumerate() {
        let data = names
            .iter()
            .position(|n| *n == decl.path)
            .and_then(|j| contents[j].clone())
            .ok_or_else(|| missing_plugin(i, decl, "bundle"))?;
        plugins.push((decl.clone(), data));
    }
    Ok((manifest, files, plugins))
}

fn missing_plugin(index: usize, decl: &PluginDecl, place: &str) -> BundleError {
    BundleError::Missing(format!(
        "manifest.plugins[{index}] (\"{}\"): file \"{}\" not found in {place}",
        decl.name(),
        decl.path
    ))
}

/// Checks every central-directory entry without decompressing anything; returns the names.
fn check_entries(archive: &ZipArchive<Cursor<&[u8]>>) -> Result<Vec<String>, BundleError> {
    let mut names = Vec::with_capacity(archive.len());
    let mut normalized: HashSet<String> = HashSet::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index_data(i)
            .map_err(|e| BundleError::Zip(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|_| BundleError::Refused(format!("zip entry #{i} has an undecodable name")))?
            .into_owned();
        if let Err(why) = check_relpath(&name) {
            return Err(BundleError::Refused(format!(
                "zip entry \"{}\" is unsafe: {why}",
                name.escape_debug()
            )));
        }
        let key = name
            .split(['/', '\\'])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        if !normalized.insert(key) {
            return Err(BundleError::Refused(format!(
                "zip entry \"{name}\" is duplicated"
            )));
        }
        // Unix mode lives in the high 16 bits of the external attributes.
        let mode = entry.external_attributes() >> 16;
        if mode & 0o170000 == 0o120000 {
            return Err(BundleError::Refused(format!(
                "zip entry \"{name}\" is a symbolic link"
            )));
        }
        if entry.encrypted() {
            return Err(BundleError::Refused(format!(
                "zip entry \"{name}\" is encrypted"
            )));
        }
        match entry.compression() {
            CompressionMethod::Stored | CompressionMethod::Deflated => {}
            other => {
                return Err(BundleError::Refused(format!(
                    "zip entry \"{name}\" uses compression {other:?} (only stored and deflate are accepted)"
                )));
            }
        }
        names.push(name);
    }
    Ok(names)
}

fn read_entry(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    index: usize,
    names: &[String],
    budget: &mut Budget<'_>,
    bytes: &[u8],
    plugin: bool,
    keep: bool,
) -> Result<Vec<u8>, BundleError> {
    let name = &names[index];
    let file = archive
        .by_index(index)
        .map_err(|e| BundleError::Zip(format!("cannot open \"{name}\": {e}")))?;
    // A lying header cannot widen the ratio allowance beyond the archive's real size.
    let compressed = file.compressed_size().min(bytes.len() as u64);
    budget.consume(file, name, Some(compressed), plugin, keep)
}

/// Reads an unpacked bundle directory; only regular files inside it are used.
fn read_dir_bundle(dir: &Path, limits: &Limits) -> Result<Bundle, BundleError> {
    read_dir_bundle_with(dir, limits, false)
}

/// Reads a bundle directory the packer is about to zip: plugin digests may still be `""`/`"auto"`.
pub(crate) fn read_source_dir(dir: &Path, limits: &Limits) -> Result<Bundle, BundleError> {
    read_dir_bundle_with(dir, limits, true)
}

fn read_dir_bundle_with(
    dir: &Path,
    limits: &Limits,
    pending_digests_ok: bool,
) -> Result<Bundle, BundleError> {
    let root = fs::canonicalize(dir).map_err(|e| BundleError::io(dir, e))?;
    let mut budget = Budget { limits, used: 0 };
    let manifest_bytes =
        read_dir_file_in(&root, MANIFEST_NAME, &mut budget, false)?.ok_or_else(|| {
            BundleError::Missing(format!(
                "{MANIFEST_NAME} not found in bundle directory {}",
                dir.display()
            ))
        })?;
    let manifest = Manifest::from_json_bytes_with(&manifest_bytes, pending_digests_ok)?;
    let mut files = Vec::with_capacity(manifest.flows.len());
    for (flow_id, path) in manifest.flows.iter() {
        let data = read_dir_file_in(&root, path, &mut budget, false)?.ok_or_else(|| {
            BundleError::Missing(format!(
                "manifest.flows[\"{flow_id}\"]: file \"{path}\" not found in bundle directory"
            ))
        })?;
        files.push((flow_id.to_string(), path.to_string(), data));
    }
    let mut plugins = Vec::with_capacity(manifest.plugins.len());
    for (i, decl) in manifest.plugins.iter().enumerate() {
        let data = read_dir_file_in(&root, &decl.path, &mut budget, true)?
            .ok_or_else(|| missing_plugin(i, decl, "bundle directory"))?;
        plugins.push((decl.clone(), data));
    }
    let digest = dir_digest(&manifest_bytes, &files, &plugins);
    let mut bundle = Bundle::assemble(
        manifest,
        digest,
        BundleSource::Dir(dir.to_path_buf()),
        files,
    )?;
    bundle.plugins = plugins;
    Ok(bundle)
}

/// Reads `root/rel` (`root` canonical) if it is a regular file inside `root`; `None` when absent.
pub(crate) fn read_dir_file(
    root: &Path,
    rel: &str,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, BundleError> {
    read_dir_file_in(root, rel, &mut Budget { limits, used: 0 }, false)
}

/// `plugin` applies the per-plugin file cap on top of the shared budget.
fn read_dir_file_in(
    root: &Path,
    rel: &str,
    budget: &mut Budget<'_>,
    plugin: bool,
) -> Result<Option<Vec<u8>>, BundleError> {
    if let Err(why) = check_relpath(rel) {
        return Err(BundleError::Refused(format!("\"{rel}\" is unsafe: {why}")));
    }
    let path: PathBuf = root.join(rel);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BundleError::io(&path, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(BundleError::Refused(format!(
            "\"{rel}\" is a symbolic link"
        )));
    }
    if !meta.is_file() {
        return Err(BundleError::Refused(format!(
            "\"{rel}\" is not a regular file"
        )));
    }
    // A symlinked parent directory could still lead outside the bundle.
    let real = fs::canonicalize(&path).map_err(|e| BundleError::io(&path, e))?;
    if !real.starts_with(root) {
        return Err(BundleError::Refused(format!(
            "\"{rel}\" resolves outside the bundle directory"
        )));
    }
    if plugin && meta.len() > budget.limits.max_plugin_bytes {
        return Err(budget.plugin_too_large(rel));
    }
    if meta.len() > budget.remaining() {
        return Err(budget.total_exceeded(rel));
    }
    let file = fs::File::open(&real).map_err(|e| BundleError::io(&real, e))?;
    budget.consume(file, rel, None, plugin, true).map(Some)
}

fn dir_digest(manifest_bytes: &[u8], files: &FlowFiles, plugins: &PluginFiles) -> String {
    let mut parts: Vec<(&str, &[u8])> = vec![(MANIFEST_NAME, manifest_bytes)];
    parts.extend(files.iter().map(|(_, p, b)| (p.as_str(), b.as_slice())));
    parts.extend(plugins.iter().map(|(d, b)| (d.path.as_str(), b.as_slice())));
    parts.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    parts.dedup_by(|a, b| a.0 == b.0);
    let mut h = Sha256::new();
    for (path, data) in parts {
        h.update(path.as_bytes());
        h.update([0u8]);
        h.update((data.len() as u64).to_be_bytes());
        h.update(data);
    }
    hex::encode(h.finalize())
}
