//! Content-derived ids and their validation (the only strings that ever name a file).

use sha2::{Digest, Sha256};

/// Hex length of an artifact id (sha256 truncated, as the seed does).
pub const ARTIFACT_ID_LEN: usize = 32;
/// Hex length of a blob id (a full sha256).
pub const BLOB_ID_LEN: usize = 64;

/// `sha256(run_id + "\0" + content)[:32]`: the seed's run-scoped artifact id.
pub fn artifact_id(run_id: &str, content: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(run_id.as_bytes());
    h.update([0u8]);
    h.update(content);
    let mut s = hex::encode(h.finalize());
    s.truncate(ARTIFACT_ID_LEN);
    s
}

/// `sha256(content)`: the id of the deduplicated bytes.
pub fn blob_id(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// The directory name of a run's metadata: a hash, so run ids never reach the filesystem.
pub fn run_key(run_id: &str) -> String {
    let mut s = hex::encode(Sha256::digest(run_id.as_bytes()));
    s.truncate(ARTIFACT_ID_LEN);
    s
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `s` has the shape of an artifact id (32 lowercase hex digits).
pub fn is_artifact_id(s: &str) -> bool {
    is_lower_hex(s, ARTIFACT_ID_LEN)
}

/// Whether `s` has the shape of a blob id (64 lowercase hex digits).
pub fn is_blob_id(s: &str) -> bool {
    is_lower_hex(s, BLOB_ID_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_id_matches_the_seed_formula() {
        // sha256(b"run-1\0hello") computed independently.
        let expected = hex::encode(Sha256::digest(b"run-1\0hello"));
        assert_eq!(artifact_id("run-1", b"hello"), expected[..32]);
        assert_ne!(
            artifact_id("run-2", b"hello"),
            artifact_id("run-1", b"hello")
        );
        assert!(is_artifact_id(&artifact_id("r", b"")));
    }

    #[test]
    fn ids_reject_anything_but_lowercase_hex() {
        assert!(!is_artifact_id("../../etc/passwd"));
        assert!(!is_artifact_id(&"A".repeat(32)));
        assert!(!is_artifact_id(&"a".repeat(31)));
        assert!(!is_blob_id(&"g".repeat(64)));
        assert!(is_blob_id(&blob_id(b"x")));
    }
}
