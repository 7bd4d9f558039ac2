//! The wrapper every back-end runs inside: what p0 does around any database, once.

use super::backend::{Backend, NewUser};
use super::marker::{Claim, Lookup, Marker};
use super::naming::{role_name_for, username_for};
use super::plan::{Access, AccountKind, Credentials, ManagedAccount, ProvisionPlan, RevokeReport};
use super::provisioner::DatabaseProvisioner;
use crate::error::{GuardError, ProvisionError};
use crate::guard::GuardPolicy;
use crate::secret::Password;
use crate::types::{ObjectKind, PermissionSet, Username};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::Instrument;

/// Attempts at a transient failure before giving up.
const MAX_ATTEMPTS: u32 = 8;

/// A [`Backend`] made into a [`DatabaseProvisioner`]. For every back-end alike it refuses what
/// the [`GuardPolicy`] refuses, names the user ([`username_for`]) and its shared role
/// ([`role_name_for`]), generates the password, has the back-end inspect the plan and then
/// create exactly it with p0's [`Marker`], retries transient failures, refuses to revoke
/// anything without the marker, and traces each step (names only, never a secret). The
/// sweeper comes with [`DatabaseProvisioner::sweep`].
pub struct Managed<B> {
    backend: B,
    policy: GuardPolicy,
}

impl<B: Backend> std::fmt::Debug for Managed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Managed<B> {
    /// Wraps `backend`; `policy` is the agent's own guard configuration.
    pub fn new(backend: B, policy: GuardPolicy) -> Self {
        Self { backend, policy }
    }

    /// The wrapped back-end.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The guard policy in force.
    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    /// The generic half of the guard, on typed values, before anything is asked of the
    /// database.
    fn check_plan(&self, plan: &ProvisionPlan) -> Result<(), ProvisionError> {
        self.check_access(&plan.access)?;
        self.policy.check_expiry(plan.expires_at, Utc::now())?;
        Ok(())
    }

    /// The guard's checks of what is asked (not of when it ends).
    fn check_access(&self, access: &Access) -> Result<(), ProvisionError> {
        match access {
            Access::Permissions(set) if B::DATABASE_WIDE_GRANTS => {
                // Database-wide entries are the back-end's to check; the rest are the guard's.
                if set.is_empty() {
                    return Err(GuardError::Empty.into());
                }
                let objects = without_database_grants(set);
                if !objects.is_empty() {
                    self.policy.check_permissions(&objects)?;
                }
            }
            Access::Permissions(set) => self.policy.check_permissions(set)?,
            Access::Role(role) => self.policy.check_role(role)?,
        }
        Ok(())
    }

    /// Claims the request for good, then creates its user; a claim whose user was not
    /// created is released, so the request may be tried again.
    async fn claim_and_create(
        &self,
        plan: &ProvisionPlan,
        user: &NewUser,
    ) -> Result<(), ProvisionError> {
        let claim = Claim::new(plan.request_id.to_string());
        if !self.backend.claim(&claim).await? {
            return Err(ProvisionError::Replayed(claim.request));
        }
        let created = self.create(user).await;
        if let Err(e) = &created {
            // Released only when the user surely does not exist: refused before anything was
            // sent, or failed as the database itself reported (which undid the statement),
            // and absent now. A lost connection keeps the claim: the database may still
            // commit what it was sent.
            let answered = !matches!(e, ProvisionError::Database(_)) || e.answered_by_database();
            if !answered {
                tracing::warn!("the request's claim stays (the database may have created its user): it cannot be tried again");
            } else if let Ok(Lookup::Absent) = self.backend.lookup(user.username.as_str()).await {
                if let Err(e) = self.backend.release(&claim.request).await {
                    tracing::warn!(error = %e, "the request's claim stays: it cannot be tried again");
                }
            }
        }
        created
    }

