//! What a database must do for p0, and nothing more. Everything every database needs — names,
//! passwords, the generic guard, the marker, tracing, refusing unmarked users, the sweeper — is
//! done once around it by [`Managed`](super::Managed), as Vault's database plugins implement
//! `NewUser`/`DeleteUser` and its middleware wraps them all alike.

use super::marker::{Claim, Lookup, Marker};
use super::plan::{Access, ManagedAccount, RevokeReport};
use crate::error::ProvisionError;
use crate::guard::GuardPolicy;
use crate::secret::Password;
use crate::types::{RoleName, Username};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One user to create, as the wrapper prepared it: named, with a fresh password, the role it
/// joins and the marker to record. Only the wrapper makes one (`#[non_exhaustive]`).
#[derive(Debug)]
#[non_exhaustive]
pub struct NewUser {
    /// The user's name (`p0_<slug>_<hash>`, at most [`Backend::MAX_USERNAME_LEN`] bytes).
    pub username: Username,
    /// Its password, from the OS CSPRNG. Send the database a verifier or hash where it takes
    /// one, and never log it.
    pub password: Password,
    /// The role the user joins: p0's shared role for a permission set (`p0r_<hash>`), or the
    /// allowlisted role requested.
    pub role: RoleName,
    /// What to grant, already past the generic guard.
    pub access: Access,
    /// When the user stops working.
    pub expires_at: DateTime<Utc>,
    /// The marker to record on the user; a new shared role records [`Marker::role`].
    pub marker: Marker,
}

/// A database p0 can provision users in: create a user with its grants, remove one, and say
/// which accounts it manages. Wrap it in [`Managed`](super::Managed) to get a
/// [`DatabaseProvisioner`](super::DatabaseProvisioner).
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// The longest user name the database accepts.
    const MAX_USERNAME_LEN: usize;

    /// Whether the database refuses logins after the expiry by itself (PostgreSQL `VALID
    /// UNTIL`). Without it the back-end installs another backstop, or the sweeper is the only
    /// one.
    const VALID_UNTIL: bool;

    /// Whether database-wide data grants exist (MySQL `SELECT ON db.*`): the generic guard then
    /// leaves database and schema entries to [`inspect`](Self::inspect), which must check them.
    const DATABASE_WIDE_GRANTS: bool = false;

    /// What inspection hands to creation: the open transaction or locked connection, the
    /// grants as rendered from the catalog. Only [`inspect`](Self::inspect) makes one, so no
    /// user is created without it.
    type Checked: Send;

    /// The engine's half of the escalation guard, against the database as it is now and in
    /// the session creation will use: the objects exist and are what the plan says, a
    /// pre-existing role reaches nothing privileged, no definer routine is reachable, the
    /// user's and role's names are not taken by anything p0 did not create. The wrapper has
    /// already run [`GuardPolicy`]'s checks; `policy` is there for the engine's own.
    async fn inspect(
        &self,
        policy: &GuardPolicy,
        user: &NewUser,
    ) -> Result<Self::Checked, ProvisionError>;

    /// Creates the user with exactly the checked grants (and the shared role when it is new),
    /// recording `user.marker`, all or nothing.
    async fn create_user(
        &self,
        user: &NewUser,
        checked: Self::Checked,
    ) -> Result<(), ProvisionError>;

    /// What is under `name`: nothing, an account p0 did not create, or a marked one.
    async fn lookup(&self, name: &str) -> Result<Lookup, ProvisionError>;

    /// Disables the user, ends its sessions and removes it with what it holds, and its shared
    /// role once no member is left. Called only for a user whose [`lookup`](Self::lookup)
    /// found p0's user marker; succeeds when it is gone meanwhile.
    async fn delete_user(
        &self,
        username: &Username,
        marker: &Marker,
    ) -> Result<RevokeReport, ProvisionError>;

    /// Every marked user and role that still exists.
    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError>;

    /// Records `claim` durably, in the database, atomically with any other claim of the same
    /// request: `true` when this call recorded it, `false` when the request was claimed
    /// before (by any process, at any time the claim is kept). The wrapper claims every
    /// request before it creates its user, so a request is provisioned once, even after its
    /// user was revoked and by agents that share nothing but the database.
    async fn claim(&self, claim: &Claim) -> Result<bool, ProvisionError>;

    /// Removes the claim of `request`, whose user was not created (creation failed), so the
    /// request may be tried again.
    async fn release(&self, request: &str) -> Result<(), ProvisionError>;

    /// Removes the claims whose `until` is at or before `now` (the sweeper calls it); how many.
    /// A store that expires entries by itself may return 0.
    async fn forget_claims(&self, now: DateTime<Utc>) -> Result<u64, ProvisionError>;

    /// Whether a failed inspection or creation is worth another attempt (serialization
    /// failures, deadlocks). The wrapper retries with backoff.
    fn is_transient(&self, _error: &ProvisionError) -> bool {
        false
    }
}
