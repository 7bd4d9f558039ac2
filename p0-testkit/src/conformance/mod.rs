//! The provisioner conformance suite, for every back-end alike (as rustls runs one API suite
//! per crypto provider): a back-end supplies a [`Harness`] — how to start its database with
//! the fixture, build its provisioner, log in as a user and try an operation — and
//! [`conformance_tests!`](crate::conformance_tests) makes one named `#[test]` per case of
//! [`cases`], so a failure names its case and the others still run.
//!
//! ```ignore
//! mod postgres {
//!     p0_testkit::conformance_tests!(super::PgHarness);
//! }
//! ```
//!
//! The fixture every harness starts with: in [`Harness::schema`], a table `orders` and a
//! table `secrets`, each with one row, that only the admin can read. What a database cannot
//! do is a [`Capabilities`] flag whose documentation in the harness says why; the cases then
//! check what still holds rather than skip.

// A test suite reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cases;
pub mod refusals;

use async_trait::async_trait;
use p0_core::{DatabaseProvisioner, ObjectRef, PermissionSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a harness could not start its database (any error converts into it).
pub type Error = anyhow::Error;

/// How to start the database for one case.
#[derive(Debug, Clone, Copy, Default)]
pub struct Start {
    /// The server logs every statement it runs, where it can ([`Capabilities::statement_log`]).
    pub log_statements: bool,
}

/// What a back-end's database can be asked to show. Each `false` must be explained where the
/// harness sets it.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// A permission set is held by one shared role, dropped with its last member
    /// (`RevokeReport::role_dropped`, and one more managed account while a user holds it).
    pub shared_roles: bool,
    /// The database refuses a login past the expiry by itself. Without it, the expiry case
    /// runs the sweeper (the only backstop) before the login must fail.
    pub expiry_in_database: bool,
    /// How long past the expiry a login may still succeed (a scheduler's resolution).
    pub expiry_grace: Duration,
    /// Every table name can be granted, quoted. Without it, a name the database cannot
    /// express must be refused, and the hostile-name case also grants the hostile name
    /// without its spaces.
    pub any_name: bool,
    /// The server can log every statement ([`Harness::server_log`]).
    pub statement_log: bool,
    /// A user can own or define objects that outlive it ([`Harness::leave_owned_object`]).
    pub owned_objects: bool,
    /// Something outside p0 can leave a user that revocation cannot remove
    /// ([`Harness::block_removal`]).
    pub blockable_removal: bool,
    /// Request claims are removed by the sweeper's `forget_claims` (rather than expired by
    /// the database itself, which returns 0 there).
    pub claims_forgotten_by_sweep: bool,
}

