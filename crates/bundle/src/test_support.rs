//! Test helpers: shared fixtures and a raw zip writer able to produce malformed archives.

use std::path::PathBuf;

/// A path under the shared fixtures directory (see the test kit).
pub(crate) fn fixture(rel: &str) -> PathBuf {
    abstractgateway_testkit::shared_dir()
        .join("fixtures")
        .join(rel)
}

/// One entry of a hand-built zip; everything the zip writer would normally keep consistent is settable.
#[derive(Clone)]
pub(crate) struct RawEntry {
    pub name: String,
    pub data: Vec<u8>,
    pub method: u16,
    pub flags: u16,
    pub external_attr: u32,
}

impl RawEntry {
    /// A stored regular file with mode 0644.
    pub fn file(name: &str, data: &[u8]) -> Self {
        RawEntry {
            name: name.to_string(),
            data: data.to_vec(),
            method: 0,
            flags: 0,
            external_attr: 0o100644 << 16,
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Builds a zip (stored data, Unix "made by") from raw entries, duplicates and all.
pub(crate) fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let crc = crc32(&e.data);
        let size = e.data.len() as u32;
        let name = e.name.as_bytes();
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0x21u16.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&e.data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&e.flags.to_le_bytes());
        central.extend_from_slice(&e.method.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&e.external_attr.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A valid manifest for bundle `id@1.0.0` with one flow `f` at `flows/f.json`.
pub(crate) fn small_manifest(id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "bundle_format_version": "1",
        "bundle_id": id,
        "bundle_version": "1.0.0",
        "created_at": "2026-01-01T00:00:00+00:00",
        "entrypoints": [{"flow_id": "f", "name": id}],
        "flows": {"f": "flows/f.json"}
    }))
    .unwrap_or_default()
}

/// A minimal VisualFlow for flow `f`.
pub(crate) const SMALL_FLOW: &[u8] = br#"{"id":"f","nodes":[],"edges":[]}"#;
