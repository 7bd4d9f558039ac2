//! Leases: what picking up an approved request comes to (its expiry, or approvals that no
//! longer hold), its provisioning's outcome, who may end it early, and its end by revocation or
//! at expiry, with the reaper's backoff when the agent cannot be reached.

use super::status::{expect, move_to, Actor, Refusal};
use crate::store::RequestRecord;
use chrono::{DateTime, TimeDelta, Utc};
use p0_core::api::{GrantView, RequestStatus};
use p0_core::route::Decision;

/// What picking up a provisioning request comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pickup {
    /// The request changed after it was approved: it waits for approval again.
    Void,
    /// Provision it, with a lease until `expires_at`.
    Grant {
        /// The asked duration, capped by the decision's longest grant.
        expires_at: DateTime<Utc>,
    },
}

/// Decides whether `rec`, provisioning, is granted at `now` and until when. Approvals count
/// only for what the approvers saw: if the request changed since, it moves back to waiting for
/// approval ([`Pickup::Void`]).
pub fn pickup(rec: &mut RequestRecord, now: DateTime<Utc>) -> Result<Pickup, Refusal> {
    if let Some(Decision::NeedsApproval { count, .. }) = &rec.decision {
        if (rec.valid_approvals().len() as u32) < *count {
            move_to(rec, RequestStatus::PendingApproval)?;
            rec.message =
                Some("the request changed after it was approved; it needs approval again".into());
            return Ok(Pickup::Void);
        }
    }
    let max = match &rec.decision {
        Some(Decision::Approve { max_duration } | Decision::NeedsApproval { max_duration, .. }) => {
            max_duration.as_secs()
        }
        _ => return Err(Refusal::NotApproved),
    };
    let secs = rec.signed.duration_secs.min(max);
    Ok(Pickup::Grant {
        expires_at: now + TimeDelta::seconds(secs as i64),
    })
}

/// The agent created the user: the request is active with `grant`.
pub fn provisioned(rec: &mut RequestRecord, grant: GrantView) -> Result<(), Refusal> {
    move_to(rec, RequestStatus::Active)?;
    rec.grant = Some(grant);
    Ok(())
}

/// The agent could not create the user: the request failed, saying why.
pub fn failed(rec: &mut RequestRecord, why: String) -> Result<(), Refusal> {
    move_to(rec, RequestStatus::Failed)?;
    rec.message = Some(why);
    Ok(())
}

/// Checks that `who` may end the lease of `rec` now: its requester, or one who oversees it
/// (`oversees`: an approver of its resource, whether or not the lease needed approval, or an
/// admin); and that the lease is active.
pub fn may_end(rec: &RequestRecord, who: Actor<'_>, oversees: bool) -> Result<(), Refusal> {
    if who.name != rec.requester && !oversees {
        return Err(Refusal::MayNotEnd);
    }
    expect(rec, RequestStatus::Active)
}

/// The lease was revoked early: the sealed password is dropped.
pub fn revoked(rec: &mut RequestRecord) -> Result<(), Refusal> {
    move_to(rec, RequestStatus::Revoked)?;
    forget_password(rec);
    Ok(())
}

/// The lease was revoked at expiry: the sealed password is dropped, no retry is pending.
pub fn expired(rec: &mut RequestRecord) -> Result<(), Refusal> {
    move_to(rec, RequestStatus::Expired)?;
    forget_password(rec);
    rec.next_attempt_at = None;
    Ok(())
}

/// A revocation at expiry failed at `now`: the next attempt waits 2, 4, … up to 64 seconds.
/// True on the first failure (the one put on record).
pub fn revoke_failed(rec: &mut RequestRecord, now: DateTime<Utc>) -> bool {
    rec.revoke_attempts += 1;
    let wait = 1i64 << rec.revoke_attempts.min(6);
    rec.next_attempt_at = Some(now + TimeDelta::seconds(wait));
    rec.revoke_attempts == 1
}

fn forget_password(rec: &mut RequestRecord) {
    if let Some(g) = rec.grant.as_mut() {
        g.sealed_password.clear();
    }
}

/// The shortest time a lease must still have to be reused: the asked duration, at most a
/// minute (a one-off query needs seconds; an interactive session that outlives the lease is
/// ended at its expiry, as any other).
pub const REUSE_MIN_LEFT_SECS: u64 = 60;

