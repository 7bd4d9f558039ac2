//! MySQL / MariaDB.
//!
//! DDL in MySQL commits implicitly, so "one transaction" becomes: every check before the first
//! change, a compensating cleanup if a later step fails, and a named lock (`GET_LOCK`) around
//! the only steps that must not interleave: creating, joining and dropping a shared role. Users and roles are recorded in the agent's own
//! bookkeeping table (`p0_agent.managed`), since MariaDB has no comments on accounts.

mod conn;
mod inspect;
mod revoke;

use crate::error::{GuardError, ProvisionError};
use crate::guard::GuardPolicy;
use crate::provision::backend::{Backend, NewUser};
use crate::provision::managed::Managed;
use crate::provision::marker::{Claim, Lookup, Marker};
use crate::provision::plan::{Access, AccountKind, ManagedAccount, RevokeReport};
use crate::sql::mysql::{ident, literal};
use crate::types::{RoleName, Username};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use conn::{
    account, account_exists, backstop, check_backstop, exec, literal_plain, lock, native_hash,
    record, record_and_account, unlock, BACKSTOP, BOOKKEEPING_DB, UNLOCK,
};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool};
use sqlx::Row;
use std::str::FromStr;

/// The MySQL / MariaDB [`Backend`], through the agent's admin connection.
pub struct MySqlBackend {
    pool: MySqlPool,
    host: String,
    /// MariaDB rather than MySQL 8 (their account syntax differs).
    mariadb: bool,
}

impl std::fmt::Debug for MySqlBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlBackend")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Provisions users in a MySQL or MariaDB server: [`MySqlBackend`] inside the core's wrapper.
pub type MySqlProvisioner = Managed<MySqlBackend>;

impl Managed<MySqlBackend> {
    /// Connects with the agent's admin URL. `host` is the host part of created accounts.
    pub async fn connect(
        url: &str,
        policy: GuardPolicy,
        host: &str,
    ) -> Result<Self, ProvisionError> {
        let opts = MySqlConnectOptions::from_str(url)
            .map_err(|_| ProvisionError::Database("invalid MySQL connection URL".into()))?
            .timezone(Some("+00:00".into()));
        let pool = crate::provision::pool::admin_pool()
            .connect_with(opts)
            .await?;
        let mut conn = pool.acquire().await?;
        exec(
            &mut conn,
            &format!("CREATE DATABASE IF NOT EXISTS {}", ident(BOOKKEEPING_DB)?),
        )
        .await?;
        exec(
            &mut conn,
            &format!(
                "CREATE TABLE IF NOT EXISTS {}.managed (name VARCHAR(64) PRIMARY KEY, kind VARCHAR(8) NOT NULL, \
                 request VARCHAR(64), role VARCHAR(64), expires DATETIME(6)) ENGINE=InnoDB",
                ident(BOOKKEEPING_DB)?
            ),
        )
        .await?;
        // Request claims (`Backend::claim`): one row per provisioned request, kept for days.
        exec(
            &mut conn,
            &format!(
                "CREATE TABLE IF NOT EXISTS {}.claims (request VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY, until DATETIME(6) NOT NULL, \
                 KEY claims_until (until)) ENGINE=InnoDB",
                ident(BOOKKEEPING_DB)?
            ),
        )
        .await?;
        // Users made before claims existed: their requests are claimed now.
        exec(
            &mut conn,
            &format!(
                "INSERT IGNORE INTO {db}.claims (request, until) SELECT request, UTC_TIMESTAMP(6) + INTERVAL {} SECOND \
                 FROM {db}.managed WHERE kind = 'user' AND request IS NOT NULL",
                crate::provision::marker::CLAIM_SECS,
                db = ident(BOOKKEEPING_DB)?
            ),
        )
        .await?;
        // Revocation counts a role's users: by index, not by reading every live lease.
        if !role_index(&mut conn).await? {
            let made = exec(
                &mut conn,
                &format!(
                    "CREATE INDEX managed_role ON {}.managed (role, kind)",
                    ident(BOOKKEEPING_DB)?
                ),
            )
            .await;
            // Another agent starting at the same time may have made it first.
            if let Err(e) = made {
                if !role_index(&mut conn).await? {
                    return Err(e);
                }
            }
        }
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut *conn)
            .await?;
        // Without the scheduler no expiry event fires: say so now, and refuse every
        // provision until it is on (revocation and the sweeper keep working meanwhile).
        if let Err(e) = check_backstop(&mut conn).await {
            tracing::error!(error = %e, "provisioning is refused until the expiry backstop works");
        }
        drop(conn);
        literal_plain(host)?;
        let mariadb = version.to_ascii_lowercase().contains("mariadb");
        let backend = MySqlBackend {
            pool,
            host: host.into(),
            mariadb,
        };
        Ok(Managed::new(backend, policy))
    }
}