/// An operation a logged-in user tries.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Op<'a> {
    /// The smallest thing any session may do (`SELECT 1`): is the session alive?
    Ping,
    /// Read the rows of a table of the fixture's schema.
    Read(&'a str),
    /// Delete the rows of a table of the fixture's schema.
    Delete(&'a str),
}

/// Why an operation failed.
#[derive(Debug, Clone)]
pub enum OpError {
    /// The database refused it for lack of a privilege.
    Denied(String),
    /// Anything else (a closed session, a missing object).
    Failed(String),
}

/// A logged-in connection.
#[async_trait]
pub trait Session: Send {
    /// Tries `op`.
    async fn run(&mut self, op: Op<'_>) -> Result<(), OpError>;
}

/// One back-end's way into the suite.
#[async_trait]
pub trait Harness: Send + Sync + Sized + 'static {
    /// Starts a fresh database with the fixture.
    async fn start(options: Start) -> Result<Self, Error>;

    /// What this database can show.
    fn capabilities(&self) -> Capabilities;

    /// The provisioner under test, with a guard policy for the fixture's database whose
    /// service user is [`service_user`](Self::service_user) and whose role allowlist is
    /// empty.
    async fn provisioner(&self) -> Arc<dyn DatabaseProvisioner>;

    /// The schema (MySQL: database) of the fixture's tables.
    fn schema(&self) -> &str;

    /// The table `name` of the fixture's schema.
    fn table(&self, name: &str) -> ObjectRef {
        ObjectRef::table(self.schema(), name)
    }

    /// What a plan needs to read `table` (with CONNECT and USAGE where the engine has them).
    fn read(&self, table: &str) -> PermissionSet;

    /// The agent's own user.
    fn service_user(&self) -> &str;

    /// Two system schemas: the catalog, and another one.
    fn system_schemas(&self) -> [&str; 2];

    /// Logs in as `user`.
    async fn login(&self, user: &str, password: &str) -> Result<Box<dyn Session>, String>;

    /// A session of the admin's.
    async fn admin(&self) -> Box<dyn Session>;

    /// Creates table `name` in the fixture's schema with one row.
    fn create_table(&self, name: &str);

    /// Accounts (users and roles) whose name starts with `p0`, as the admin sees them.
    fn managed_accounts(&self) -> usize;

    /// Creates `name`, an account p0 did not create, that may log in.
    fn create_foreign_user(&self, name: &str);

    /// The server's statement log so far (only called with [`Capabilities::statement_log`]).
    fn server_log(&self) -> String;

    /// Creates what the refusal case refuses: a SECURITY DEFINER function `definer()` in the
    /// fixture's schema, where the engine has one, and a role `analyst` off the allowlist.
    fn prepare_refusals(&self);

    /// Makes `user` own or define an object; returns the note revocation must report
    /// (only called with [`Capabilities::owned_objects`]).
    fn leave_owned_object(&self, user: &str) -> String;

    /// Leaves `user` so that revocation fails (only called with
    /// [`Capabilities::blockable_removal`]).
    fn block_removal(&self, user: &str);
}

/// Runs one case on a runtime of its own (four worker threads).
pub fn run(case: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(case)
}

/// Every case of the suite, by name: the functions of [`cases`].
pub const CASES: &[&str] = &[
    "grants_exactly_the_plan",
    "revoke_ends_sessions_removes_everything_twice",
    "revoke_refuses_users_p0_did_not_create",
    "expired_users_cannot_log_in",
    "logs_hold_no_password",
    "sixteen_concurrent_loops_are_clean",
    "concurrent_revocations_of_one_user_agree",
    "hostile_names_stay_quoted",
    "revoke_reports_objects_the_user_owned_or_defined",
    "a_sweep_goes_on_past_a_user_it_cannot_remove",
    "a_request_is_provisioned_once_even_after_its_user_is_gone",
];

/// One `#[test]` per conformance case for the harness type given, named after the case:
/// `p0_testkit::conformance_tests!(MyHarness);` inside a module of its own.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:ty) => {
        $crate::conformance_tests!(@cases $harness;
            grants_exactly_the_plan,
            revoke_ends_sessions_removes_everything_twice,
            revoke_refuses_users_p0_did_not_create,
            expired_users_cannot_log_in,
            logs_hold_no_password,
            sixteen_concurrent_loops_are_clean,
            concurrent_revocations_of_one_user_agree,
            hostile_names_stay_quoted,
            revoke_reports_objects_the_user_owned_or_defined,
            a_sweep_goes_on_past_a_user_it_cannot_remove,
            a_request_is_provisioned_once_even_after_its_user_is_gone,
        );
    };
    (@cases $harness:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run($crate::conformance::cases::$case::<$harness>());
            }
        )*
        /// Every plan the guard refuses, one test each.
        mod refused {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_tests!(@refusals $harness;
                system_catalog, information_schema, another_system_schema, missing_table,
                hostile_missing_name, name_too_long, privilege_on_the_wrong_kind,
                another_database, create, security_definer_function, the_service_users_role,
                a_role_not_on_the_allowlist, expiry_in_the_past, expiry_too_far_out, empty_plan,
            );
        }
    };
    (@refusals $harness:ty; $($which:ident),* $(,)?) => {
        $(
            #[test]
            fn $which() {
                $crate::conformance::run($crate::conformance::refusals::refused::<$harness>(
                    $crate::conformance::refusals::Refusal::$which,
                ));
            }
        )*
    };
}
