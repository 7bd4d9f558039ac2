//! PostgreSQL: one database through an admin connection of the agent's own. Users and roles
//! carry p0's marker as their comment; creation runs in one transaction, under advisory
//! locks only where statements conflict (see `conn::Admin`).

mod claims;
mod conn;
mod grains;
mod inspect;
mod render;
mod revoke;
mod scram;

pub use inspect::{reachable_definer_functions, reachable_definer_functions_at};
pub use render::render_grant;
pub use scram::{scram_verifier, SCRAM_ITERATIONS};

use crate::error::{GuardError, ProvisionError};
use crate::guard::GuardPolicy;
use crate::provision::backend::{Backend, NewUser};
use crate::provision::managed::Managed;
use crate::provision::marker::{Claim, Lookup, Marker};
use crate::provision::plan::{Access, AccountKind, ManagedAccount, RevokeReport};
use crate::types::Username;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use conn::{exec, has_sqlstate, is_retryable, marker_of, role_dropped_meanwhile, Admin};
use sqlx::postgres::{PgConnectOptions, PgPool};
use std::str::FromStr;

/// The PostgreSQL [`Backend`]. The admin user needs CREATEROLE (or superuser), membership in
/// `pg_signal_backend` to end sessions, and the right to grant what it hands out.
pub struct PgBackend {
    admin: Admin,
    database: String,
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's options hold the admin password: never show them.
        f.debug_struct("PgBackend")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// Provisions users in one PostgreSQL database: [`PgBackend`] inside the core's wrapper.
pub type PostgresProvisioner = Managed<PgBackend>;

impl Managed<PgBackend> {
    /// Connects to `url` (the agent's admin connection). The policy's first database must be
    /// the one the URL names.
    pub async fn connect(url: &str, policy: GuardPolicy) -> Result<Self, ProvisionError> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|_| ProvisionError::Database("invalid PostgreSQL connection URL".into()))?;
        let opts = conn::session_settings(opts);
        // The first connection is checked here, so a refusal is told as it is (the pool
        // would retry it until its timeout); every later one when the pool opens it.
        {
            use sqlx::Connection;
            let mut first = sqlx::PgConnection::connect_with(&opts).await?;
            let checked = conn::check_session(&mut first).await;
            let _ = first.close().await;
            checked?;
        }
        let pool = crate::provision::pool::admin_pool()
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn::check_session(conn)
                        .await
                        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))
                })
            })
            .connect_with(opts)
            .await?;
        Self::from_pool(pool, policy).await
    }

    /// Uses a pool whose connections carry p0's session settings.
    async fn from_pool(pool: PgPool, policy: GuardPolicy) -> Result<Self, ProvisionError> {
        let database: String = sqlx::query_scalar("SELECT pg_catalog.current_database()::text")
            .fetch_one(&pool)
            .await?;
        policy.check_database(&database)?;
        let backend = PgBackend {
            admin: Admin::new(pool),
            database,
        };
        let me = Managed::new(backend, policy);
        match me.databases_open_to_public().await {
            Ok(open) if !open.is_empty() => tracing::warn!(
                databases = %open.join(", "),
                "ephemeral users can connect to these databases outside their grant: PUBLIC holds CONNECT there. \
                 p0 does not change others' grants (revocation cleans every database either way); \
                 to deny it, `REVOKE CONNECT ON DATABASE <name> FROM PUBLIC` and grant CONNECT to the roles that need it"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot list the databases open to PUBLIC"),
        }
        Ok(me)
    }

    /// Databases outside this agent's configured ones that any user, ephemeral ones included,
    /// may connect to because PUBLIC holds CONNECT there (PostgreSQL's default, `template1`
    /// and `postgres` among them). PostgreSQL has no per-role exception to a PUBLIC grant and
    /// `pg_hba.conf` is out of the agent's reach, so p0 reports them rather than revoke
    /// others' grants; revocation removes what a user left in any of them.
    pub async fn databases_open_to_public(&self) -> Result<Vec<String>, ProvisionError> {
        Ok(sqlx::query_scalar(
            "SELECT datname::text FROM pg_catalog.pg_database WHERE datallowconn \
               AND pg_catalog.has_database_privilege('public', oid, 'CONNECT') \
               AND datname <> ALL($1) ORDER BY 1",
        )
        .bind(&self.policy().databases)
        .fetch_all(&self.backend().admin.pool)
        .await?)
    }

    /// The database this provisioner manages.
    pub fn database(&self) -> &str {
        &self.backend().database
    }
}

/// What the error of [`still_ours_sql`] says (PostgreSQL's plain SQL has no RAISE: a cast of
/// this text to an integer fails, at run time only, because the text depends on the row).
const NOT_OURS: &str = "p0-not-ours:";

/// A statement that fails when `role` exists without p0's role marker (any marker of kind
/// `role`, as [`Marker::parse`] reads it). When it is absent the statement returns nothing and
/// the GRANT after it fails (42704, retried).
fn still_ours_sql(role: &str) -> Result<String, ProvisionError> {
    let name = crate::sql::pg::literal(role)?;
    Ok(format!(
        "SELECT ('{NOT_OURS}' OPERATOR(pg_catalog.||) r.rolname::pg_catalog.text)::pg_catalog.int4 \
         FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) {name} \
           AND NOT COALESCE(pg_catalog.shobj_description(r.oid, 'pg_authid') \
             OPERATOR(pg_catalog.~) '^{MARKER}\\{{.*\"kind\":\"role\"', false)",
        MARKER = crate::provision::marker::MARKER
    ))
}

