//! Bundles carrying plugin components: declarations, both readers, limits, digests, packing and inspect.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::archive::{Limits, read_bundle, read_bundle_bytes, sha256_hex};
use super::cli::{inspect, verify};
use super::error::BundleError;
use super::manifest::Manifest;
use super::pack::pack_dir;
use super::plugin::PluginDecl;
use super::test_support::{RawEntry, SMALL_FLOW, raw_zip};

/// Stand-in component bytes: the bundle layer never parses them.
const COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00not really a component";

fn manifest_with(plugins: Value) -> Value {
    json!({
        "bundle_format_version": "1",
        "bundle_id": "plug",
        "bundle_version": "1.0.0",
        "created_at": "2026-01-01T00:00:00+00:00",
        "entrypoints": [{"flow_id": "f", "name": "plug"}],
        "flows": {"f": "flows/f.json"},
        "plugins": plugins
    })
}

fn one_plugin(sha: &str) -> Value {
    json!([{"path": "plugins/upper.wasm", "sha256": sha, "grants": {"http": ["example.org"]}}])
}

fn zip_with(manifest: &Value, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut entries = vec![
        RawEntry::file("manifest.json", manifest.to_string().as_bytes()),
        RawEntry::file("flows/f.json", SMALL_FLOW),
    ];
    entries.extend(extra.iter().map(|(n, d)| RawEntry::file(n, d)));
    raw_zip(&entries)
}

