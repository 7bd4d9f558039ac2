//! The typed values that go into and come out of a provisioner.

use crate::secret::Password;
use crate::types::{PermissionSet, RequestId, ResourceId, RoleName, Username};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the new user gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Exactly these permissions, held by an ephemeral role shared per (resource, set).
    Permissions(PermissionSet),
    /// Membership of an existing role on the agent's allowlist.
    Role(RoleName),
}

/// One provisioning job: everything a provisioner needs, as typed values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionPlan {
    /// The request this serves; names the user.
    pub request_id: RequestId,
    /// Who the user is for (email or subject); slugged into the user name.
    pub requester: String,
    /// The target, part of the shared role's identity.
    pub resource: ResourceId,
    /// What to grant.
    pub access: Access,
    /// When the user stops working.
    pub expires_at: DateTime<Utc>,
}

/// What a successful provisioning returns. The password leaves only sealed.
#[derive(Debug)]
pub struct Credentials {
    /// The new user.
    pub username: Username,
    /// Its password.
    pub password: Password,
    /// The role it was granted.
    pub role: RoleName,
    /// The backstop expiry set in the database.
    pub expires_at: DateTime<Utc>,
}

/// What kind of account a provisioner manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A login user for one request.
    User,
    /// An ephemeral role holding grants.
    Role,
}

/// A user or role found in the database with p0's marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedAccount {
    /// Its name.
    pub name: String,
    /// User or role.
    pub kind: AccountKind,
    /// For users: when they expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// For users: the request they serve.
    pub request_id: Option<String>,
}

/// What revocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeReport {
    /// Whether the user existed (false when it was already gone: revocation is idempotent).
    pub user_dropped: bool,
    /// Sessions of the user that were terminated.
    pub sessions_terminated: u64,
    /// When the user could no longer log in and its sessions were ended: the step that
    /// matters at expiry, taken first (removing the user and its role follows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Whether the ephemeral role was dropped (no member left).
    pub role_dropped: bool,
    /// Objects the user owned or defined that were dropped or that need attention.
    pub notes: Vec<String>,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Expired users removed.
    pub removed: Vec<Username>,
    /// Expired users that could not be removed, with why.
    pub failed: Vec<SweepFailure>,
    /// Expired users that failed before and wait for their next attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<String>,
    /// Request claims forgotten, their time past ([`Claim`](super::Claim)).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub claims_forgotten: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An expired user the sweeper could not remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepFailure {
    /// The account.
    pub user: String,
    /// Why (one line).
    pub error: String,
    /// Failed attempts so far (1 for a sweep without a `Sweeper`).
    pub attempts: u32,
    /// When the `Sweeper` tries it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
}