impl PgBackend {
    /// Creates the user and, under the ACL lock and the role's exclusive lock, the shared role
    /// it joins (unless another provisioning of the same set created it meanwhile).
    async fn create_with_role(
        &self,
        conn: &mut sqlx::PgConnection,
        user: &NewUser,
        create: &str,
        join: &str,
        targets: &[String],
    ) -> Result<(), ProvisionError> {
        let mut tx = Admin::begin_on(conn).await?;
        // The login user first, under no lock: here the server checks the verifier.
        exec(&mut tx, create).await?;
        self.admin.lock_acls(&mut tx).await?;
        let role = user.role.as_str();
        self.admin.lock_role(&mut tx, role).await?;
        match marker_of(&mut tx, role).await? {
            Lookup::Managed(m) if m.kind == AccountKind::Role => {}
            Lookup::Absent => {
                grains::create_role(&mut tx, &self.database, &user.role, targets).await?
            }
            _ => return Err(GuardError::ExistingRole(role.to_string()).into()),
        }
        exec(&mut tx, join).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What inspection leaves for creation: the connection it read on, and the shared role's
/// grants when the role is to be created.
pub struct PgChecked {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    new_role: Option<Vec<String>>,
}

impl std::fmt::Debug for PgChecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgChecked")
            .field("new_role", &self.new_role)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Backend for PgBackend {
    const MAX_USERNAME_LEN: usize = 63;
    const VALID_UNTIL: bool = true;
    type Checked = PgChecked;

    async fn inspect(
        &self,
        policy: &GuardPolicy,
        user: &NewUser,
    ) -> Result<PgChecked, ProvisionError> {
        // No lock and no transaction: inspection only reads, and creation checks again under
        // the locks what another provisioning could change meanwhile (whether the shared role
        // exists). The wrapper found no account under the user's name; one created since
        // makes `CREATE ROLE` fail.
        let mut conn = self.admin.pool.acquire().await?;
        let new_role = match &user.access {
            Access::Permissions(set) => {
                // The shared role and the definer functions the plan would reach, in one read;
                // the latter also when the role exists: one may have appeared since.
                let (role, definers) = inspect::role_and_definers(
                    &mut conn,
                    Some(user.role.as_str()),
                    &inspect::usage_schemas(set),
                    &policy.allow_definer_functions,
                )
                .await?;
                if !definers.is_empty() {
                    return Err(GuardError::ReachableDefiner(definers).into());
                }
                match role {
                    Lookup::Managed(m) if m.kind == AccountKind::Role => None,
                    Lookup::Absent => Some(render::targets(&mut conn, &self.database, set).await?),
                    _ => return Err(GuardError::ExistingRole(user.role.to_string()).into()),
                }
            }
            Access::Role(role) => {
                inspect::check_existing_role(&mut conn, role).await?;
                None
            }
        };
        Ok(PgChecked { conn, new_role })
    }

    async fn create_user(&self, user: &NewUser, checked: PgChecked) -> Result<(), ProvisionError> {
        let PgChecked { mut conn, new_role } = checked;
        let verifier = scram_verifier(&user.password)?;
        let create = render::create_user(user, &verifier)?;
        let join = render::grant_membership(user)?;
        match (&user.access, new_role) {
            (Access::Permissions(_), Some(targets)) => {
                self.create_with_role(&mut conn, user, &create, &join, &targets)
                    .await
            }
            (Access::Permissions(_), None) => {
                // Joining a shared role that exists: only its dropping conflicts, so its lock
                // is taken shared. One batch, one implicit transaction: the user is created
                // (the server checks its verifier under no lock), the lock taken, the role
                // checked again under it (a statement of its own, so it reads after the lock:
                // dropped meanwhile is retried, re-created by anyone but p0 is refused), the
                // user joins. Any failure undoes the whole batch.
                let role = user.role.as_str();
                let lock = Admin::lock_role_shared_sql(role)?;
                let check = still_ours_sql(role)?;
                match exec(&mut conn, &format!("{create}; {lock}; {check}; {join}")).await {
                    Err(e) if has_sqlstate(&e, "42704") => Err(role_dropped_meanwhile(role)),
                    Err(e) if has_sqlstate(&e, "22P02") && e.to_string().contains(NOT_OURS) => {
                        Err(GuardError::ExistingRole(role.to_string()).into())
                    }
                    other => other,
                }
            }
            // An allowlisted role is never dropped by p0: joining it needs no lock.
            (Access::Role(_), _) => exec(&mut conn, &format!("{create}; {join}")).await,
        }
    }

    async fn lookup(&self, name: &str) -> Result<Lookup, ProvisionError> {
        let mut conn = self.admin.pool.acquire().await?;
        marker_of(&mut conn, name).await
    }

    async fn delete_user(
        &self,
        username: &Username,
        marker: &Marker,
    ) -> Result<RevokeReport, ProvisionError> {
        revoke::delete(&self.admin, username, marker.role.as_deref()).await
    }

    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT rolname::text, pg_catalog.shobj_description(oid, 'pg_authid') FROM pg_catalog.pg_roles \
             WHERE rolname LIKE 'p0%' ORDER BY rolname",
        )
        .fetch_all(&self.admin.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, comment)| Some(Marker::parse(comment.as_deref()?)?.account(name)))
            .collect())
    }

    async fn claim(&self, claim: &Claim) -> Result<bool, ProvisionError> {
        claims::claim(&self.admin, claim).await
    }

    async fn release(&self, request: &str) -> Result<(), ProvisionError> {
        claims::release(&self.admin, request).await
    }

    async fn forget_claims(&self, now: DateTime<Utc>) -> Result<u64, ProvisionError> {
        claims::forget(&self.admin, now).await
    }

    fn is_transient(&self, e: &ProvisionError) -> bool {
        is_retryable(e)
    }
}
