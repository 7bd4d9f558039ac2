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

/// A position of the log verified earlier: its sequence number and hash. The chain alone cannot
/// show that entries were cut from its end, or that the whole log was rewritten consistently;
/// a reader who keeps the last position it verified can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The entry's position.
    pub seq: i64,
    /// The entry's hash.
    pub hash: String,
}

/// Checks a whole log, and that it still holds, unchanged, the entry of a checkpoint verified
/// earlier. Returns the log's new head (`None` for an empty log without a checkpoint).
pub fn verify_since(
    entries: &[AuditEntry],
    earlier: Option<&Checkpoint>,
) -> Result<Option<Checkpoint>, String> {
    verify_chain(entries)?;
    if let Some(cp) = earlier {
        let entry = usize::try_from(cp.seq - 1)
            .ok()
            .and_then(|i| entries.get(i));
        match entry {
            None => {
                return Err(format!(
                    "entry {} was verified before and is gone: the log now ends at entry {}",
                    cp.seq,
                    entries.len()
                ))
            }
            Some(e) if e.hash != cp.hash => {
                return Err(format!(
                    "entry {} is not the one verified before: the log was rewritten",
                    cp.seq
                ))
            }
            Some(_) => {}
        }
    }
    Ok(entries.last().map(|e| Checkpoint {
        seq: e.seq,
        hash: e.hash.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        chain_with(n, "d")
    }

    fn chain_with(n: i64, detail: &str) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out
                .last()
                .map(|e| e.hash.clone())
                .unwrap_or_else(|| GENESIS.into());
            let at = Utc::now();
            let hash = entry_hash(seq, &at, "a", "x", None, detail, &prev);
            out.push(AuditEntry {
                seq,
                at,
                actor: "a".into(),
                action: "x".into(),
                request_id: None,
                detail: detail.into(),
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

    #[test]
    fn a_checkpoint_catches_a_cut_tail_and_a_rewrite() {
        let c = chain(4);
        let head = verify_since(&c, None).unwrap().unwrap();
        assert_eq!(head.seq, 4);
        // The same log, and a longer one, still hold the checkpoint.
        assert_eq!(verify_since(&c, Some(&head)).unwrap(), Some(head.clone()));
        let rewritten = chain_with(4, "nothing happened");
        let mut grown = c.clone();
        let prev = grown[3].hash.clone();
        let at = Utc::now();
        grown.push(AuditEntry {
            seq: 5,
            hash: entry_hash(5, &at, "a", "x", None, "d", &prev),
            at,
            actor: "a".into(),
            action: "x".into(),
            request_id: None,
            detail: "d".into(),
            prev_hash: prev,
        });
        assert_eq!(verify_since(&grown, Some(&head)).unwrap().unwrap().seq, 5);
        // The last entry cut off: the chain alone is intact, the checkpoint is not.
        let cut = c[..3].to_vec();
        verify_chain(&cut).unwrap();
        let err = verify_since(&cut, Some(&head)).unwrap_err();
        assert!(err.contains("gone"), "{err}");
        // A consistent rewrite of the whole log: every hash checks, the checkpoint does not.
        verify_chain(&rewritten).unwrap();
        let err = verify_since(&rewritten, Some(&head)).unwrap_err();
        assert!(err.contains("rewritten"), "{err}");
        assert_eq!(verify_since(&[], None).unwrap(), None);
    }
}
