//! Proofs of possession seen recently, so that each is accepted once.

use p0_core::proof::PROOF_MAX_SKEW_SECS;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// The proofs accepted in the last `2 × PROOF_MAX_SKEW_SECS` seconds, by key and `jti`: a
/// proof is accepted once. Past that window the freshness check refuses it anyway, so memory
/// stays bounded by the calls of one window. Per server process: see SECURITY.md.
#[derive(Debug, Default)]
pub struct SeenProofs {
    inner: Mutex<Seen>,
}

/// The ids, and when each may be forgotten, oldest first.
#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<String>,
    queue: VecDeque<(i64, String)>,
}

impl SeenProofs {
    /// Records `id` at `now`; false when it was seen within the window.
    pub fn first_use(&self, id: &str, now: i64) -> bool {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Seen { ids: set, queue } = &mut *guard;
        while let Some((until, old)) = queue.front() {
            if *until >= now {
                break;
            }
            set.remove(old);
            queue.pop_front();
        }
        if !set.insert(id.to_string()) {
            return false;
        }
        queue.push_back((now + 2 * PROOF_MAX_SKEW_SECS, id.to_string()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_id_is_accepted_once_within_the_window() {
        let seen = SeenProofs::default();
        assert!(seen.first_use("k.a", 1000));
        assert!(!seen.first_use("k.a", 1001));
        assert!(seen.first_use("k.b", 1001));
        // Past the window the entry is dropped (the freshness check refuses such a proof).
        assert!(seen.first_use("k.a", 1000 + 2 * PROOF_MAX_SKEW_SECS + 1));
        let guard = seen.inner.lock().unwrap();
        assert_eq!(guard.ids.len(), guard.queue.len());
    }
}