/// Whether the live lease `rec` can serve a new query of `requester` on `resource` needing
/// `needed`, sealed to the same key: active, theirs, for that resource and key, a query
/// lease (a role's privileges are not known here) whose privileges cover every one needed,
/// and alive long enough (see [`REUSE_MIN_LEFT_SECS`]). A query the rules send to approvers
/// reuses only a lease that approvers granted: a locking read, which the rules count as a
/// write, never rides on an automatically granted read lease with the same privileges.
#[allow(clippy::too_many_arguments)]
pub fn covers(
    rec: &RequestRecord,
    requester: &str,
    resource: &p0_core::ResourceId,
    public_key: &str,
    needed: &p0_core::PermissionSet,
    needs_approval: bool,
    asked_secs: u64,
    now: DateTime<Utc>,
) -> bool {
    let min_left = TimeDelta::seconds(asked_secs.min(REUSE_MIN_LEFT_SECS) as i64);
    let approved_by_people = matches!(rec.decision, Some(Decision::NeedsApproval { .. }));
    (!needs_approval || approved_by_people)
        && rec.status == RequestStatus::Active
        && rec.requester == requester
        && &rec.signed.resource == resource
        && rec.public_key == public_key
        && matches!(rec.signed.intent, p0_core::Intent::Query(_))
        && rec
            .grant
            .as_ref()
            .is_some_and(|g| g.expires_at > now + min_left)
        && rec
            .permissions
            .as_ref()
            .is_some_and(|granted| needed.is_subset_of(granted))
}

#[cfg(test)]
mod tests {
    use super::super::approval::approve;
    use super::super::status::tests::{needs_two, record};
    use super::*;
    use p0_core::Username;
    use std::time::Duration;
    use RequestStatus::*;

    fn grant(expires_at: DateTime<Utc>) -> GrantView {
        GrantView {
            username: Username::new("p0_alice_0123456789").unwrap(),
            sealed_password: "sealed".into(),
            role: "p0r_x".into(),
            expires_at,
        }
    }

    fn approved(secs: u64) -> Decision {
        Decision::Approve {
            max_duration: Duration::from_secs(secs),
        }
    }

    #[test]
    fn the_lease_lasts_what_was_asked_capped_by_the_rule() {
        let now = Utc::now();
        let mut rec = record(Provisioning, approved(3600));
        assert_eq!(
            pickup(&mut rec, now),
            Ok(Pickup::Grant {
                expires_at: now + TimeDelta::seconds(600)
            })
        );
        let mut rec = record(Provisioning, approved(60));
        assert_eq!(
            pickup(&mut rec, now),
            Ok(Pickup::Grant {
                expires_at: now + TimeDelta::seconds(60)
            })
        );
        assert_eq!(rec.status, Provisioning);
    }

    #[test]
    fn a_denied_request_is_never_granted() {
        let deny = Decision::Deny {
            reason: "no".into(),
        };
        let mut rec = record(Provisioning, deny);
        assert_eq!(pickup(&mut rec, Utc::now()), Err(Refusal::NotApproved));
        let e = Refusal::NotApproved.to_string();
        assert_eq!(e, "request is not approved");
    }

    #[test]
    fn approvals_of_other_content_send_it_back_to_approval() {
        let g = vec!["dba".to_string()];
        let mut rec = record(PendingApproval, needs_two(false));
        let d = rec.digest();
        for who in ["bob", "carol"] {
            let actor = Actor {
                name: who,
                groups: &g,
            };
            approve(&mut rec, actor, &d, Utc::now()).unwrap();
        }
        assert_eq!(rec.status, Provisioning);
        rec.signed.reason = "changed".into();
        assert_eq!(pickup(&mut rec, Utc::now()), Ok(Pickup::Void));
        assert_eq!(rec.status, PendingApproval);
        assert!(rec.message.unwrap().contains("needs approval again"));
    }

