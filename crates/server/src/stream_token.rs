//! Short-lived HMAC-signed tokens that let a browser `EventSource` (which cannot send headers) open one run's
//! ledger stream: `?stream_token=<expiry>.<hex hmac(run_id, expiry)>`, accepted only on that stream route.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long a stream token stays valid.
pub const TTL_S: i64 = 300;

/// Signs and verifies stream tokens with a per-data-dir key.
pub struct StreamTokens {
    key: Vec<u8>,
}

impl StreamTokens {
    /// Uses `key` (32 random bytes kept in the store, so tokens survive a restart).
    pub fn new(key: Vec<u8>) -> Self {
        StreamTokens { key }
    }

    fn mac(&self, run_id: &str, expires: i64) -> Option<Vec<u8>> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).ok()?;
        m.update(b"ledger-stream\0");
        m.update(run_id.as_bytes());
        m.update(b"\0");
        m.update(expires.to_string().as_bytes());
        Some(m.finalize().into_bytes().to_vec())
    }

    /// A token for `run_id` valid until `now + TTL_S`; returns it with its expiry (unix seconds).
    pub fn issue(&self, run_id: &str, now: i64) -> Option<(String, i64)> {
        let expires = now + TTL_S;
        let mac = self.mac(run_id, expires)?;
        Some((format!("{expires}.{}", hex::encode(mac)), expires))
    }

    /// True when `token` was issued for `run_id` and has not expired (constant-time compare).
    pub fn verify(&self, run_id: &str, token: &str, now: i64) -> bool {
        let Some((exp, sig)) = token.split_once('.') else {
            return false;
        };
        let Ok(expires) = exp.parse::<i64>() else {
            return false;
        };
        if expires < now || expires > now + TTL_S + 60 {
            return false;
        }
        let (Ok(sig), Some(want)) = (hex::decode(sig), self.mac(run_id, expires)) else {
            return false;
        };
        subtle::ConstantTimeEq::ct_eq(sig.as_slice(), want.as_slice()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_run_and_time() {
        let t = StreamTokens::new(vec![7; 32]);
        let (tok, exp) = t.issue("r1", 1000).unwrap();
        assert_eq!(exp, 1300);
        assert!(t.verify("r1", &tok, 1000));
        assert!(!t.verify("r2", &tok, 1000), "bound to its run");
        assert!(!t.verify("r1", &tok, 1301), "expired");
        assert!(
            !StreamTokens::new(vec![8; 32]).verify("r1", &tok, 1000),
            "other key"
        );
        assert!(!t.verify("r1", "1300.zz", 1000));
    }
}