/// Whether the bookkeeping table has its index by role.
async fn role_index(conn: &mut MySqlConnection) -> Result<bool, ProvisionError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = ? \
         AND table_name = 'managed' AND index_name = 'managed_role'",
    )
    .bind(BOOKKEEPING_DB)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// What inspection leaves for creation: the connection it checked on, and the shared
/// role's grants when the role is to be created.
#[derive(Debug)]
pub struct MySqlChecked {
    conn: sqlx::pool::PoolConnection<sqlx::MySql>,
    new_role: Option<Vec<String>>,
}

impl MySqlBackend {
    /// Every check before the first change: the names are free (or the role is p0's), each
    /// grant's object exists in an allowed database, a requested role reaches nothing
    /// privileged. Returns the new role's rendered grants, if the role is new.
    async fn check(
        &self,
        conn: &mut MySqlConnection,
        policy: &GuardPolicy,
        user: &NewUser,
    ) -> Result<Option<Vec<String>>, ProvisionError> {
        let name = user.username.as_str();
        let role = &user.role;
        // One read: the expiry backstop, whether the user's name is taken (by p0's record or
        // an account on any host), and p0's record of the role.
        let row = sqlx::query(&format!(
            "SELECT {BACKSTOP}, (SELECT COUNT(*) FROM p0_agent.managed WHERE name = ?) \
               + (SELECT COUNT(*) FROM mysql.user WHERE user = ?), \
             (SELECT kind FROM p0_agent.managed WHERE name = ?)"
        ))
        .bind(name)
        .bind(name)
        .bind(role.as_str())
        .fetch_one(&mut *conn)
        .await?;
        backstop(&row.try_get::<String, _>(0)?)?;
        if row.try_get::<i64, _>(1)? > 0 {
            return Err(GuardError::ExistingRole(name.to_string()).into());
        }
        let role_kind: Option<String> = row.try_get(2)?;
        match &user.access {
            Access::Permissions(set) => match role_kind {
                Some(kind) if kind == "role" => Ok(None),
                Some(_) => Err(GuardError::ExistingRole(role.to_string()).into()),
                // An account of that name without p0's record may be the role another
                // provisioning is creating right now: creation decides, under p0's lock.
                None => {
                    let mut grants = Vec::new();
                    for p in set.iter() {
                        grants.push(inspect::render(conn, policy, &p).await?);
                    }
                    Ok(Some(grants))
                }
            },
            Access::Role(role) => {
                if !self.mariadb {
                    // The checks read MariaDB's role catalog; MySQL 8 keeps roles (and its
                    // dynamic privileges) elsewhere, so refuse rather than check nothing.
                    return Err(GuardError::NotAllowed(format!(
                        "membership of `{role}` on MySQL (role requests are checked on MariaDB only)"
                    ))
                    .into());
                }
                inspect::check_role(conn, role).await?;
                Ok(None)
            }
        }
    }

