//! PostgreSQL provisioning.

use super::pg_guard::{check_existing_role, check_reachable_definers};
use super::{
    role_name_for, username_for, Access, AccountKind, Credentials, DatabaseProvisioner,
    ManagedAccount, Marker, ProvisionPlan, RevokeReport,
};
use crate::error::{GuardError, ProvisionError};
use crate::guard::{is_system_schema, GuardPolicy};
use crate::secret::Password;
use crate::sql::pg::{ident, literal};
use crate::types::{ObjectKind, Permission, PermissionSet, RoleName, Username};
use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Transient errors worth another attempt: serialization failures, deadlocks, lock timeouts,
/// concurrent role creation across databases, and "tuple concurrently updated" (XX000).
const RETRY_SQLSTATES: &[&str] = &["40001", "40P01", "55P03", "23505", "XX000"];
const MAX_ATTEMPTS: u32 = 8;

/// Provisions users in one PostgreSQL database through an admin connection of the agent's own.
///
/// The admin user needs CREATEROLE (or superuser), membership in `pg_signal_backend` to end
/// sessions, and the right to grant what it hands out.
pub struct PostgresProvisioner {
    pool: PgPool,
    database: String,
    policy: GuardPolicy,
    lock_key: i64,
}

impl fmt::Debug for PostgresProvisioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's options hold the admin password: never show them.
        f.debug_struct("PostgresProvisioner")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl PostgresProvisioner {
    /// Connects to `url` (the agent's admin connection). The policy's first database must be
    /// the one the URL names.
    pub async fn connect(url: &str, policy: GuardPolicy) -> Result<Self, ProvisionError> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|_| ProvisionError::Database("invalid PostgreSQL connection URL".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Self::from_pool(pool, policy).await
    }

    /// Uses an existing pool.
    pub async fn from_pool(pool: PgPool, policy: GuardPolicy) -> Result<Self, ProvisionError> {
        let database: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&pool)
            .await?;
        policy.check_database(&database)?;
        // Advisory locks are per database already; the key only has to be p0's own.
        let lock_key = i64::from_be_bytes(*b"p0-lock\0");
        let me = Self {
            pool,
            database,
            policy,
            lock_key,
        };
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
        .bind(&self.policy.databases)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The database this provisioner manages.
    pub fn database(&self) -> &str {
        &self.database
    }

    async fn begin_locked(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ProvisionError> {
        let mut tx = self.pool.begin().await?;
        // Resolve nothing through a search_path someone else controls.
        exec(
            &mut tx,
            "SET LOCAL search_path TO pg_catalog, pg_temp; SET LOCAL lock_timeout = '30s'",
        )
        .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.lock_key)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn try_provision(
        &self,
        plan: &ProvisionPlan,
        username: &Username,
        verifier: &str,
    ) -> Result<RoleName, ProvisionError> {
        let mut tx = self.begin_locked().await?;
        if marker_of(&mut tx, username.as_str()).await?.is_some() {
            // The id is unique per request: an existing user means a replay.
            return Err(GuardError::ExistingRole(username.to_string()).into());
        }
        let role = match &plan.access {
            Access::Permissions(set) => {
                // Also when the shared role exists: a definer function may have appeared since.
                check_reachable_definers(&mut tx, set, &self.policy.allow_definer_functions)
                    .await?;
                let role = role_name_for(&plan.resource, set);
                match marker_of(&mut tx, role.as_str()).await? {
                    Some(Some(m)) if m.kind == AccountKind::Role => {}
                    Some(_) => return Err(GuardError::ExistingRole(role.to_string()).into()),
                    None => self.create_role(&mut tx, &role, set).await?,
                }
                role
            }
            Access::Role(role) => {
                check_existing_role(&mut tx, role).await?;
                role.clone()
            }
        };
        let expires = plan
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let marker = Marker {
            kind: AccountKind::User,
            request: Some(plan.request_id.to_string()),
            role: Some(role.to_string()),
            expires: Some(plan.expires_at),
        };
        let user = ident(username.as_str())?;
        exec(&mut tx, &format!(
            "CREATE ROLE {user} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS \
             PASSWORD {} VALID UNTIL {} IN ROLE {}; COMMENT ON ROLE {user} IS {}",
            literal(verifier)?,
            literal(&expires)?,
            ident(role.as_str())?,
            literal(&marker.render())?,
        )).await?;
        tx.commit().await?;
        Ok(role)
    }

    async fn create_role(
        &self,
        tx: &mut PgConnection,
        role: &RoleName,
        set: &PermissionSet,
    ) -> Result<(), ProvisionError> {
        let grantee = ident(role.as_str())?;
        let mut grants = Vec::with_capacity(set.len());
        for p in set.iter() {
            grants.push(format!(
                "GRANT {} TO {grantee}",
                self.render_target(tx, &p).await?
            ));
        }
        let marker = Marker {
            kind: AccountKind::Role,
            request: None,
            role: None,
            expires: None,
        };
        let mut sql = format!(
            "CREATE ROLE {grantee} NOLOGIN; COMMENT ON ROLE {grantee} IS {};",
            literal(&marker.render())?
        );
        for g in grants {
            sql.push_str(&g);
            sql.push(';');
        }
        exec(&mut *tx, &sql).await?;
        Ok(())
    }

    /// The live half of the guard: resolves one permission against the catalog and renders
    /// `<privilege> [(columns)] ON <kind> <name>`.
    async fn render_target(
        &self,
        tx: &mut PgConnection,
        p: &Permission,
    ) -> Result<String, ProvisionError> {
        let obj = &p.object;
        let cols = match &p.columns {
            Some(cols) => format!(
                " ({})",
                cols.iter()
                    .map(|c| ident(c))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(", ")
            ),
            None => String::new(),
        };
        let privilege = format!("{}{cols}", p.privilege);
        match obj.kind {
            ObjectKind::Database => {
                if obj.name != self.database {
                    return Err(GuardError::ForeignDatabase(obj.name.clone()).into());
                }
                Ok(format!("{privilege} ON DATABASE {}", ident(&obj.name)?))
            }
            ObjectKind::Schema => {
                let found: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
                        .bind(&obj.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                found.ok_or_else(|| GuardError::Missing(obj.to_string()))?;
                Ok(format!("{privilege} ON SCHEMA {}", ident(&obj.name)?))
            }
            ObjectKind::Table | ObjectKind::Sequence => {
                let schema = obj.schema.as_deref().unwrap_or_default();
                let relkind: Option<String> = sqlx::query_scalar(
                    "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2",
                )
                .bind(schema)
                .bind(&obj.name)
                .fetch_optional(&mut *tx)
                .await?;
                let relkind = relkind.ok_or_else(|| GuardError::Missing(obj.to_string()))?;
                let (ok, keyword) = match obj.kind {
                    ObjectKind::Sequence => (relkind == "S", "SEQUENCE"),
                    _ => (
                        matches!(relkind.as_str(), "r" | "v" | "m" | "p" | "f"),
                        "TABLE",
                    ),
                };
                if !ok {
                    return Err(
                        GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into(),
                    );
                }
                Ok(format!(
                    "{privilege} ON {keyword} {}.{}",
                    ident(schema)?,
                    ident(&obj.name)?
                ))
            }
            ObjectKind::Function => {
                let text = format!(
                    "{}.{}({})",
                    ident(obj.schema.as_deref().unwrap_or_default())?,
                    ident(&obj.name)?,
                    obj.signature.as_deref().unwrap_or_default()
                );
                // The signature is parsed by PostgreSQL from a bound parameter, and the name
                // rendered back by the catalog (schema-qualified: search_path is pg_catalog).
                let row = sqlx::query(
                    "SELECT p.oid::regprocedure::text AS name, p.prosecdef, n.nspname::text AS nspname \
                     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = to_regprocedure($1)",
                )
                .bind(&text)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| GuardError::Missing(obj.to_string()))?;
                let (name, secdef, nsp): (String, bool, String) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                if is_system_schema(&nsp) {
                    return Err(GuardError::SystemSchema(nsp).into());
                }
                if secdef {
                    return Err(GuardError::SecurityDefiner(name).into());
                }
                Ok(format!("{privilege} ON ROUTINE {name}"))
            }
        }
    }
}

/// `None`: no such role. `Some(None)`: a role without p0's marker. `Some(Some(m))`: managed.
async fn marker_of(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Option<Marker>>, ProvisionError> {
    let row: Option<Option<String>> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|comment| comment.as_deref().and_then(Marker::parse)))
}

