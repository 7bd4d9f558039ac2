//! The states of a request and the moves between them; who acts; and why the lifecycle refuses.

use crate::store::RequestRecord;
use p0_core::api::RequestStatus;
use p0_core::route::{Approver, Decision};
use p0_core::RequestId;

/// The longest grant anyone may ask for, in seconds.
pub const MAX_DURATION_SECS: u64 = 86_400;

/// Who acts: a principal and the groups their token names.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The name actions are attributed to.
    pub name: &'a str,
    /// Their groups.
    pub groups: &'a [String],
}

impl Actor<'_> {
    /// Whether they are one of `list`.
    pub fn is_one_of(&self, list: &[Approver]) -> bool {
        list.iter().any(|a| a.includes(self.name, self.groups))
    }
}

/// Why the lifecycle refuses an act. The message is what the caller reads; `error` gives each
/// its HTTP status, once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request is not in a state the act applies to.
    #[error("request is {}", .0.as_str())]
    WrongStatus(RequestStatus),
    /// The asked duration is zero or too long.
    #[error("duration must be between 1 second and 24 hours")]
    BadDuration,
    /// The actor is not among the request's approvers.
    #[error("you are not an approver of this request")]
    NotAnApprover,
    /// The requester approving their own request where the rule does not allow it.
    #[error("you cannot approve your own request")]
    SelfApproval,
    /// The request's decision is not one that waits for approval.
    #[error("this request does not wait for approval")]
    NotAwaitingApproval,
    /// The approval names other content than the request's.
    #[error(
        "the request is not what you approved (digest mismatch); look again with `p0 show {0}`"
    )]
    DigestMismatch(RequestId),
    /// The actor approved this very content already.
    #[error("you approved this request already")]
    AlreadyApproved,
    /// A lease for a request whose decision grants nothing.
    #[error("request is not approved")]
    NotApproved,
    /// Ending a lease that is neither the actor's nor overseen by them.
    #[error("only the requester, an approver of the resource or an admin can end this lease")]
    MayNotEnd,
    /// Reading the audit log without being an auditor.
    #[error("the audit log is for auditors")]
    NotAnAuditor,
}

/// Whether a request may move from `from` to `to`. Denied, failed, revoked and expired are
/// final; a request is created straight into its [`initial`] state.
pub fn allowed(from: RequestStatus, to: RequestStatus) -> bool {
    use RequestStatus::*;
    matches!(
        (from, to),
        (PendingApproval, Provisioning | Denied)
            | (Provisioning, Active | Failed | PendingApproval)
            | (Active, Revoked | Expired)
    )
}

/// Moves `rec` to `to`, or refuses with the state it is in.
pub fn move_to(rec: &mut RequestRecord, to: RequestStatus) -> Result<(), Refusal> {
    if !allowed(rec.status, to) {
        return Err(Refusal::WrongStatus(rec.status));
    }
    rec.status = to;
    Ok(())
}

/// Refuses unless `rec` is in `status`.
pub fn expect(rec: &RequestRecord, status: RequestStatus) -> Result<(), Refusal> {
    if rec.status != status {
        return Err(Refusal::WrongStatus(rec.status));
    }
    Ok(())
}

/// Where a new request starts, given its routing decision, and why when it is denied.
pub fn initial(decision: &Decision) -> (RequestStatus, Option<String>) {
    match decision {
        Decision::Approve { .. } => (RequestStatus::Provisioning, None),
        Decision::NeedsApproval { .. } => (RequestStatus::PendingApproval, None),
        Decision::Deny { reason } => (RequestStatus::Denied, Some(reason.clone())),
    }
}

