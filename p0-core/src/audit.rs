//! The append-only, hash-chained audit log. Each entry's hash covers its content and the
//! previous entry's hash, so an edited, inserted or deleted entry breaks the chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position, from 1.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (a person, or `system` for the reaper).
    pub actor: String,
    /// What: `request.created`, `request.approved`, `lease.revoked`, ...
    pub action: String,
    /// Which request, if any.
    pub request_id: Option<String>,
    /// Details (never a secret).
    pub detail: String,
    /// The previous entry's hash (64 zeros for the first).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The hash of the first entry's predecessor.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash an entry must carry.
pub fn entry_hash(
    seq: i64,
    at: &DateTime<Utc>,
    actor: &str,
    action: &str,
    request_id: Option<&str>,
    detail: &str,
    prev: &str,
) -> String {
    let body = serde_json::json!([
        seq,
        at.to_rfc3339(),
        actor,
        action,
        request_id,
        detail,
        prev
    ]);
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

/// Checks a whole log. Returns the first broken position and why.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), String> {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if e.seq != expected_seq {
            return Err(format!("entry {expected_seq} is missing (found {})", e.seq));
        }
        if e.prev_hash != prev {
            return Err(format!(
                "entry {} does not follow entry {}",
                e.seq,
                e.seq - 1
            ));
        }
        let h = entry_hash(
            e.seq,
            &e.at,
            &e.actor,
            &e.action,
            e.request_id.as_deref(),
            &e.detail,
            &e.prev_hash,
        );
        if h != e.hash {
            return Err(format!("entry {} was edited", e.seq));
        }
        prev = e.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out
                .last()
                .map(|e| e.hash.clone())
                .unwrap_or_else(|| GENESIS.into());
            let at = Utc::now();
            let hash = entry_hash(seq, &at, "a", "x", None, "d", &prev);
            out.push(AuditEntry {
                seq,
                at,
                actor: "a".into(),
                action: "x".into(),
                request_id: None,
                detail: "d".into(),
                prev_hash: prev,
                hash,
            });
        }
        out
    }

    #[test]
    fn edits_and_deletions_are_detected() {
        let c = chain(4);
        verify_chain(&c).unwrap();
        let mut edited = c.clone();
        edited[1].detail = "other".into();
        assert!(verify_chain(&edited).unwrap_err().contains("edited"));
        let mut deleted = c.clone();
        deleted.remove(2);
        assert!(verify_chain(&deleted).is_err());
        let mut truncated_front = c.clone();
        truncated_front.remove(0);
        assert!(verify_chain(&truncated_front).is_err());
    }
}
