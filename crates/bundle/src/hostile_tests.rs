//! Hostile and broken bundles: each case is a real archive or directory, refused with its message.

use std::fs;
use std::io::Write;
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::archive::{Limits, read_bundle, read_bundle_bytes};
use super::error::BundleError;
use super::install::install_bytes;
use super::test_support::{RawEntry, SMALL_FLOW, raw_zip, small_manifest};

fn base_entries() -> Vec<RawEntry> {
    vec![
        RawEntry::file("manifest.json", &small_manifest("demo")),
        RawEntry::file("flows/f.json", SMALL_FLOW),
    ]
}

fn with(extra: RawEntry) -> Vec<u8> {
    let mut entries = base_entries();
    entries.push(extra);
    raw_zip(&entries)
}

/// Reads the bytes as an upload and returns the refusal message (panics if accepted).
fn refusal(bytes: &[u8], limits: &Limits) -> String {
    match read_bundle_bytes(bytes, limits) {
        Ok(b) => panic!("hostile bundle accepted: {}", b.bundle_ref()),
        Err(e) => e.to_string(),
    }
}

fn assert_refused(bytes: &[u8], expected: &str) {
    let msg = refusal(bytes, &Limits::default());
    assert!(
        msg.starts_with("refused unsafe bundle: ") && msg.contains(expected),
        "expected {expected:?} in {msg:?}"
    );
}

/// Writes a zip with the real writer; `f` adds the hostile part.
fn writer_zip(path: &Path, f: impl FnOnce(&mut ZipWriter<fs::File>)) {
    let mut z = ZipWriter::new(fs::File::create(path).unwrap());
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    z.start_file("manifest.json", opts).unwrap();
    z.write_all(&small_manifest("demo")).unwrap();
    z.start_file("flows/f.json", opts).unwrap();
    z.write_all(SMALL_FLOW).unwrap();
    f(&mut z);
    z.finish().unwrap();
}

#[test]
fn baseline_raw_zip_is_accepted() {
    let b = read_bundle_bytes(&raw_zip(&base_entries()), &Limits::default()).unwrap();
    assert_eq!(b.bundle_ref(), "demo@1.0.0");
    assert_eq!(b.flow("f").unwrap()["id"], "demo@1.0.0:f");
}

#[test]
fn path_traversal_is_refused() {
    assert_refused(
        &with(RawEntry::file("../evil.json", b"{}")),
        r#"zip entry "../evil.json" is unsafe: "." or ".." segment"#,
    );
    assert_refused(
        &with(RawEntry::file("flows/../../evil.json", b"{}")),
        r#"zip entry "flows/../../evil.json" is unsafe"#,
    );
    assert_refused(
        &with(RawEntry::file("flows\\..\\..\\evil.json", b"{}")),
        r#"is unsafe: "." or ".." segment"#,
    );
}

#[test]
fn absolute_paths_are_refused() {
    assert_refused(
        &with(RawEntry::file("/etc/cron.d/evil", b"x")),
        r#"zip entry "/etc/cron.d/evil" is unsafe: absolute path"#,
    );
    assert_refused(
        &with(RawEntry::file("\\evil.json", b"x")),
        "is unsafe: absolute path",
    );
}

#[test]
fn drive_prefixes_are_refused() {
    assert_refused(
        &with(RawEntry::file("C:/Windows/evil.dll", b"x")),
        r#"zip entry "C:/Windows/evil.dll" is unsafe: drive or scheme prefix"#,
    );
    assert_refused(
        &with(RawEntry::file("c:evil", b"x")),
        "is unsafe: drive or scheme prefix",
    );
}

