//! Who sees a request and oversees its lease, who reads the audit log, and what a viewer is
//! shown of a request (its grant only to its requester).

use super::status::{Actor, Refusal};
use crate::store::RequestRecord;
use p0_core::api::RequestView;
use p0_core::route::{Approver, Decision};
use p0_core::Router;

/// Who oversees requests besides their requesters: admins, and approvers of each resource
/// (as the routing rules name them).
#[derive(Clone, Copy)]
pub struct Overseers<'a> {
    /// Who sees every request and may end every lease.
    pub admins: &'a [Approver],
    /// The routing rules, which name each resource's approvers.
    pub router: &'a dyn Router,
}

impl std::fmt::Debug for Overseers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overseers")
            .field("admins", &self.admins)
            .finish_non_exhaustive()
    }
}

/// Whether `who` approves requests on the resource of `rec`: an approver of a rule that covers
/// it, or one of the approvers its own decision names.
fn approves(rec: &RequestRecord, who: Actor<'_>, overseers: Overseers<'_>) -> bool {
    if who.is_one_of(&overseers.router.approvers_of(&rec.signed.resource)) {
        return true;
    }
    match &rec.decision {
        Some(Decision::NeedsApproval { approvers, .. }) => who.is_one_of(approvers),
        _ => false,
    }
}

/// Whether `who` oversees `rec`: an admin, or an approver of its resource. They see it and may
/// end its lease, whoever asked and however it was approved.
pub fn oversees(rec: &RequestRecord, who: Actor<'_>, overseers: Overseers<'_>) -> bool {
    who.is_one_of(overseers.admins) || approves(rec, who, overseers)
}

/// Whether `who` may see `rec`: its requester, or someone who oversees it.
pub fn sees(rec: &RequestRecord, who: Actor<'_>, overseers: Overseers<'_>) -> bool {
    rec.requester == who.name || oversees(rec, who, overseers)
}

/// Refuses `who` unless they are one of `auditors`.
pub fn auditor(who: Actor<'_>, auditors: &[Approver]) -> Result<(), Refusal> {
    if who.is_one_of(auditors) {
        return Ok(());
    }
    tracing::warn!(caller = who.name, "audit log refused: not an auditor");
    Err(Refusal::NotAnAuditor)
}

/// `rec` as `viewer` is shown it: the sealed grant only to its requester, and only the
/// approvals that count for it as it is now.
pub fn view(rec: &RequestRecord, viewer: &str) -> RequestView {
    RequestView {
        id: rec.id.clone(),
        requester: rec.requester.clone(),
        signed: rec.signed.clone(),
        status: rec.status,
        permissions: rec.permissions.clone(),
        decision: rec.decision.clone(),
        approvals: rec.valid_approvals(),
        grant: if viewer == rec.requester {
            rec.grant.clone()
        } else {
            None
        },
        message: rec.message.clone(),
        created_at: rec.created_at,
        rule: rec.rule.clone(),
        digest: rec.digest(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::status::tests::{needs_two, record};
    use super::*;
    use chrono::Utc;
    use p0_core::api::{GrantView, RequestStatus};
    use p0_core::{RulesRouter, Username};
    use std::time::Duration;

    const NONE: &[String] = &[];

    fn actor<'a>(name: &'a str, groups: &'a [String]) -> Actor<'a> {
        Actor { name, groups }
    }

    fn rules() -> RulesRouter {
        RulesRouter::from_toml(
            "[[rule]]\nname = \"ops\"\nresources = [\"pg/app\"]\naction = \"approval\"\napprovers = [\"user:olga\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn requesters_admins_and_approvers_see_a_request_and_nobody_else() {
        let router = rules();
        let admins = [Approver::parse("user:root").unwrap()];
        let o = Overseers {
            admins: &admins,
            router: &router,
        };
        let approve = Decision::Approve {
            max_duration: Duration::from_secs(60),
        };
        let rec = record(RequestStatus::Active, approve);
        assert!(sees(&rec, actor("alice", NONE), o));
        assert!(!oversees(&rec, actor("alice", NONE), o));
        // An admin, and an approver of a rule covering the resource, though this lease needed
        // no approval.
        assert!(oversees(&rec, actor("root", NONE), o));
        assert!(oversees(&rec, actor("olga", NONE), o));
        assert!(!sees(&rec, actor("mallory", NONE), o));
        // The approvers the request's own decision names.
        let dba = vec!["dba".to_string()];
        assert!(!sees(&rec, actor("bob", &dba), o));
        let rec = record(RequestStatus::PendingApproval, needs_two(false));
        assert!(oversees(&rec, actor("bob", &dba), o));
    }

    #[test]
    fn only_auditors_read_the_audit_log() {
        let auditors = [Approver::parse("group:audit").unwrap()];
        let audit = vec!["audit".to_string()];
        assert!(auditor(actor("ann", &audit), &auditors).is_ok());
        assert_eq!(
            auditor(actor("root", NONE), &auditors),
            Err(Refusal::NotAnAuditor)
        );
    }

    #[test]
    fn the_grant_is_shown_to_its_requester_only() {
        let approve = Decision::Approve {
            max_duration: Duration::from_secs(60),
        };
        let mut rec = record(RequestStatus::Active, approve);
        rec.grant = Some(GrantView {
            username: Username::new("p0_alice_0123456789").unwrap(),
            sealed_password: "sealed".into(),
            role: "p0r_x".into(),
            expires_at: Utc::now(),
        });
        assert!(view(&rec, "alice").grant.is_some());
        let other = view(&rec, "root");
        assert!(other.grant.is_none());
        assert_eq!(other.digest, rec.digest());
        assert_eq!(other.approval_digest(), rec.digest());
    }
}