fn write_dir(dir: &Path, manifest: &Value, extra: &[(&str, &[u8])]) {
    fs::create_dir_all(dir.join("flows")).unwrap();
    fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    fs::write(dir.join("flows/f.json"), SMALL_FLOW).unwrap();
    for (name, data) in extra {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
}

/// The message of the manifest error `plugins` causes (panics if it is accepted).
fn manifest_error(plugins: Value) -> String {
    let bytes = manifest_with(plugins).to_string();
    match Manifest::from_json_bytes(bytes.as_bytes()) {
        Ok(m) => panic!("accepted: {:?}", m.plugins),
        Err(e @ BundleError::Manifest(_)) => e.to_string(),
        Err(other) => panic!("wrong error kind: {other:?}"),
    }
}

#[test]
fn declarations_parse_name_and_round_trip() {
    let sha = sha256_hex(COMPONENT);
    let m = Manifest::from_json_bytes(
        manifest_with(json!([
            {"path": "plugins/upper.wasm", "sha256": sha.to_uppercase(), "grants": {"kv": true}},
            {"path": "lib/other.wasm", "sha256": sha, "name": "text-tools.v2", "grants": null}
        ]))
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(m.plugins.len(), 2);
    assert_eq!(m.plugins[0].name(), "upper");
    assert_eq!(m.plugins[0].name, None);
    assert_eq!(m.plugins[0].sha256, sha, "digest normalised to lower case");
    assert_eq!(m.plugins[0].grants, json!({"kv": true}));
    assert_eq!(m.plugins[1].name(), "text-tools.v2");
    assert_eq!(
        m.plugins[1].grants,
        json!({}),
        "null grants default to {{}}"
    );
    assert_eq!(m.plugin("text-tools.v2").unwrap().path, "lib/other.wasm");
    assert!(
        m.plugin("other").is_none(),
        "an explicit name replaces the stem"
    );

    let v = m.to_value();
    assert_eq!(
        v["plugins"],
        json!([
            {"path": "plugins/upper.wasm", "sha256": sha, "grants": {"kv": true}},
            {"path": "lib/other.wasm", "sha256": sha, "name": "text-tools.v2", "grants": {}}
        ])
    );
    let again: Manifest = serde_json::from_str(&m.to_pretty_json()).unwrap();
    assert_eq!(again, m);
    again.validate().unwrap();
}

#[test]
fn absent_or_null_plugins_mean_none_and_are_not_written() {
    for plugins in [Value::Null, json!([])] {
        let m = Manifest::from_json_bytes(manifest_with(plugins).to_string().as_bytes()).unwrap();
        assert!(m.plugins.is_empty());
        assert!(m.to_value().get("plugins").is_none());
    }
    let mut v = manifest_with(Value::Null);
    v.as_object_mut().unwrap().remove("plugins");
    let m = Manifest::from_json_bytes(v.to_string().as_bytes()).unwrap();
    assert!(m.plugins.is_empty());
}

#[test]
fn every_plugin_rule_has_a_precise_error() {
    let sha = sha256_hex(COMPONENT);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"path": "x.wasm"}),
            "manifest.plugins must be a list (got object)",
        ),
        (
            json!(["plugins/x.wasm"]),
            "manifest.plugins[0] must be an object (got string)",
        ),
        (
            json!([{"sha256": sha}]),
            "manifest.plugins[0].path must be a non-empty string",
        ),
        (
            json!([{"path": 7, "sha256": sha}]),
            "manifest.plugins[0].path must be a string (got number)",
        ),
        (
            json!([{"path": "../evil.wasm", "sha256": sha}]),
            r#"manifest.plugins[0].path: unsafe path "../evil.wasm" ("." or ".." segment)"#,
        ),
        (
            json!([{"path": "/abs/evil.wasm", "sha256": sha}]),
            r#"manifest.plugins[0].path: unsafe path "/abs/evil.wasm" (absolute path)"#,
        ),
        (
            json!([{"path": "plugins\\..\\..\\evil.wasm", "sha256": sha}]),
            r#"("." or ".." segment)"#,
        ),
        (
            json!([{"path": "plugins/x.wat", "sha256": sha}]),
            r#"manifest.plugins[0].path "plugins/x.wat" must end in ".wasm""#,
        ),
        (
            json!([
                {"path": "plugins/x.wasm", "sha256": sha, "name": "a"},
                {"path": "plugins//x.wasm", "sha256": sha, "name": "b"}
            ]),
            r#"manifest.plugins[1].path "plugins//x.wasm" is already declared by manifest.plugins[0]"#,
        ),
        (
            json!([{"path": "plugins/x.wasm", "sha256": "abc"}]),
            r#"manifest.plugins[0].sha256 must be 64 hex characters (got "abc")"#,
        ),
        (
            json!([{"path": "plugins/x.wasm", "sha256": "g".repeat(64)}]),
            "manifest.plugins[0].sha256 must be 64 hex characters",
        ),
        (
            json!([{"path": "plugins/x.wasm"}]),
            r#"manifest.plugins[0].sha256 must be 64 hex characters (got "")"#,
        ),
        (
            json!([{"path": "plugins/x.wasm", "sha256": "auto"}]),
            r#"manifest.plugins[0].sha256 must be 64 hex characters (got "auto")"#,
        ),
        (
            json!([{"path": "plugins/x.wasm", "sha256": sha, "grants": ["http"]}]),
            "manifest.plugins[0].grants must be an object (got list)",
        ),
        (
            json!([{"path": "plugins/x.wasm", "sha256": sha, "name": "has space"}]),
            r#"manifest.plugins[0].name "has space" must match [A-Za-z0-9_.-]{1,64}"#,
        ),
        (
            json!([{"path": "plugins/x.wasm", "sha256": sha, "name": ""}]),
            r#"manifest.plugins[0].name "" must match"#,
        ),
        (
            json!([{"path": "plugins/x.wasm", "sha256": sha, "name": "n".repeat(65)}]),
            "must match [A-Za-z0-9_.-]{1,64}",
        ),
        (
            json!([{"path": "plugins/x.wasm", "sha256": sha, "name": 3}]),
            "manifest.plugins[0].name must be a string (got number)",
        ),
        (
            json!([{"path": "plugins/my tool.wasm", "sha256": sha}]),
            r#"manifest.plugins[0].name (taken from the file name) "my tool" must match"#,
        ),
        (
            json!([{"path": "plugins/.wasm", "sha256": sha}]),
            r#"manifest.plugins[0].name (taken from the file name) "" must match"#,
        ),
        (
            json!([
                {"path": "a/upper.wasm", "sha256": sha},
                {"path": "b/other.wasm", "sha256": sha, "name": "upper"}
            ]),
            r#"manifest.plugins[1]: plugin name "upper" is already used by manifest.plugins[0]"#,
        ),
    ];
    for (plugins, expected) in cases {
        let e = manifest_error(plugins.clone());
        assert!(
            e.starts_with("invalid manifest: ") && e.contains(expected),
            "{plugins}: expected {expected:?} in {e:?}"
        );
    }
}