    /// Creates the user with its record and expiry event, then, under p0's lock, the shared
    /// role when it is new and the user's membership of it. The record comes first: from then
    /// on no revocation of another user drops the role this one is joining.
    async fn create(
        &self,
        conn: &mut MySqlConnection,
        user: &NewUser,
        new_role: Option<Vec<String>>,
    ) -> Result<(), ProvisionError> {
        let role = &user.role;
        // p0's own role names are plain; an allowlisted role may need backtick quoting.
        let r = literal_plain(role.as_str()).or_else(|_| ident(role.as_str()))?;
        let name = user.username.as_str();
        let acct = account(name, &self.host)?;
        let expires = user.expires_at.format("%Y-%m-%d %H:%M:%S").to_string();
        let hash = literal_plain(&native_hash(user.password.expose_secret()))?;
        // MySQL 8 dropped IDENTIFIED BY PASSWORD; the hash is given with its plugin.
        let identified = if self.mariadb {
            format!("IDENTIFIED BY PASSWORD {hash}")
        } else {
            format!("IDENTIFIED WITH mysql_native_password AS {hash}")
        };
        let opt = |v: Option<&str>| v.map_or(Ok("NULL".to_string()), literal);
        // One batch: the record, the user, its expiry event. A failed statement stops the
        // batch; `fail` undoes what the earlier ones made.
        exec(
            conn,
            &format!(
                "INSERT INTO p0_agent.managed (name, kind, request, role, expires) VALUES ({}, 'user', {}, {}, {}); \
                 CREATE USER {acct} {identified}; \
                 CREATE EVENT {}.{} ON SCHEDULE AT {} DO DROP USER IF EXISTS {acct}",
                literal(name)?,
                opt(user.marker.request.as_deref())?,
                opt(user.marker.role.as_deref())?,
                opt(user.marker.expires.map(|e| e.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()).as_deref())?,
                ident(BOOKKEEPING_DB)?,
                ident(&format!("expire_{name}"))?,
                literal_plain(&expires)?
            ),
        )
        .await?;
        if matches!(user.access, Access::Permissions(_)) {
            lock(conn).await?;
            let made = self.ensure_role(conn, role, &r, new_role).await;
            // The user joins and the lock is given back in one batch; on any failure the lock
            // is given back on its own.
            let joined = match made {
                Ok(()) => exec(conn, &format!("{}; {UNLOCK}", self.join_sql(&r, &acct))).await,
                Err(e) => Err(e),
            };
            if joined.is_err() {
                unlock(conn).await;
            }
            joined
        } else {
            // An allowlisted role is never dropped by p0: joining it needs no lock.
            exec(conn, &self.join_sql(&r, &acct)).await
        }
    }

    /// Under p0's lock: the shared role exists and is p0's, created now with `new_role`'s
    /// grants when it is new.
    async fn ensure_role(
        &self,
        conn: &mut MySqlConnection,
        role: &RoleName,
        r: &str,
        new_role: Option<Vec<String>>,
    ) -> Result<(), ProvisionError> {
        match record(conn, role.as_str()).await? {
            Some((kind, _)) if kind == "role" => return Ok(()),
            Some(_) => return Err(GuardError::ExistingRole(role.to_string()).into()),
            None if account_exists(conn, role.as_str()).await? => {
                return Err(GuardError::ExistingRole(role.to_string()).into())
            }
            None => {}
        }
        // Inspection saw the role; its last user was revoked since: start again.
        let Some(grants) = new_role else {
            return Err(ProvisionError::Database(format!(
                "p0's role `{role}` was dropped while a user joined it (SQLSTATE 40001)"
            )));
        };
        exec(conn, &format!("CREATE ROLE {r}")).await?;
        sqlx::query("INSERT INTO p0_agent.managed (name, kind) VALUES (?, 'role')")
            .bind(role.as_str())
            .execute(&mut *conn)
            .await?;
        // MariaDB makes the creator a member of the role WITH ADMIN OPTION, and granting a
        // role needs exactly that, so the agent keeps it: it is never a default role of the
        // agent's user (so never active), and that user is an administrator already.
        for g in grants {
            exec(conn, &format!("GRANT {g} TO {r}")).await?;
        }
        Ok(())
    }

    /// The statements by which the user joins role `r`, active at login.
    fn join_sql(&self, r: &str, acct: &str) -> String {
        // Role activation: MariaDB `SET DEFAULT ROLE r FOR u`, MySQL 8 `SET DEFAULT ROLE r TO u`.
        let to = if self.mariadb { "FOR" } else { "TO" };
        format!("GRANT {r} TO {acct}; SET DEFAULT ROLE {r} {to} {acct}")
    }

    /// After a failed creation: undoes what it may have made (the user, its record and
    /// event, and the shared role when p0 made it and no other user holds it), under p0's
    /// lock, since it may drop a role.
    async fn fail(&self, conn: &mut MySqlConnection, user: &NewUser) {
        let locked = lock(conn).await.is_ok();
        let mut role = None;
        if locked && matches!(user.access, Access::Permissions(_)) {
            let r = user.role.as_str();
            let ours = matches!(record(conn, r).await, Ok(Some((k, _))) if k == "role");
            let others = sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM p0_agent.managed WHERE role = ? AND kind = 'user' AND name <> ?",
            )
            .bind(r)
            .bind(user.username.as_str())
            .fetch_one(&mut *conn)
            .await
            .unwrap_or(1);
            if ours && others == 0 {
                role = Some(&user.role);
            }
        }
        revoke::undo_create(conn, &self.host, &user.username, role).await;
        if locked {
            unlock(conn).await;
        }
    }
}