/// Refuses a duration of zero or over [`MAX_DURATION_SECS`].
pub fn check_duration(secs: u64) -> Result<(), Refusal> {
    if secs == 0 || secs > MAX_DURATION_SECS {
        return Err(Refusal::BadDuration);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;
    use p0_core::{Intent, ResourceId, SignedRequest};
    use std::time::Duration;
    use RequestStatus::*;

    const ALL: [RequestStatus; 7] = [
        PendingApproval,
        Provisioning,
        Active,
        Denied,
        Failed,
        Revoked,
        Expired,
    ];

    /// A request by alice in `status`, decided by `decision`.
    pub(crate) fn record(status: RequestStatus, decision: Decision) -> RequestRecord {
        RequestRecord {
            id: RequestId::new("req-0001").unwrap(),
            requester: "alice".into(),
            groups: vec![],
            signed: SignedRequest {
                request_id: RequestId::new("req-0001").unwrap(),
                resource: ResourceId::new("pg/app").unwrap(),
                intent: Intent::Query("UPDATE t SET a = 1".into()),
                reason: "fix".into(),
                duration_secs: 600,
                issued_at: 0,
            },
            signature: String::new(),
            public_key: String::new(),
            status,
            permissions: None,
            decision: Some(decision),
            rule: None,
            approvals: vec![],
            grant: None,
            message: None,
            created_at: Utc::now(),
            revoke_attempts: 0,
            next_attempt_at: None,
            claimed_until: None,
            version: 0,
        }
    }

    /// Two approvals from group `dba`, at most an hour, self-approval as given.
    pub(crate) fn needs_two(allow_self_approval: bool) -> Decision {
        Decision::NeedsApproval {
            approvers: vec![Approver::parse("group:dba").unwrap()],
            count: 2,
            max_duration: Duration::from_secs(3600),
            allow_self_approval,
        }
    }

    #[test]
    fn the_allowed_moves_are_exactly_the_lifecycle() {
        let moves: Vec<_> = ALL
            .iter()
            .flat_map(|&f| ALL.iter().map(move |&t| (f, t)))
            .filter(|&(f, t)| allowed(f, t))
            .collect();
        assert_eq!(
            moves,
            vec![
                (PendingApproval, Provisioning),
                (PendingApproval, Denied),
                (Provisioning, PendingApproval),
                (Provisioning, Active),
                (Provisioning, Failed),
                (Active, Revoked),
                (Active, Expired),
            ]
        );
    }

    #[test]
    fn final_states_go_nowhere() {
        for from in [Denied, Failed, Revoked, Expired] {
            for to in ALL {
                let mut rec = record(from, needs_two(false));
                assert_eq!(move_to(&mut rec, to), Err(Refusal::WrongStatus(from)));
                assert_eq!(rec.status, from);
            }
        }
    }

    #[test]
    fn a_refused_move_names_the_state_it_is_in() {
        let mut rec = record(Active, needs_two(false));
        let e = move_to(&mut rec, Provisioning).unwrap_err();
        assert_eq!(e.to_string(), "request is active");
        assert_eq!(
            expect(&rec, PendingApproval).unwrap_err().to_string(),
            "request is active"
        );
        assert!(expect(&rec, Active).is_ok());
        move_to(&mut rec, Revoked).unwrap();
        assert_eq!(rec.status, Revoked);
    }

    #[test]
    fn a_request_starts_where_its_decision_says() {
        let approve = Decision::Approve {
            max_duration: Duration::from_secs(60),
        };
        assert_eq!(initial(&approve), (Provisioning, None));
        assert_eq!(initial(&needs_two(false)), (PendingApproval, None));
        let deny = Decision::Deny {
            reason: "no writes".into(),
        };
        assert_eq!(initial(&deny), (Denied, Some("no writes".into())));
    }

    #[test]
    fn durations_are_one_second_to_a_day() {
        assert_eq!(check_duration(0), Err(Refusal::BadDuration));
        assert!(check_duration(1).is_ok());
        assert!(check_duration(MAX_DURATION_SECS).is_ok());
        assert_eq!(
            check_duration(MAX_DURATION_SECS + 1),
            Err(Refusal::BadDuration)
        );
    }
}