#[test]
fn a_hand_built_declaration_is_validated_too() {
    let mut m =
        Manifest::from_json_bytes(manifest_with(Value::Null).to_string().as_bytes()).unwrap();
    let mut decl = PluginDecl::new("plugins/x.wasm", sha256_hex(COMPONENT));
    assert_eq!(decl.name(), "x");
    decl.grants = json!("all");
    m.plugins.push(decl);
    let e = m.validate().unwrap_err().to_string();
    assert!(
        e.contains("manifest.plugins[0].grants must be an object (got string)"),
        "{e}"
    );
}

#[test]
fn zip_bundle_exposes_plugin_bytes() {
    let sha = sha256_hex(COMPONENT);
    let manifest = manifest_with(one_plugin(&sha));
    let bytes = zip_with(&manifest, &[("plugins/upper.wasm", COMPONENT)]);
    let b = read_bundle_bytes(&bytes, &Limits::default()).unwrap();
    assert_eq!(b.plugins.len(), 1);
    let (decl, data) = b.plugin("upper").unwrap();
    assert_eq!(data, COMPONENT);
    assert_eq!(decl.sha256, sha);
    assert_eq!(decl.grants, json!({"http": ["example.org"]}));
    assert_eq!(b.sha256, sha256_hex(&bytes));

    // The same archive from a file.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("plug@1.0.0.flow");
    fs::write(&path, &bytes).unwrap();
    let b = read_bundle(&path, &Limits::default()).unwrap();
    assert_eq!(b.plugins[0].1, COMPONENT);
}

#[test]
fn the_reader_does_not_check_the_declared_digest() {
    // Refusing a mismatch is the component host's job (one uniform message).
    let manifest = manifest_with(one_plugin(&"0".repeat(64)));
    let bytes = zip_with(&manifest, &[("plugins/upper.wasm", COMPONENT)]);
    let b = read_bundle_bytes(&bytes, &Limits::default()).unwrap();
    assert_eq!(b.plugins[0].1, COMPONENT);
}

#[test]
fn dir_bundle_exposes_plugin_bytes_and_digest_covers_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("b");
    let manifest = manifest_with(one_plugin(&sha256_hex(COMPONENT)));
    write_dir(&d, &manifest, &[("plugins/upper.wasm", COMPONENT)]);
    let b = read_bundle(&d, &Limits::default()).unwrap();
    assert_eq!(b.plugin("upper").unwrap().1, COMPONENT);
    let first = b.sha256.clone();
    assert_eq!(read_bundle(&d, &Limits::default()).unwrap().sha256, first);

    let mut changed = COMPONENT.to_vec();
    changed.push(b'!');
    fs::write(d.join("plugins/upper.wasm"), &changed).unwrap();
    let b = read_bundle(&d, &Limits::default()).unwrap();
    assert_eq!(b.plugins[0].1, changed);
    assert_ne!(
        b.sha256, first,
        "a changed component changes the bundle digest"
    );

    // A file nobody declares does not count.
    fs::write(d.join("plugins/unused.wasm"), b"zzz").unwrap();
    assert_eq!(
        read_bundle(&d, &Limits::default()).unwrap().sha256,
        b.sha256
    );
}