#[async_trait]
impl Backend for MySqlBackend {
    const MAX_USERNAME_LEN: usize = 32;
    const VALID_UNTIL: bool = false;
    const DATABASE_WIDE_GRANTS: bool = true;
    type Checked = MySqlChecked;

    async fn inspect(
        &self,
        policy: &GuardPolicy,
        user: &NewUser,
    ) -> Result<MySqlChecked, ProvisionError> {
        // No lock: inspection only reads, and creation checks the shared role again under it.
        let mut conn = self.pool.acquire().await?;
        let new_role = self.check(&mut conn, policy, user).await?;
        Ok(MySqlChecked { conn, new_role })
    }

    async fn create_user(
        &self,
        user: &NewUser,
        checked: MySqlChecked,
    ) -> Result<(), ProvisionError> {
        let MySqlChecked { mut conn, new_role } = checked;
        let result = self.create(&mut conn, user, new_role).await;
        match result {
            // The record, the batch's first statement, exists already: another agent instance
            // is provisioning the same request right now. Nothing here is this call's to undo
            // (undoing would drop the other's user).
            Err(ProvisionError::Database(m)) if m.ends_with("(SQLSTATE 23000)") => {
                Err(GuardError::ExistingRole(user.username.to_string()).into())
            }
            Err(e) => {
                self.fail(&mut conn, user).await;
                Err(e)
            }
            Ok(()) => Ok(()),
        }
    }

    async fn lookup(&self, name: &str) -> Result<Lookup, ProvisionError> {
        let mut conn = self.pool.acquire().await?;
        Ok(match record_and_account(&mut conn, name).await? {
            (Some((kind, role)), _) => Lookup::Managed(Marker {
                kind: if kind == "user" {
                    AccountKind::User
                } else {
                    AccountKind::Role
                },
                request: None,
                role,
                expires: None,
                claimed: false,
            }),
            (None, true) => Lookup::Unmarked,
            (None, false) => Lookup::Absent,
        })
    }

    async fn delete_user(
        &self,
        username: &Username,
        _marker: &Marker,
    ) -> Result<RevokeReport, ProvisionError> {
        let mut conn = self.pool.acquire().await?;
        revoke::revoke(&mut conn, &self.host, self.mariadb, username).await
    }

    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
        let rows =
            sqlx::query("SELECT name, kind, request, expires FROM p0_agent.managed ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                let kind: String = r.try_get(1)?;
                let expires: Option<chrono::NaiveDateTime> = r.try_get(3)?;
                Ok(ManagedAccount {
                    name: r.try_get(0)?,
                    kind: if kind == "role" {
                        AccountKind::Role
                    } else {
                        AccountKind::User
                    },
                    expires_at: expires.map(|e| DateTime::from_naive_utc_and_offset(e, Utc)),
                    request_id: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn claim(&self, claim: &Claim) -> Result<bool, ProvisionError> {
        let inserted = sqlx::query("INSERT INTO p0_agent.claims (request, until) VALUES (?, ?)")
            .bind(&claim.request)
            .bind(claim.until.naive_utc())
            .execute(&self.pool)
            .await;
        match inserted.map_err(ProvisionError::from) {
            Ok(_) => Ok(true),
            // The primary key: this request's claim exists.
            Err(ProvisionError::Database(m)) if m.ends_with("(SQLSTATE 23000)") => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, request: &str) -> Result<(), ProvisionError> {
        sqlx::query("DELETE FROM p0_agent.claims WHERE request = ?")
            .bind(request)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn forget_claims(&self, now: DateTime<Utc>) -> Result<u64, ProvisionError> {
        let done = sqlx::query("DELETE FROM p0_agent.claims WHERE until <= ?")
            .bind(now.naive_utc())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    fn is_transient(&self, e: &ProvisionError) -> bool {
        // Deadlocks, lock wait timeouts, and a shared role dropped while a user joined it.
        matches!(e, ProvisionError::Database(m) if m.ends_with("(SQLSTATE 40001)") || m.ends_with("(SQLSTATE HY000)") && m.contains("Lock wait timeout"))
    }
}