#[test]
fn symlink_entries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("link.flow");
    writer_zip(&path, |z| {
        z.add_symlink("assets/passwd", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
    });
    let e = read_bundle(&path, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(r#"zip entry "assets/passwd" is a symbolic link"#),
        "{e}"
    );

    // A symlink that replaces a referenced flow file is refused as well.
    let mut entries = base_entries();
    entries[1].external_attr = 0o120777 << 16;
    entries[1].data = b"/etc/passwd".to_vec();
    assert_refused(
        &raw_zip(&entries),
        r#"zip entry "flows/f.json" is a symbolic link"#,
    );
}

#[test]
fn duplicate_entries_are_refused() {
    assert_refused(
        &with(RawEntry::file("flows/f.json", b"{\"id\":\"other\"}")),
        "zip has duplicate entry names",
    );
    assert_refused(
        &with(RawEntry::file("flows//f.json", b"{}")),
        r#"zip entry "flows//f.json" is duplicated"#,
    );
    assert_refused(
        &with(RawEntry::file("flows\\f.json", b"{}")),
        "is duplicated",
    );
}

#[test]
fn too_many_entries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("many.flow");
    writer_zip(&path, |z| {
        for i in 0..9_999 {
            z.start_file(format!("assets/{i}.txt"), SimpleFileOptions::default())
                .unwrap();
        }
    });
    let e = read_bundle(&path, &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "refused unsafe bundle: zip has 10001 entries (limit 10000)"
    );

    let small = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    let msg = refusal(&with(RawEntry::file("assets/a", b"a")), &small);
    assert_eq!(msg, "refused unsafe bundle: zip has 3 entries (limit 2)");
}

#[test]
fn zip_bomb_by_ratio_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bomb.flow");
    let zeros = vec![0u8; 1024 * 1024];
    writer_zip(&path, |z| {
        // Not referenced by the manifest: it must still be caught.
        z.start_file("assets/bomb.bin", SimpleFileOptions::default())
            .unwrap();
        for _ in 0..20 {
            z.write_all(&zeros).unwrap();
        }
    });
    assert!(fs::metadata(&path).unwrap().len() < 100 * 1024);
    let e = read_bundle(&path, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            r#"refused unsafe bundle: zip entry "assets/bomb.bin" expands more than 200x"#
        ),
        "{e}"
    );
}

