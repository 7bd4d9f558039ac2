//! Creating and removing ephemeral database users.

mod mysql;
mod naming;
mod pg_guard;
mod postgres;
mod sweep;

pub use mysql::MySqlProvisioner;
pub use naming::{role_name_for, username_for};
pub use pg_guard::{reachable_definer_functions, reachable_definer_functions_at};
pub use postgres::PostgresProvisioner;
pub use sweep::{SweepFailure, SweepReport, Sweeper};

use crate::error::ProvisionError;
use crate::secret::Password;
use crate::types::{PermissionSet, RequestId, ResourceId, RoleName, Username};
use async_trait::async_trait;
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
    /// Whether the ephemeral role was dropped (no member left).
    pub role_dropped: bool,
    /// Objects the user owned or defined that were dropped or that need attention.
    pub notes: Vec<String>,
}

/// Creates users and roles with exactly the planned grants, and removes them.
///
/// Implementations run the escalation guard inside [`provision`](Self::provision), render all
/// SQL themselves from typed values, and make [`revoke`](Self::revoke) idempotent.
#[async_trait]
pub trait DatabaseProvisioner: Send + Sync {
    /// Whether the database enforces an expiry on login itself (PostgreSQL `VALID UNTIL`).
    /// Without it the provisioner installs another backstop (MySQL: a one-shot event).
    fn supports_valid_until(&self) -> bool;

    /// The longest user name the database accepts.
    fn max_username_len(&self) -> usize;

    /// Creates the user and its grants, in one transaction, after the escalation guard.
    async fn provision(&self, plan: &ProvisionPlan) -> Result<Credentials, ProvisionError>;

    /// Disables the user, ends its sessions, removes it and its unshared role, with what they
    /// own or were granted in any database of the server. Succeeds when the user is already
    /// gone; refuses users p0 did not create.
    async fn revoke(&self, username: &Username) -> Result<RevokeReport, ProvisionError>;

    /// Every user and role that this provisioner created and that still exists.
    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError>;

    /// Revokes every managed user whose expiry is at or before `now`, going on past any it
    /// cannot remove: those are reported with their error, and the next sweep tries them
    /// again ([`Sweeper`] spaces those attempts out).
    async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, ProvisionError> {
        sweep::sweep_once(self, now, |_| true).await
    }
}

/// The marker p0 writes on every user and role it creates (PostgreSQL: the role's comment).
pub(crate) const MARKER: &str = "p0-managed:";

/// The content of the marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub kind: AccountKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
}

impl Marker {
    pub(crate) fn render(&self) -> String {
        format!(
            "{MARKER}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    pub(crate) fn parse(text: &str) -> Option<Marker> {
        serde_json::from_str(text.strip_prefix(MARKER)?).ok()
    }
}