#[test]
fn a_missing_plugin_file_is_named() {
    let manifest = manifest_with(one_plugin(&sha256_hex(COMPONENT)));
    let e = read_bundle_bytes(&zip_with(&manifest, &[]), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"manifest.plugins[0] ("upper"): file "plugins/upper.wasm" not found in bundle"#
    );

    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &manifest, &[]);
    let e = read_bundle(tmp.path(), &Limits::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"manifest.plugins[0] ("upper"): file "plugins/upper.wasm" not found in bundle directory"#
    );
}

#[test]
fn an_oversized_plugin_is_refused_but_the_cap_is_plugin_only() {
    let big = vec![7u8; 4096];
    let limits = Limits {
        max_plugin_bytes: 4095,
        ..Limits::default()
    };
    let expected = r#"refused unsafe bundle: plugin file "plugins/upper.wasm" is larger than 4095 bytes (the per-plugin limit)"#;
    let manifest = manifest_with(one_plugin(&sha256_hex(&big)));

    let zip = zip_with(&manifest, &[("plugins/upper.wasm", &big)]);
    let e = read_bundle_bytes(&zip, &limits).unwrap_err().to_string();
    assert_eq!(e, expected);

    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &manifest, &[("plugins/upper.wasm", &big)]);
    let e = read_bundle(tmp.path(), &limits).unwrap_err().to_string();
    assert_eq!(e, expected);

    // An undeclared file of the same size is only subject to the shared limits.
    let manifest = manifest_with(Value::Null);
    let zip = zip_with(&manifest, &[("plugins/upper.wasm", &big)]);
    read_bundle_bytes(&zip, &limits).unwrap();
    let exact = Limits {
        max_plugin_bytes: 4096,
        ..Limits::default()
    };
    let manifest = manifest_with(one_plugin(&sha256_hex(&big)));
    let zip = zip_with(&manifest, &[("plugins/upper.wasm", &big)]);
    assert_eq!(read_bundle_bytes(&zip, &exact).unwrap().plugins[0].1, big);
}

#[test]
fn plugin_bytes_count_towards_the_shared_budget() {
    let big = vec![1u8; 2048];
    let manifest = manifest_with(one_plugin(&sha256_hex(&big)));
    let limits = Limits {
        max_total_bytes: 1500,
        ..Limits::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &manifest, &[("plugins/upper.wasm", &big)]);
    let e = read_bundle(tmp.path(), &limits).unwrap_err().to_string();
    assert!(
        e.contains(
            r#"content exceeds 1500 bytes when decompressed (reached at "plugins/upper.wasm")"#
        ),
        "{e}"
    );
}

