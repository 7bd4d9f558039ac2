//! What an agent calls: the provisioner trait, and one sweep over its managed users.

use super::plan::{
    AccountKind, Credentials, ManagedAccount, ProvisionPlan, RevokeReport, SweepFailure,
    SweepReport,
};
use crate::error::ProvisionError;
use crate::types::Username;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Creates users and roles with exactly the planned grants, and removes them.
///
/// The shipped implementations are [`Managed`](super::Managed) around a
/// [`Backend`](super::Backend): the wrapper names users, generates passwords, runs the
/// escalation guard, records the marker and refuses unmarked users, so a new database only
/// implements its [`Backend`](super::Backend). Implementations render all SQL themselves from
/// typed values and make [`revoke`](Self::revoke) idempotent.
#[async_trait]
pub trait DatabaseProvisioner: Send + Sync {
    /// Whether the database enforces an expiry on login itself (PostgreSQL `VALID UNTIL`).
    /// Without it the provisioner installs another backstop (MySQL: a one-shot event).
    fn supports_valid_until(&self) -> bool;

    /// The longest user name the database accepts.
    fn max_username_len(&self) -> usize;

    /// Whether the escalation guard would refuse `access`, asked before anyone approves it
    /// (the agent's explain): the checks that need no database. [`provision`](Self::provision)
    /// runs them again, with the rest. The default refuses nothing.
    fn precheck(&self, access: &super::Access) -> Result<(), ProvisionError> {
        let _ = access;
        Ok(())
    }

    /// Creates the user and its grants, in one transaction, after the escalation guard.
    async fn provision(&self, plan: &ProvisionPlan) -> Result<Credentials, ProvisionError>;

    /// Disables the user, ends its sessions, removes it and its unshared role, with what they
    /// own or were granted in any database of the server. Succeeds when the user is already
    /// gone; refuses users p0 did not create.
    async fn revoke(&self, username: &Username) -> Result<RevokeReport, ProvisionError>;

    /// Every user and role that this provisioner created and that still exists.
    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError>;

    /// Whether a user made for `plan`'s request still exists: the agent's durable replay
    /// check, which survives restarts and is shared by every agent instance. This default
    /// reads every managed account; [`Managed`](super::Managed) looks up the one name the
    /// request maps to.
    async fn serves_request(&self, plan: &ProvisionPlan) -> Result<bool, ProvisionError> {
        let id = plan.request_id.as_str();
        Ok(self
            .list_managed()
            .await?
            .iter()
            .any(|a| a.request_id.as_deref() == Some(id)))
    }

    /// Whether [`provision`](Self::provision) claims each request durably and refuses one
    /// claimed before ([`ProvisionError::Replayed`]), as [`Managed`](super::Managed) does:
    /// the agent then needs no [`serves_request`](Self::serves_request) lookup of its own.
    fn claims_requests(&self) -> bool {
        false
    }

    /// Forgets the request claims kept until `now` or earlier ([`Claim`](super::Claim)); how
    /// many. The default keeps none.
    async fn forget_claims(&self, now: DateTime<Utc>) -> Result<u64, ProvisionError> {
        let _ = now;
        Ok(0)
    }

    /// Revokes every managed user whose expiry is at or before `now`, going on past any it
    /// cannot remove: those are reported with their error, and the next sweep tries them
    /// again ([`Sweeper`](super::Sweeper) spaces those attempts out).
    async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, ProvisionError> {
        sweep_once(self, now, |_| true).await
    }
}

/// One pass over the managed users: revokes each expired one that `ready` accepts, goes on
/// past failures.
pub(crate) async fn sweep_once<P: DatabaseProvisioner + ?Sized>(
    provisioner: &P,
    now: DateTime<Utc>,
    ready: impl Fn(&str) -> bool,
) -> Result<SweepReport, ProvisionError> {
    let mut report = SweepReport::default();
    // Claims are kept for days after their users are gone; one that cannot be forgotten now
    // is forgotten by a later sweep.
    match provisioner.forget_claims(now).await {
        Ok(n) => report.claims_forgotten = n,
        Err(e) => tracing::warn!(error = %e, "sweeper could not forget expired request claims"),
    }
    for account in provisioner.list_managed().await? {
        if account.kind != AccountKind::User || account.expires_at.is_none_or(|e| e > now) {
            continue;
        }
        if !ready(&account.name) {
            report.deferred.push(account.name);
            continue;
        }
        let result = match Username::new(account.name.clone()) {
            Ok(user) => provisioner.revoke(&user).await.map(|_| user),
            Err(e) => Err(e.into()),
        };
        match result {
            // Gone now, whoever removed its last trace (MariaDB's expiry event may have
            // dropped the account itself).
            Ok(user) => report.removed.push(user),
            Err(e) => {
                let error = e.to_string().replace('\n', " ");
                tracing::error!(user = %account.name, error = %error, "sweeper could not remove an expired user; it stays until a later sweep removes it");
                report.failed.push(SweepFailure {
                    user: account.name,
                    error,
                    attempts: 1,
                    retry_at: None,
                });
            }
        }
    }
    Ok(report)
}