#[test]
fn zip_bomb_by_total_size_is_refused() {
    // Incompressible data spread over entries that are each under every per-entry limit.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let mut entries = base_entries();
    for i in 0..3 {
        entries.push(RawEntry::file(
            &format!("assets/{i}.bin"),
            &noise(512 * 1024),
        ));
    }
    let limits = Limits {
        max_total_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let msg = refusal(&raw_zip(&entries), &limits);
    assert_eq!(
        msg,
        r#"refused unsafe bundle: content exceeds 1048576 bytes when decompressed (reached at "assets/1.bin")"#
    );
}

#[test]
fn lying_size_headers_do_not_help() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("liar.flow");
    writer_zip(&path, |z| {
        z.start_file("assets/big.bin", SimpleFileOptions::default())
            .unwrap();
        z.write_all(&vec![b'a'; 8 * 1024 * 1024]).unwrap();
    });
    // Rewrite the uncompressed size of every header to 10 bytes.
    let mut bytes = fs::read(&path).unwrap();
    let mut patched = 0;
    for i in 0..bytes.len().saturating_sub(30) {
        let sig = u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let at = match sig {
            0x0403_4b50 => i + 22,
            0x0201_4b50 => i + 24,
            _ => continue,
        };
        let size = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        if size == 8 * 1024 * 1024 {
            bytes[at..at + 4].copy_from_slice(&10u32.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local and central header patched");
    match read_bundle_bytes(&bytes, &Limits::default()) {
        Err(BundleError::Refused(_) | BundleError::Zip(_)) => {}
        other => panic!("liar accepted or wrong error: {other:?}"),
    }
    let small = Limits {
        max_total_bytes: 64 * 1024,
        ratio_exempt_bytes: 0,
        ..Limits::default()
    };
    assert!(read_bundle_bytes(&bytes, &small).is_err());
}

#[test]
fn encrypted_and_exotic_entries_are_refused() {
    let mut entries = base_entries();
    entries[1].flags = 1;
    assert_refused(
        &raw_zip(&entries),
        r#"zip entry "flows/f.json" is encrypted"#,
    );

    let mut entries = base_entries();
    entries[1].method = 12;
    assert_refused(
        &raw_zip(&entries),
        r#"zip entry "flows/f.json" uses compression"#,
    );
}

#[test]
fn broken_content_gets_precise_errors() {
    let e = read_bundle_bytes(b"PK\x03\x04 nope", &Limits::default()).unwrap_err();
    assert!(matches!(e, BundleError::Zip(_)), "{e}");

    let e = read_bundle_bytes(&raw_zip(&base_entries()[1..]), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(e, "manifest.json not found in bundle");

    let e = read_bundle_bytes(&raw_zip(&base_entries()[..1]), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"manifest.flows["f"]: file "flows/f.json" not found in bundle"#
    );

    let mut entries = base_entries();
    entries[1].data = b"[1, 2]".to_vec();
    let e = read_bundle_bytes(&raw_zip(&entries), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"flow "f" (flows/f.json): must be a JSON object (got list)"#
    );

    let mut entries = base_entries();
    entries[1].data = b"{oops".to_vec();
    let e = read_bundle_bytes(&raw_zip(&entries), &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(r#"flow "f" (flows/f.json): not valid JSON"#),
        "{e}"
    );

    let mut entries = base_entries();
    entries[0].data =
        br#"{"bundle_format_version":"2","bundle_id":"x","entrypoints":[{"flow_id":"f"}]}"#
            .to_vec();
    let e = read_bundle_bytes(&raw_zip(&entries), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"invalid manifest: manifest.bundle_format_version must be "1" (got "2")"#
    );

    let mut entries = base_entries();
    entries[0].data = br#"{"bundle_format_version":"1","bundle_id":"x","entrypoints":[{"flow_id":"f"}],"flows":{}}"#.to_vec();
    let e = read_bundle_bytes(&raw_zip(&entries), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"invalid manifest: bundle "x@0.0.0" has no flows (manifest.flows is empty)"#
    );
}

#[test]
fn refused_upload_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundles");
    fs::create_dir(&dir).unwrap();
    let e = install_bytes(
        &dir,
        &with(RawEntry::file("../evil.json", b"{}")),
        false,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, BundleError::Refused(_)), "{e}");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    assert!(!tmp.path().join("evil.json").exists());
}

fn write_dir_bundle(dir: &Path) {
    fs::create_dir_all(dir.join("flows")).unwrap();
    fs::write(dir.join("manifest.json"), small_manifest("demo")).unwrap();
    fs::write(dir.join("flows/f.json"), SMALL_FLOW).unwrap();
}

#[test]
fn directory_symlinks_and_escapes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("f.json"), SMALL_FLOW).unwrap();

    let d = tmp.path().join("b1");
    write_dir_bundle(&d);
    read_bundle(&d, &Limits::default()).unwrap();
    fs::remove_file(d.join("flows/f.json")).unwrap();
    std::os::unix::fs::symlink(outside.join("f.json"), d.join("flows/f.json")).unwrap();
    let e = read_bundle(&d, &Limits::default()).unwrap_err().to_string();
    assert_eq!(
        e,
        r#"refused unsafe bundle: "flows/f.json" is a symbolic link"#
    );

    let d = tmp.path().join("b2");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("manifest.json"), small_manifest("demo")).unwrap();
    std::os::unix::fs::symlink(&outside, d.join("flows")).unwrap();
    let e = read_bundle(&d, &Limits::default()).unwrap_err().to_string();
    assert_eq!(
        e,
        r#"refused unsafe bundle: "flows/f.json" resolves outside the bundle directory"#
    );

    let d = tmp.path().join("b3");
    write_dir_bundle(&d);
    fs::write(
        d.join("manifest.json"),
        br#"{"bundle_format_version":"1","bundle_id":"x","entrypoints":[{"flow_id":"f"}],"flows":{"f":"../outside/f.json"}}"#,
    )
    .unwrap();
    let e = read_bundle(&d, &Limits::default()).unwrap_err().to_string();
    assert!(
        e.starts_with(r#"invalid manifest: manifest.flows["f"]: unsafe path "../outside/f.json""#),
        "{e}"
    );

    let d = tmp.path().join("b4");
    write_dir_bundle(&d);
    fs::remove_file(d.join("manifest.json")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("b1/manifest.json"), d.join("manifest.json"))
        .unwrap();
    let e = read_bundle(&d, &Limits::default()).unwrap_err().to_string();
    assert_eq!(
        e,
        r#"refused unsafe bundle: "manifest.json" is a symbolic link"#
    );
}

#[test]
fn directory_size_limit_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("b");
    write_dir_bundle(&d);
    let limits = Limits {
        max_total_bytes: 200,
        ..Limits::default()
    };
    let e = read_bundle(&d, &limits).unwrap_err().to_string();
    assert!(e.contains("content exceeds 200 bytes"), "{e}");
}
