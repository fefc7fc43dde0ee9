//! Install rules (§1.3): safe ids, the `<id>@<ver>.flow` file name, and writing an upload atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::archive::{Limits, read_bundle_bytes};
use super::error::BundleError;
use super::model::{Bundle, BundleSource};

/// `<bundle_id>@<bundle_version>.flow`.
pub fn install_file_name(bundle_id: &str, bundle_version: &str) -> String {
    format!("{bundle_id}@{bundle_version}.flow")
}

fn sanitize(raw: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    for c in raw.trim().chars() {
        let c = if allowed(c) { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_string()
}

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn version_char(c: char) -> bool {
    id_char(c) || c == '.'
}

/// A safe bundle id suggestion: unsafe runs become `-`, repeated `-` collapse, ends trimmed.
pub fn sanitize_bundle_id(raw: &str) -> String {
    sanitize(raw, id_char)
}

/// A safe bundle version suggestion (as [`sanitize_bundle_id`], dots allowed).
pub fn sanitize_bundle_version(raw: &str) -> String {
    sanitize(raw, version_char)
}

/// Checks the install-time rules: id `[A-Za-z0-9_-]+`, version `[A-Za-z0-9_.-]+`.
pub fn validate_install_ids(bundle_id: &str, bundle_version: &str) -> Result<(), BundleError> {
    if bundle_id.trim().is_empty() {
        return Err(BundleError::Install(
            "Uploaded bundle has empty manifest.bundle_id".into(),
        ));
    }
    if !bundle_id.chars().all(id_char) {
        return Err(BundleError::Install(format!(
            "Bundle id '{bundle_id}' contains unsafe characters. Publish with a safe bundle_id (suggested: '{}').",
            sanitize_bundle_id(bundle_id)
        )));
    }
    if bundle_version.is_empty() || !bundle_version.chars().all(version_char) {
        return Err(BundleError::Install(format!(
            "Bundle version '{bundle_version}' contains unsafe characters. Publish with a safe bundle_version (suggested: '{}').",
            sanitize_bundle_version(bundle_version)
        )));
    }
    Ok(())
}

/// Validates uploaded `.flow` bytes completely, then writes them to `<dir>/<id>@<ver>.flow`.
///
/// Nothing is written unless the bundle reads cleanly and its ids are install-safe. The file is
/// written under a temporary dot-name in `dir` and renamed into place, so a crash never leaves a
/// half-written bundle where the directory scan would pick it up.
pub fn install_bytes(
    dir: &Path,
    bytes: &[u8],
    overwrite: bool,
    limits: &Limits,
) -> Result<(PathBuf, Bundle), BundleError> {
    if bytes.is_empty() {
        return Err(BundleError::Install("Bundle content is empty".into()));
    }
    let mut bundle = read_bundle_bytes(bytes, limits)?;
    validate_install_ids(bundle.bundle_id(), bundle.bundle_version())?;
    let name = bundle.install_file_name();
    let dest = dir.join(&name);
    if dest.exists() && !overwrite {
        return Err(BundleError::Install(format!(
            "Bundle already installed: {name}"
        )));
    }
    fs::create_dir_all(dir).map_err(|e| BundleError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".upload_{}.flow.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, &dest));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(BundleError::io(&dest, e));
    }
    bundle.source = BundleSource::File(dest.clone());
    Ok((dest, bundle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fixture;

    #[test]
    fn install_id_rules() {
        validate_install_ids("basic-agent", "0.0.1").unwrap();
        validate_install_ids(
            "Untitled-Flow",
            "draft.7dc05dbc-58d5-4175-b58f-3531f5548246",
        )
        .unwrap();
        validate_install_ids("a_b", "dev").unwrap();
        let e = validate_install_ids("my.bundle", "1.0")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "Bundle id 'my.bundle' contains unsafe characters. Publish with a safe bundle_id (suggested: 'my-bundle')."
        );
        let e = validate_install_ids("ok", "1.0 beta/2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("suggested: '1.0-beta-2'"), "{e}");
        assert!(validate_install_ids("", "1").is_err());
        assert_eq!(
            install_file_name("basic-agent", "0.0.1"),
            "basic-agent@0.0.1.flow"
        );
    }

    #[test]
    fn install_writes_once_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(fixture("bundles/seed/basic-agent.flow")).unwrap();
        let (path, bundle) = install_bytes(dir.path(), &bytes, false, &Limits::default()).unwrap();
        assert_eq!(path, dir.path().join("basic-agent@0.0.0.flow"));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(bundle.source, BundleSource::File(path.clone()));
        let e = install_bytes(dir.path(), &bytes, false, &Limits::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bundle already installed: basic-agent@0.0.0.flow"
        );
        install_bytes(dir.path(), &bytes, true, &Limits::default()).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["basic-agent@0.0.0.flow"],
            "no temp file is left behind"
        );
    }

    #[test]
    fn refused_upload_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("bundles");
        let e = install_bytes(&target, b"not a zip", false, &Limits::default()).unwrap_err();
        assert!(matches!(e, BundleError::Zip(_)), "{e}");
        assert!(!target.exists());
        let e = install_bytes(&target, b"", false, &Limits::default()).unwrap_err();
        assert_eq!(e.to_string(), "Bundle content is empty");
    }
}
