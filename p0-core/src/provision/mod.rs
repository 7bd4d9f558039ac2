//! Creating and removing ephemeral database users.
//!
//! A database implements the small [`Backend`] trait (inspect and create a user, remove one,
//! look names up, list what it manages); [`Managed`] wraps every back-end alike with what p0
//! does around it — naming, passwords, the generic guard, the marker, tracing, refusing
//! unmarked users and the sweeper — and is the [`DatabaseProvisioner`] agents call.
//! [`PostgresProvisioner`] and [`MySqlProvisioner`] are the two shipped back-ends wrapped.

mod backend;
mod managed;
mod marker;
#[cfg(feature = "mysql")]
mod mysql;
mod naming;
mod plan;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
mod provisioner;
mod sweep;

pub use backend::{Backend, NewUser};
pub use managed::Managed;
pub use marker::{Claim, Lookup, Marker, CLAIM, CLAIM_SECS, MARKER};
#[cfg(feature = "mysql")]
pub use mysql::{MySqlBackend, MySqlChecked, MySqlProvisioner};
pub use naming::{role_name_for, username_for};
pub use plan::{
    Access, AccountKind, Credentials, ManagedAccount, ProvisionPlan, RevokeReport, SweepFailure,
    SweepReport,
};
#[cfg(feature = "postgres")]
pub use postgres::{
    reachable_definer_functions, reachable_definer_functions_at, render_grant, scram_verifier,
    PgBackend, PgChecked, PostgresProvisioner, SCRAM_ITERATIONS,
};
pub use provisioner::DatabaseProvisioner;
pub use sweep::Sweeper;