/// Runs statements with the simple query protocol (nothing prepared, nothing cached).
async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), ProvisionError> {
    use sqlx::Executor;
    conn.execute(sql).await?;
    Ok(())
}

fn is_retryable(e: &ProvisionError) -> bool {
    match e {
        ProvisionError::Database(msg) => RETRY_SQLSTATES
            .iter()
            .any(|s| msg.ends_with(&format!("(SQLSTATE {s})"))),
        _ => false,
    }
}

async fn backoff(attempt: u32) {
    use rand::Rng;
    let base = 10u64 << attempt.min(6);
    let jitter = rand::thread_rng().gen_range(0..=base);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

#[async_trait]
impl DatabaseProvisioner for PostgresProvisioner {
    fn supports_valid_until(&self) -> bool {
        true
    }

    fn max_username_len(&self) -> usize {
        63
    }

    async fn provision(&self, plan: &ProvisionPlan) -> Result<Credentials, ProvisionError> {
        match &plan.access {
            Access::Permissions(set) => self.policy.check_permissions(set)?,
            Access::Role(role) => self.policy.check_role(role)?,
        }
        self.policy.check_expiry(plan.expires_at, Utc::now())?;
        let username = username_for(&plan.requester, &plan.request_id, self.max_username_len());
        let password = Password::generate();
        let verifier =
            postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
        let mut attempt = 0;
        let role = loop {
            match self.try_provision(plan, &username, &verifier).await {
                Ok(role) => break role,
                Err(e) if is_retryable(&e) && attempt + 1 < MAX_ATTEMPTS => {
                    tracing::debug!(user = %username, attempt, error = %e, "provision retry");
                    attempt += 1;
                    backoff(attempt).await;
                }
                Err(e) => return Err(e),
            }
        };
        tracing::info!(user = %username, role = %role, request = %plan.request_id, "provisioned");
        Ok(Credentials {
            username,
            password,
            role,
            expires_at: plan.expires_at,
        })
    }

    async fn revoke(&self, username: &Username) -> Result<RevokeReport, ProvisionError> {
        let mut conn = self.pool.acquire().await?;
        let marker = match marker_of(&mut conn, username.as_str()).await? {
            None => return Ok(RevokeReport::default()),
            Some(Some(m)) if m.kind == AccountKind::User => m,
            Some(_) => return Err(ProvisionError::NotManaged(username.to_string())),
        };
        let user = ident(username.as_str())?;
        // First no new logins, then end the sessions that are open (waiting up to 5 s each).
        exec(&mut conn, &format!("ALTER ROLE {user} NOLOGIN")).await?;
        let mut report = RevokeReport {
            user_dropped: true,
            ..RevokeReport::default()
        };
        loop {
            let (seen, ended): (i64, i64) = sqlx::query_as(
                "SELECT count(*), count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
                 FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
            )
            .bind(username.as_str())
            .fetch_one(&mut *conn)
            .await?;
            report.sessions_terminated += ended as u64;
            if seen == 0 {
                break;
            }
        }
        drop(conn);
        let mut attempt = 0;
        loop {
            // Each round reports afresh: a retried round must not repeat the notes.
            let mut round = report.clone();
            match self
                .try_drop(username, marker.role.as_deref(), &mut round)
                .await
            {
                Ok(()) => {
                    report = round;
                    break;
                }
                // 2BP01: something was granted to the user or its role meanwhile (a live
                // ephemeral user's grant of its own object, say); clean again.
                Err(e)
                    if (is_retryable(&e) || has_sqlstate(&e, "2BP01"))
                        && attempt + 1 < MAX_ATTEMPTS =>
                {
                    attempt += 1;
                    backoff(attempt).await;
                }
                Err(e) => {
                    tracing::warn!(user = %username, error = %e, "revocation incomplete; it is retried");
                    return Err(e);
                }
            }
        }
        tracing::info!(user = %username, sessions = report.sessions_terminated, role_dropped = report.role_dropped, "revoked");
        Ok(report)
    }

    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT rolname::text, shobj_description(oid, 'pg_authid') FROM pg_roles \
             WHERE rolname LIKE 'p0%' ORDER BY rolname",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, comment)| {
                let m = Marker::parse(comment.as_deref()?)?;
                Some(ManagedAccount {
                    name,
                    kind: m.kind,
                    expires_at: m.expires,
                    request_id: m.request,
                })
            })
            .collect())
    }
}

