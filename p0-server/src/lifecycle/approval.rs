//! Approvals: who may give one, what it binds to (the digest of what the approver saw), and
//! when enough of them move a request on.

use super::status::{expect, move_to, Actor, Refusal};
use crate::store::{Approval, RequestRecord};
use chrono::{DateTime, Utc};
use p0_core::api::RequestStatus;
use p0_core::route::Decision;

impl RequestRecord {
    /// The digest of what approvers are shown of this request now.
    pub fn digest(&self) -> String {
        p0_core::api::approval_digest(&self.requester, &self.signed, self.permissions.as_ref())
    }

    /// The approvers whose approval is for the request as it is now.
    pub fn valid_approvals(&self) -> Vec<String> {
        let digest = self.digest();
        self.approvals
            .iter()
            .filter(|a| a.digest == digest)
            .map(|a| a.by.clone())
            .collect()
    }
}

/// Checks that `who` may approve `rec`; returns how many approvals it needs.
pub fn may_approve(rec: &RequestRecord, who: Actor<'_>) -> Result<u32, Refusal> {
    match &rec.decision {
        Some(Decision::NeedsApproval {
            approvers,
            count,
            allow_self_approval,
            ..
        }) => {
            if !who.is_one_of(approvers) {
                return Err(Refusal::NotAnApprover);
            }
            if who.name == rec.requester && !allow_self_approval {
                return Err(Refusal::SelfApproval);
            }
            Ok(*count)
        }
        _ => Err(Refusal::NotAwaitingApproval),
    }
}

/// What an approval came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    /// Approvals that count for the request as it is now, this one included.
    pub valid: u32,
    /// Approvals it needs.
    pub needed: u32,
    /// The digest approved.
    pub digest: String,
}

impl Approved {
    /// Whether this approval completed the count (the request is now provisioning).
    pub fn complete(&self) -> bool {
        self.valid >= self.needed
    }
}

/// Records `who`'s approval of the content whose digest is `seen`, at `now`. An approval of
/// earlier content by the same approver is replaced; with enough approvals the request moves
/// to provisioning.
pub fn approve(
    rec: &mut RequestRecord,
    who: Actor<'_>,
    seen: &str,
    now: DateTime<Utc>,
) -> Result<Approved, Refusal> {
    expect(rec, RequestStatus::PendingApproval)?;
    let needed = may_approve(rec, who)?;
    let digest = rec.digest();
    if seen != digest {
        tracing::warn!(caller = %who.name, request = %rec.id, "approval refused: it is for other content than the request's");
        return Err(Refusal::DigestMismatch(rec.id.clone()));
    }
    if rec
        .approvals
        .iter()
        .any(|a| a.by == who.name && a.digest == digest)
    {
        return Err(Refusal::AlreadyApproved);
    }
    rec.approvals.retain(|a| a.by != who.name);
    rec.approvals.push(Approval {
        by: who.name.to_string(),
        digest: digest.clone(),
        at: now,
    });
    let approved = Approved {
        valid: rec.valid_approvals().len() as u32,
        needed,
        digest,
    };
    if approved.complete() {
        move_to(rec, RequestStatus::Provisioning)?;
    }
    Ok(approved)
}