    async fn create(&self, user: &NewUser) -> Result<(), ProvisionError> {
        // The request id names the user: an account under that name means a replay.
        if self.backend.lookup(user.username.as_str()).await? != Lookup::Absent {
            return Err(GuardError::ExistingRole(user.username.to_string()).into());
        }
        let mut attempt = 0;
        loop {
            let result = match self.backend.inspect(&self.policy, user).await {
                Ok(checked) => self.backend.create_user(user, checked).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if self.backend.is_transient(&e) && attempt + 1 < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "provision retry");
                    attempt += 1;
                    backoff(attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl<B: Backend> DatabaseProvisioner for Managed<B> {
    fn supports_valid_until(&self) -> bool {
        B::VALID_UNTIL
    }

    fn max_username_len(&self) -> usize {
        B::MAX_USERNAME_LEN
    }

    fn precheck(&self, access: &Access) -> Result<(), ProvisionError> {
        self.check_access(access)
    }

    async fn provision(&self, plan: &ProvisionPlan) -> Result<Credentials, ProvisionError> {
        self.check_plan(plan)?;
        let username = username_for(&plan.requester, &plan.request_id, B::MAX_USERNAME_LEN);
        let role = match &plan.access {
            Access::Permissions(set) => role_name_for(&plan.resource, set),
            Access::Role(role) => role.clone(),
        };
        let marker = Marker {
            kind: AccountKind::User,
            request: Some(plan.request_id.to_string()),
            role: Some(role.to_string()),
            expires: Some(plan.expires_at),
            claimed: true,
        };
        let user = NewUser {
            username,
            password: Password::generate(),
            role,
            access: plan.access.clone(),
            expires_at: plan.expires_at,
            marker,
        };
        let span = tracing::info_span!("provision", user = %user.username, role = %user.role, request = %plan.request_id);
        self.claim_and_create(plan, &user)
            .instrument(span.clone())
            .await?;
        span.in_scope(|| tracing::info!("provisioned"));
        let NewUser {
            username,
            password,
            role,
            expires_at,
            ..
        } = user;
        Ok(Credentials {
            username,
            password,
            role,
            expires_at,
        })
    }

    async fn revoke(&self, username: &Username) -> Result<RevokeReport, ProvisionError> {
        let span = tracing::info_span!("revoke", user = %username);
        async {
            let marker = match self.backend.lookup(username.as_str()).await? {
                Lookup::Absent => return Ok(RevokeReport::default()),
                Lookup::Managed(m) if m.kind == AccountKind::User => m,
                _ => return Err(ProvisionError::NotManaged(username.to_string())),
            };
            // A user made before claims existed: its request is claimed before it goes, so
            // that it cannot be provisioned again afterwards.
            let mut unclaimed = None;
            if let (false, Some(request)) = (marker.claimed, marker.request.clone()) {
                let claim = Claim::new(request);
                if let Err(e) = self.backend.claim(&claim).await {
                    // The user itself may fill its request's claim ids (PostgreSQL large
                    // objects): its removal drops what it owns, so the claim is tried again
                    // after it.
                    tracing::warn!(error = %e, "the request of a user made before claims could not be claimed yet");
                    unclaimed = Some(claim);
                }
            }
            // A back-end succeeds when another revocation (the sweeper's and the reaper's
            // meet at expiry) removed the user meanwhile, and fails when anything is left:
            // a failure here is never taken for "gone".
            let mut report = self.backend.delete_user(username, &marker).await?;
            if let Some(claim) = unclaimed {
                if let Err(e) = self.backend.claim(&claim).await {
                    tracing::error!(error = %e, request = %claim.request, "the request of a revoked user made before claims is not claimed: a replay of it within eight days is not refused");
                }
            }
            // A back-end that does not say when it disabled the user did so by now.
            report.disabled_at.get_or_insert_with(Utc::now);
            tracing::info!(
                sessions = report.sessions_terminated,
                role_dropped = report.role_dropped,
                "revoked"
            );
            Ok(report)
        }
        .instrument(span)
        .await
    }

    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
        self.backend.list_managed().await
    }

    fn claims_requests(&self) -> bool {
        true
    }

    async fn forget_claims(&self, now: DateTime<Utc>) -> Result<u64, ProvisionError> {
        self.backend.forget_claims(now).await
    }

    async fn serves_request(&self, plan: &ProvisionPlan) -> Result<bool, ProvisionError> {
        // The request id names the user: one lookup, whatever the number of live leases.
        let name = username_for(&plan.requester, &plan.request_id, B::MAX_USERNAME_LEN);
        Ok(self.backend.lookup(name.as_str()).await? != Lookup::Absent)
    }
}

/// MySQL has no CONNECT or schema USAGE: an extraction never asks for them, and the guard
/// checks table-level objects against the allowed databases.
fn without_database_grants(set: &PermissionSet) -> PermissionSet {
    set.iter()
        .filter(|p| !matches!(p.object.kind, ObjectKind::Database | ObjectKind::Schema))
        .collect()
}

/// Sleeps before attempt `attempt`: 10 ms doubling up to 640 ms, with as much jitter.
pub(crate) async fn backoff(attempt: u32) {
    use rand::Rng;
    let base = 10u64 << attempt.min(6);
    let jitter = rand::thread_rng().gen_range(0..=base);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}