impl PostgresProvisioner {
    /// Removes the user, and its role once no other member is left, from every database of
    /// the cluster: first the databases other than the managed one where either owns
    /// something or holds a privilege (a large object in `template1`, default privileges, a
    /// grant from another user), then, under the provisioning lock, the managed one, where
    /// the roles themselves are dropped.
    async fn try_drop(
        &self,
        username: &Username,
        role: Option<&str>,
        report: &mut RevokeReport,
    ) -> Result<(), ProvisionError> {
        let mut names = vec![username.as_str()];
        if let Some(role) = role {
            if self.role_goes_with(role, username).await? {
                names.push(role);
            }
        }
        self.clean_other_databases(&names, report).await?;
        let mut tx = self.begin_locked().await?;
        if marker_of(&mut tx, username.as_str()).await?.is_some() {
            drop_owned(&mut tx, username.as_str(), "", report).await?;
            exec(&mut tx, &format!("DROP ROLE {}", ident(username.as_str())?)).await?;
        }
        if let Some(role) = role {
            let managed = matches!(marker_of(&mut tx, role).await?, Some(Some(m)) if m.kind == AccountKind::Role);
            if managed && members(&mut tx, role, None).await? == 0 {
                drop_owned(&mut tx, role, "", report).await?;
                exec(&mut tx, &format!("DROP ROLE {}", ident(role)?)).await?;
                report.role_dropped = true;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether `role` is p0's and has no member but `user`: it is dropped with the user.
    async fn role_goes_with(&self, role: &str, user: &Username) -> Result<bool, ProvisionError> {
        let mut conn = self.pool.acquire().await?;
        let managed = matches!(marker_of(&mut conn, role).await?, Some(Some(m)) if m.kind == AccountKind::Role);
        Ok(managed && members(&mut conn, role, Some(user.as_str())).await? == 0)
    }

    /// `DROP OWNED` for `names` in every other database where the catalog's shared
    /// dependencies show they own something or hold a privilege: exactly where `DROP ROLE`
    /// would otherwise fail. A database that allows no connections cannot be cleaned and
    /// is reported (the sweeper retries).
    async fn clean_other_databases(
        &self,
        names: &[&str],
        report: &mut RevokeReport,
    ) -> Result<(), ProvisionError> {
        use sqlx::Connection;
        let names_owned: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let dbs: Vec<(String, bool)> = sqlx::query_as(
            "SELECT DISTINCT d.datname::text, d.datallowconn FROM pg_catalog.pg_shdepend s              JOIN pg_catalog.pg_database d ON d.oid = s.dbid JOIN pg_catalog.pg_roles r ON r.oid = s.refobjid              WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass AND r.rolname = ANY($1)                AND d.datname <> current_database() ORDER BY 1",
        )
        .bind(&names_owned)
        .fetch_all(&self.pool)
        .await?;
        for (db, allows_connections) in dbs {
            if !allows_connections {
                return Err(ProvisionError::Database(format!(
                    "`{}` owns objects or holds privileges in database `{db}`, which allows no connections: \
                     allow connections to it (or remove them there) and revocation completes",
                    names.join("`, `")
                )));
            }
            let opts = (*self.pool.connect_options()).clone().database(&db);
            let mut conn = PgConnection::connect_with(&opts).await?;
            let result = async {
                let mut tx = conn.begin().await?;
                exec(
                    &mut tx,
                    "SET LOCAL search_path TO pg_catalog, pg_temp; SET LOCAL lock_timeout = '30s'",
                )
                .await?;
                for name in names {
                    drop_owned(&mut tx, name, &format!(" in database `{db}`"), report).await?;
                }
                tx.commit().await?;
                Ok::<(), ProvisionError>(())
            }
            .await;
            let _ = conn.close().await;
            result?;
        }
        Ok(())
    }
}

/// Members of `role`, leaving out `except`.
async fn members(
    conn: &mut PgConnection,
    role: &str,
    except: Option<&str>,
) -> Result<i64, ProvisionError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid \
         JOIN pg_catalog.pg_roles u ON u.oid = m.member WHERE r.rolname = $1 AND u.rolname IS DISTINCT FROM $2",
    )
    .bind(role)
    .bind(except)
    .fetch_one(&mut *conn)
    .await?)
}

