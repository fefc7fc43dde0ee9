//! Crash-safe file writes: a temp file in the same directory, fsync, rename, fsync of the directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Suffix of in-progress writes; readers never look at these files.
pub const TMP_SUFFIX: &str = ".tmp";

/// Writes `data` to `path` so that a crash leaves either the old state or the whole new file.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("artifact path has no parent directory"))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("artifact path has no file name"))?;
    let tmp = dir.join(format!(
        "{name}.{}{TMP_SUFFIX}",
        uuid::Uuid::new_v4().simple()
    ));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes temp files older than `age` left in `dir` by a crashed writer; returns how many went.
pub fn sweep_tmp(dir: &Path, age: Duration) -> usize {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut n = 0;
    for e in rd.flatten() {
        let is_tmp = e
            .file_name()
            .to_str()
            .is_some_and(|s| s.ends_with(TMP_SUFFIX));
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|d| d >= age);
        if is_tmp && old && fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}
