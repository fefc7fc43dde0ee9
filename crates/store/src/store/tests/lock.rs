//! One store per data dir, in this process and across processes.

use std::time::Duration;

use super::child::{ChildProc, child_dir};
use crate::store::{Store, StoreError};

#[test]
fn second_open_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert_eq!(
        err,
        StoreError::Locked {
            dir: dir.path().to_path_buf(),
            pid: Some(std::process::id())
        }
    );
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    assert!(
        err.to_string()
            .contains("in use by another abstractgateway process")
    );
    // A clone is the same store, not a second open.
    let clone = store.clone();
    drop(store);
    assert!(Store::open(dir.path()).is_err());
    drop(clone);
    Store::open(dir.path()).unwrap();
}

/// Child side of `another_process_holding_the_dir_is_named`: holds the store until killed.
#[test]
#[ignore = "run as a child process by another_process_holding_the_dir_is_named"]
fn child_holds_store() {
    let Some(dir) = child_dir() else { return };
    let _store = Store::open(&dir).unwrap();
    println!("ready");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn another_process_holding_the_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let child = ChildProc::spawn("store::tests::lock::child_holds_store", dir.path());
    child.wait_for(Duration::from_secs(60), |l| (l == "ready").then_some(()));
    let err = Store::open(dir.path()).unwrap_err();
    assert_eq!(
        err,
        StoreError::Locked {
            dir: dir.path().to_path_buf(),
            pid: Some(child.child.id())
        }
    );
    // The kernel drops the flock when its holder dies, even by SIGKILL: no stale lock.
    child.kill();
    Store::open(dir.path()).unwrap();
}