/// Denies a request that waits for approval: its requester (withdrawing it) or one who may
/// approve it.
pub fn deny(rec: &mut RequestRecord, who: Actor<'_>) -> Result<(), Refusal> {
    expect(rec, RequestStatus::PendingApproval)?;
    if who.name != rec.requester {
        may_approve(rec, who)?;
    }
    move_to(rec, RequestStatus::Denied)?;
    rec.message = Some(format!("denied by {}", who.name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::status::tests::{needs_two, record};
    use super::*;
    use p0_core::Intent;
    use std::time::Duration;
    use RequestStatus::*;

    const NONE: &[String] = &[];

    fn dba() -> Vec<String> {
        vec!["dba".into()]
    }

    fn actor<'a>(name: &'a str, groups: &'a [String]) -> Actor<'a> {
        Actor { name, groups }
    }

    #[test]
    fn only_listed_approvers_may_approve() {
        let rec = record(PendingApproval, needs_two(false));
        let g = dba();
        assert_eq!(may_approve(&rec, actor("bob", &g)), Ok(2));
        assert_eq!(
            may_approve(&rec, actor("mallory", NONE)),
            Err(Refusal::NotAnApprover)
        );
    }

    #[test]
    fn self_approval_only_where_the_rule_allows_it() {
        let g = dba();
        let rec = record(PendingApproval, needs_two(false));
        assert_eq!(
            may_approve(&rec, actor("alice", &g)),
            Err(Refusal::SelfApproval)
        );
        let rec = record(PendingApproval, needs_two(true));
        assert_eq!(may_approve(&rec, actor("alice", &g)), Ok(2));
    }

    #[test]
    fn a_request_without_an_approval_decision_takes_none() {
        let g = dba();
        let approve = Decision::Approve {
            max_duration: Duration::from_secs(60),
        };
        let rec = record(PendingApproval, approve);
        assert_eq!(
            may_approve(&rec, actor("bob", &g)),
            Err(Refusal::NotAwaitingApproval)
        );
    }

    #[test]
    fn the_count_moves_it_to_provisioning_once_reached() {
        let g = dba();
        let mut rec = record(PendingApproval, needs_two(false));
        let d = rec.digest();
        let first = approve(&mut rec, actor("bob", &g), &d, Utc::now()).unwrap();
        assert_eq!((first.valid, first.needed, first.complete()), (1, 2, false));
        assert_eq!(rec.status, PendingApproval);
        assert_eq!(
            approve(&mut rec, actor("bob", &g), &d, Utc::now()),
            Err(Refusal::AlreadyApproved)
        );
        let second = approve(&mut rec, actor("carol", &g), &d, Utc::now()).unwrap();
        assert!(second.complete());
        assert_eq!(rec.status, Provisioning);
        assert_eq!(rec.valid_approvals(), vec!["bob", "carol"]);
        // Approving a request that no longer waits is refused with where it is.
        assert_eq!(
            approve(&mut rec, actor("dave", &g), &d, Utc::now()),
            Err(Refusal::WrongStatus(Provisioning))
        );
    }

    #[test]
    fn an_approval_binds_to_the_digest_it_names() {
        let g = dba();
        let mut rec = record(PendingApproval, needs_two(false));
        let e = approve(&mut rec, actor("bob", &g), "other", Utc::now()).unwrap_err();
        assert_eq!(e, Refusal::DigestMismatch(rec.id.clone()));
        assert!(e.to_string().contains("`p0 show req-0001`"), "{e}");
        assert!(rec.approvals.is_empty());
    }

    #[test]
    fn approvals_of_earlier_content_stop_counting_and_are_replaced() {
        let g = dba();
        let mut rec = record(PendingApproval, needs_two(false));
        let before = rec.digest();
        approve(&mut rec, actor("bob", &g), &before, Utc::now()).unwrap();
        rec.signed.intent = Intent::Query("DELETE FROM t".into());
        let now = rec.digest();
        assert_ne!(before, now);
        assert!(rec.valid_approvals().is_empty());
        let again = approve(&mut rec, actor("bob", &g), &now, Utc::now()).unwrap();
        assert_eq!(again.valid, 1);
        assert_eq!(rec.approvals.len(), 1, "bob's earlier approval is replaced");
    }

    #[test]
    fn the_requester_may_withdraw_and_an_approver_deny() {
        let g = dba();
        let mut rec = record(PendingApproval, needs_two(false));
        deny(&mut rec, actor("alice", NONE)).unwrap();
        assert_eq!(rec.status, Denied);
        assert_eq!(rec.message.as_deref(), Some("denied by alice"));
        assert_eq!(
            deny(&mut rec, actor("alice", NONE)),
            Err(Refusal::WrongStatus(Denied))
        );

        let mut rec = record(PendingApproval, needs_two(false));
        assert_eq!(
            deny(&mut rec, actor("mallory", NONE)),
            Err(Refusal::NotAnApprover)
        );
        assert_eq!(rec.status, PendingApproval);
        deny(&mut rec, actor("bob", &g)).unwrap();
        assert_eq!(rec.message.as_deref(), Some("denied by bob"));
    }
}
