//! One process per data dir: an exclusive `flock` on `<data>/abstractgateway.lock`, which also records our pid.
//!
//! `flock` belongs to the open file description, so it is refused to any other open of the file: a second process,
//! and equally a second `Store::open` in this process. The kernel drops it when the holder exits, even on SIGKILL,
//! so a crash never leaves a stale lock; the pid in the file only serves the error message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Name of the lock file inside the data dir.
pub(crate) const LOCK_FILE: &str = "abstractgateway.lock";

/// Holds the data dir lock until dropped.
pub(crate) struct DirLock {
    // Closing the file releases the flock.
    _file: File,
}

impl DirLock {
    /// Takes the lock without waiting, or says who holds it.
    pub fn acquire(data_dir: &Path) -> Result<DirLock, StoreError> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io(format!("cannot open {}", path.display()), &e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: PathBuf::from(data_dir),
                    pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::io(
                    format!("cannot lock {}", path.display()),
                    &e,
                ));
            }
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_data()
        };
        write_pid(&mut file)
            .map_err(|e| StoreError::io(format!("cannot write {}", path.display()), &e))?;
        Ok(DirLock { _file: file })
    }
}

/// The pid the holder wrote; `None` while it has not written it yet or if the file is unreadable.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