    #[test]
    fn provisioning_ends_active_or_failed() {
        let mut rec = record(Provisioning, approved(60));
        provisioned(&mut rec, grant(Utc::now())).unwrap();
        assert_eq!(rec.status, Active);
        assert!(rec.grant.is_some());

        let mut rec = record(Provisioning, approved(60));
        failed(&mut rec, "agent down".into()).unwrap();
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (Failed, Some("agent down"))
        );
        assert_eq!(
            provisioned(&mut rec, grant(Utc::now())),
            Err(Refusal::WrongStatus(Failed))
        );
    }

    #[test]
    fn only_the_requester_or_an_overseer_ends_an_active_lease() {
        let none: &[String] = &[];
        let alice = Actor {
            name: "alice",
            groups: none,
        };
        let bob = Actor {
            name: "bob",
            groups: none,
        };
        let rec = record(Active, approved(60));
        assert!(may_end(&rec, alice, false).is_ok());
        assert!(may_end(&rec, bob, true).is_ok());
        assert_eq!(may_end(&rec, bob, false), Err(Refusal::MayNotEnd));
        // Who may end it is checked before where it is.
        let rec = record(Expired, approved(60));
        assert_eq!(may_end(&rec, bob, false), Err(Refusal::MayNotEnd));
        assert_eq!(
            may_end(&rec, alice, false),
            Err(Refusal::WrongStatus(Expired))
        );
    }

    #[test]
    fn an_ended_lease_keeps_no_sealed_password() {
        let mut rec = record(Provisioning, approved(60));
        provisioned(&mut rec, grant(Utc::now())).unwrap();
        revoked(&mut rec).unwrap();
        assert_eq!(rec.status, Revoked);
        assert_eq!(rec.grant.as_ref().unwrap().sealed_password, "");
        assert_eq!(revoked(&mut rec), Err(Refusal::WrongStatus(Revoked)));
        assert_eq!(expired(&mut rec), Err(Refusal::WrongStatus(Revoked)));

        let mut rec = record(Provisioning, approved(60));
        provisioned(&mut rec, grant(Utc::now())).unwrap();
        rec.next_attempt_at = Some(Utc::now());
        expired(&mut rec).unwrap();
        assert_eq!(rec.status, Expired);
        assert_eq!(rec.grant.as_ref().unwrap().sealed_password, "");
        assert_eq!(rec.next_attempt_at, None);
    }

    #[test]
    fn failed_revocations_back_off_to_a_minute() {
        let now = Utc::now();
        let mut rec = record(Active, approved(60));
        let waits: Vec<_> = (0..8)
            .map(|_| {
                let first = revoke_failed(&mut rec, now);
                (first, (rec.next_attempt_at.unwrap() - now).num_seconds())
            })
            .collect();
        assert_eq!(
            waits,
            vec![
                (true, 2),
                (false, 4),
                (false, 8),
                (false, 16),
                (false, 32),
                (false, 64),
                (false, 64),
                (false, 64)
            ]
        );
        assert_eq!(rec.status, Active, "a failed revocation leaves it active");
    }

    #[test]
    fn a_live_lease_is_reused_only_for_what_it_covers_of_its_own_requester_key_and_resource() {
        use p0_core::{ObjectRef, Permission, PermissionSet, Privilege, ResourceId};
        let now = Utc::now();
        let p = |priv_, t: &str| Permission::new(priv_, ObjectRef::table("sales", t));
        let granted: PermissionSet = [
            p(Privilege::Select, "orders"),
            p(Privilege::Update, "orders"),
        ]
        .into_iter()
        .collect();
        let mut lease = record(Active, approved(3600));
        lease.public_key = "KEY".into();
        lease.permissions = Some(granted);
        lease.grant = Some(grant(now + TimeDelta::seconds(600)));
        let pg = ResourceId::new("pg/app").unwrap();
        let read: PermissionSet = [p(Privilege::Select, "orders")].into_iter().collect();
        let reuse = |l: &RequestRecord, who: &str, r: &ResourceId, key: &str, n: &PermissionSet| {
            covers(l, who, r, key, n, false, 900, now)
        };
        assert!(reuse(&lease, "alice", &pg, "KEY", &read));
        // What the rules send to approvers rides only on a lease that approvers granted.
        assert!(!covers(&lease, "alice", &pg, "KEY", &read, true, 900, now));
        let mut approved_lease = lease.clone();
        approved_lease.decision = Some(needs_two(false));
        assert!(covers(
            &approved_lease,
            "alice",
            &pg,
            "KEY",
            &read,
            true,
            900,
            now
        ));
        // Another table, another requester, resource or key: no.
        let other: PermissionSet = [p(Privilege::Select, "customers")].into_iter().collect();
        assert!(!reuse(&lease, "alice", &pg, "KEY", &other));
        assert!(!reuse(&lease, "mallory", &pg, "KEY", &read));
        assert!(!reuse(
            &lease,
            "alice",
            &ResourceId::new("pg/other").unwrap(),
            "KEY",
            &read
        ));
        assert!(!reuse(&lease, "alice", &pg, "OLD", &read));
        // Too close to its end, or over: no.
        lease.grant = Some(grant(now + TimeDelta::seconds(30)));
        assert!(!reuse(&lease, "alice", &pg, "KEY", &read));
        assert!(
            covers(&lease, "alice", &pg, "KEY", &read, false, 10, now),
            "10 s asked, 30 s left"
        );
        lease.grant = Some(grant(now + TimeDelta::seconds(600)));
        for status in [
            PendingApproval,
            Provisioning,
            Denied,
            Failed,
            Revoked,
            Expired,
        ] {
            lease.status = status;
            assert!(!reuse(&lease, "alice", &pg, "KEY", &read), "{status:?}");
        }
        // A role's lease: its privileges are not known here.
        lease.status = Active;
        lease.signed.intent = p0_core::Intent::Role(p0_core::RoleName::new("reporting").unwrap());
        assert!(!reuse(&lease, "alice", &pg, "KEY", &read));
    }
}