#[test]
fn plugin_paths_cannot_escape_the_bundle() {
    // A traversal in the manifest is refused before any file is opened.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("b");
    fs::write(tmp.path().join("evil.wasm"), COMPONENT).unwrap();
    let manifest =
        manifest_with(json!([{"path": "../evil.wasm", "sha256": sha256_hex(COMPONENT)}]));
    write_dir(&d, &manifest, &[]);
    let e = read_bundle(&d, &Limits::default()).unwrap_err().to_string();
    assert!(
        e.contains(r#"manifest.plugins[0].path: unsafe path "../evil.wasm""#),
        "{e}"
    );
    let zip = zip_with(&manifest, &[]);
    let e = read_bundle_bytes(&zip, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains(r#"unsafe path "../evil.wasm""#), "{e}");

    // A symlink inside the directory that points outside is refused too.
    #[cfg(unix)]
    {
        let manifest = manifest_with(one_plugin(&sha256_hex(COMPONENT)));
        write_dir(&d, &manifest, &[]);
        fs::create_dir_all(d.join("plugins")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("evil.wasm"), d.join("plugins/upper.wasm"))
            .unwrap();
        let e = read_bundle(&d, &Limits::default()).unwrap_err().to_string();
        assert_eq!(
            e,
            r#"refused unsafe bundle: "plugins/upper.wasm" is a symbolic link"#
        );
    }
}

#[test]
fn pack_dir_carries_plugins_and_fills_pending_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("src");
    let other = b"second component".as_slice();
    let manifest = manifest_with(json!([
        {"path": "plugins/upper.wasm", "sha256": "auto", "grants": {"kv": {"prefix": "u"}}},
        {"path": "plugins/lower.wasm", "sha256": "", "name": "lower-case"},
        {"path": "plugins/fixed.wasm", "sha256": sha256_hex(COMPONENT)}
    ]));
    write_dir(
        &d,
        &manifest,
        &[
            ("plugins/upper.wasm", COMPONENT),
            ("plugins/lower.wasm", other),
            ("plugins/fixed.wasm", COMPONENT),
        ],
    );
    // Pending digests are fine in a source dir but not in a loadable bundle.
    let e = read_bundle(&d, &Limits::default()).unwrap_err().to_string();
    assert!(
        e.contains(r#"manifest.plugins[0].sha256 must be 64 hex characters (got "auto")"#),
        "{e}"
    );

    let out = tmp.path().join("plug@1.0.0.flow");
    let m = pack_dir(&d, &out).unwrap();
    assert_eq!(m.plugins[0].sha256, sha256_hex(COMPONENT));
    assert_eq!(m.plugins[1].sha256, sha256_hex(other));
    assert_eq!(m.plugins[1].name(), "lower-case");

    let b = read_bundle(&out, &Limits::default()).unwrap();
    assert_eq!(b.manifest, m);
    assert_eq!(b.plugin("upper").unwrap().1, COMPONENT);
    assert_eq!(b.plugin("lower-case").unwrap().1, other);
    assert_eq!(b.plugin("fixed").unwrap().1, COMPONENT);
    assert_eq!(b.plugins[0].0.grants, json!({"kv": {"prefix": "u"}}));
    for (decl, bytes) in &b.plugins {
        assert_eq!(sha256_hex(bytes), decl.sha256, "{}", decl.path);
    }
    let mut z = zip::ZipArchive::new(fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(
        z.by_name("plugins/lower.wasm").unwrap().size(),
        other.len() as u64
    );
}

#[test]
fn pack_dir_refuses_a_wrong_declared_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("src");
    let wrong = "ab".repeat(32);
    write_dir(
        &d,
        &manifest_with(one_plugin(&wrong)),
        &[("plugins/upper.wasm", COMPONENT)],
    );
    let out = tmp.path().join("x.flow");
    let e = pack_dir(&d, &out).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            r#"cannot pack bundle: manifest.plugins[0] ("upper"): declared sha256 {wrong} does not match file "plugins/upper.wasm" (sha256 {})"#,
            sha256_hex(COMPONENT)
        )),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn inspect_lists_plugins_and_verify_warns_on_a_digest_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let sha = sha256_hex(COMPONENT);
    let path = tmp.path().join("plug.flow");
    fs::write(
        &path,
        zip_with(
            &manifest_with(one_plugin(&sha)),
            &[("plugins/upper.wasm", COMPONENT)],
        ),
    )
    .unwrap();
    let v = inspect(&path).unwrap();
    assert_eq!(
        v["plugins"],
        json!([{
            "name": "upper", "path": "plugins/upper.wasm", "sha256": sha, "sha256_matches": true,
            "size": COMPONENT.len(), "grants": {"http": ["example.org"]}
        }])
    );
    assert_eq!(v["manifest"]["plugins"][0]["sha256"], sha.as_str());
    assert!(verify(&path).unwrap().is_clean());

    let wrong = "0".repeat(64);
    fs::write(
        &path,
        zip_with(
            &manifest_with(one_plugin(&wrong)),
            &[("plugins/upper.wasm", COMPONENT)],
        ),
    )
    .unwrap();
    assert_eq!(
        inspect(&path).unwrap()["plugins"][0]["sha256_matches"],
        false
    );
    let r = verify(&path).unwrap();
    assert_eq!(r.warnings.len(), 1, "{r}");
    assert!(
        r.warnings[0].contains(&format!(
            r#"plugin "upper" (plugins/upper.wasm): declared sha256 {wrong} but the file's is {sha}"#
        )),
        "{r}"
    );
}
