//! Auth-failure lockout per client IP. Unlike the seed it decays with time (one failure forgiven per
//! `max_s` of quiet), rounds the remaining time up, and never refuses a request with a valid token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Most IPs tracked; beyond it the quietest entries are dropped.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: f64,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The tracker.
pub struct Lockout {
    after: u32,
    base_s: f64,
    max_s: f64,
    map: Mutex<HashMap<String, Entry>>,
}

impl Lockout {
    /// Locks after `after` failures for `base_s · 2^(n-after)` seconds, at most `max_s`.
    pub fn new(after: u32, base_s: f64, max_s: f64) -> Self {
        Lockout {
            after: after.max(1),
            base_s,
            max_s,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn decayed(&self, e: &Entry, now: Instant) -> f64 {
        let per = if self.max_s > 0.0 { self.max_s } else { 60.0 };
        (e.failures - now.duration_since(e.last).as_secs_f64() / per).max(0.0)
    }

    /// Seconds left on `ip`'s lock (rounded up), if locked.
    pub fn locked_for(&self, ip: &str) -> Option<u64> {
        let now = Instant::now();
        let map = self.map.lock();
        let until = map.get(ip)?.locked_until?;
        (until > now).then(|| until.duration_since(now).as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Records a failure; returns the lock (seconds, rounded up) it triggered, if any.
    pub fn fail(&self, ip: &str) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.map.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(ip) {
            let mut quiet: Vec<(String, Instant)> =
                map.iter().map(|(k, e)| (k.clone(), e.last)).collect();
            quiet.sort_by_key(|(_, t)| *t);
            for (k, _) in quiet.into_iter().take(MAX_TRACKED / 10) {
                map.remove(&k);
            }
        }
        let prev = map.get(ip).copied();
        let failures = prev.map(|e| self.decayed(&e, now)).unwrap_or(0.0) + 1.0;
        let mut entry = Entry {
            failures,
            last: now,
            locked_until: prev.and_then(|e| e.locked_until),
        };
        // A partly decayed failure still counts until it has fully decayed.
        let n = failures.ceil() as u32;
        let mut lock = None;
        if n >= self.after {
            let secs = (self.base_s * 2f64.powi((n - self.after).min(30) as i32)).min(self.max_s);
            if secs > 0.0 {
                entry.locked_until =
                    crate::time::secs_capped(secs, Duration::from_secs(86_400 * 365))
                        .map(|d| now + d);
                lock = Some(secs.ceil().max(1.0) as u64);
            }
        }
        map.insert(ip.to_string(), entry);
        lock
    }

    /// Forgets `ip`'s failures (a valid token was presented).
    pub fn success(&self, ip: &str) {
        let mut map = self.map.lock();
        if !map.is_empty() {
            map.remove(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_n_doubles_and_clears() {
        let l = Lockout::new(3, 1.0, 60.0);
        assert_eq!(l.fail("a"), None);
        assert_eq!(l.fail("a"), None);
        assert_eq!(l.fail("a"), Some(1));
        assert_eq!(l.locked_for("a"), Some(1));
        assert_eq!(l.fail("a"), Some(2));
        assert_eq!(l.locked_for("b"), None, "other IPs are unaffected");
        l.success("a");
        assert_eq!(l.locked_for("a"), None);
        assert_eq!(l.fail("a"), None);
    }

    #[test]
    fn failures_decay_with_time() {
        let l = Lockout::new(2, 1.0, 0.05);
        assert_eq!(l.fail("a"), None);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(l.fail("a"), None, "the first failure has decayed away");
    }
}