/// `DROP OWNED BY name` in the current database, inside the caller's transaction: drops what
/// it owns there (large objects included), revokes what was granted to it, and removes its
/// default privileges. When other roles' objects depend on what it owns, those are kept and
/// given to the agent's user instead (`REASSIGN OWNED`), so revocation still completes.
async fn drop_owned(
    tx: &mut PgConnection,
    name: &str,
    where_: &str,
    report: &mut RevokeReport,
) -> Result<(), ProvisionError> {
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid \
         WHERE r.rolname = $1 AND d.deptype = 'o' \
           AND d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    let role = ident(name)?;
    exec(tx, "SAVEPOINT p0_drop_owned").await?;
    match exec(tx, &format!("DROP OWNED BY {role}")).await {
        Ok(()) => {
            if owned > 0 {
                report.notes.push(format!(
                    "dropped {owned} object(s) owned by `{name}`{where_}"
                ));
            }
        }
        Err(e) if has_sqlstate(&e, "2BP01") => {
            exec(tx, "ROLLBACK TO SAVEPOINT p0_drop_owned").await?;
            exec(
                tx,
                &format!("REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}"),
            )
            .await?;
            report.notes.push(format!(
                "gave {owned} object(s) owned by `{name}`{where_} to the agent's user: other objects depend on them"
            ));
        }
        Err(e) => return Err(e),
    }
    exec(tx, "RELEASE SAVEPOINT p0_drop_owned").await
}

fn has_sqlstate(e: &ProvisionError, code: &str) -> bool {
    matches!(e, ProvisionError::Database(msg) if msg.ends_with(&format!("(SQLSTATE {code})")))
}
