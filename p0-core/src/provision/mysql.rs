//! MySQL / MariaDB provisioning.
//!
//! DDL in MySQL commits implicitly, so "one transaction" becomes: a named lock (`GET_LOCK`)
//! held on one connection for the whole operation, every check before the first change, and a
//! compensating cleanup if a later step fails. Users and roles are recorded in the agent's own
//! bookkeeping table (`p0_agent.managed`), since MariaDB has no comments on accounts.

use super::{
    role_name_for, username_for, Access, AccountKind, Credentials, DatabaseProvisioner,
    ManagedAccount, ProvisionPlan, RevokeReport,
};
use crate::error::{GuardError, ProvisionError};
use crate::guard::GuardPolicy;
use crate::secret::Password;
use crate::sql::mysql::ident;
use crate::types::{ObjectKind, Permission, PermissionSet, Privilege, RoleName, Username};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha1::{Digest, Sha1};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, Row};
use std::str::FromStr;
use std::time::Duration;

const BOOKKEEPING_DB: &str = "p0_agent";
const LOCK: &str = "p0-provision";

/// Provisions users in a MySQL or MariaDB server through the agent's admin connection.
pub struct MySqlProvisioner {
    pool: MySqlPool,
    policy: GuardPolicy,
    host: String,
    /// MariaDB rather than MySQL 8 (their account syntax differs).
    mariadb: bool,
}

impl std::fmt::Debug for MySqlProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlProvisioner")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// `mysql_native_password`'s stored form: `*` + upper-case hex of SHA1(SHA1(password)). Only
/// this reaches the server, so no log holds the password.
fn native_hash(password: &str) -> String {
    let inner = Sha1::digest(password.as_bytes());
    format!("*{}", hex::encode_upper(Sha1::digest(inner)))
}

fn account(name: &str, host: &str) -> Result<String, GuardError> {
    Ok(format!("{}@{}", literal_plain(name)?, literal_plain(host)?))
}

/// A plain `'…'` literal for values from a fixed safe alphabet: p0's own `[a-z0-9_]` account
/// names, `%`-style hosts, `*HEX` password hashes and timestamps. Anything else is refused, so
/// no quote or backslash can ever appear (places where MySQL takes only plain strings).
fn literal_plain(s: &str) -> Result<String, GuardError> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_%.-:* ".contains(&b))
    {
        return Err(GuardError::BadName(s.into()));
    }
    Ok(format!("'{s}'"))
}

/// The expiry backstop (a one-shot `EVENT` per user) fires only while `event_scheduler` is ON.
async fn check_backstop(conn: &mut MySqlConnection) -> Result<(), ProvisionError> {
    let state: String = sqlx::query_scalar("SELECT CAST(@@GLOBAL.event_scheduler AS CHAR)")
        .fetch_one(&mut *conn)
        .await?;
    match state.to_ascii_uppercase().as_str() {
        "ON" | "1" => Ok(()),
        "DISABLED" => Err(ProvisionError::NoBackstop(
            "`event_scheduler` is DISABLED, so the one-shot EVENT that drops each user at expiry would never run; \
             restart the server with `event_scheduler=ON`"
                .into(),
        )),
        other => Err(ProvisionError::NoBackstop(format!(
            "`event_scheduler` is {other}, so the one-shot EVENT that drops each user at expiry would never run; \
             run `SET GLOBAL event_scheduler = ON` and set `event_scheduler=ON` in the server's option file"
        ))),
    }
}

async fn exec(conn: &mut MySqlConnection, sql: &str) -> Result<(), ProvisionError> {
    conn.execute(sql).await?;
    Ok(())
}

impl MySqlProvisioner {
    /// Connects with the agent's admin URL. `host` is the host part of created accounts.
    pub async fn connect(
        url: &str,
        policy: GuardPolicy,
        host: &str,
    ) -> Result<Self, ProvisionError> {
        let opts = MySqlConnectOptions::from_str(url)
            .map_err(|_| ProvisionError::Database("invalid MySQL connection URL".into()))?
            .timezone(Some("+00:00".into()));
        let pool = MySqlPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
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
        Ok(Self {
            pool,
            policy,
            host: host.into(),
            mariadb,
        })
    }

    async fn locked(&self) -> Result<sqlx::pool::PoolConnection<sqlx::MySql>, ProvisionError> {
        let mut conn = self.pool.acquire().await?;
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 30)")
            .bind(LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if got != Some(1) {
            return Err(ProvisionError::Database(
                "timed out waiting for the provisioning lock".into(),
            ));
        }
        Ok(conn)
    }

    async fn unlock(conn: &mut MySqlConnection) {
        let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(LOCK)
            .execute(&mut *conn)
            .await;
    }

    async fn record(
        conn: &mut MySqlConnection,
        name: &str,
    ) -> Result<Option<(String, Option<String>)>, ProvisionError> {
        let row = sqlx::query("SELECT kind, role FROM p0_agent.managed WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    async fn account_exists(
        conn: &mut MySqlConnection,
        name: &str,
    ) -> Result<bool, ProvisionError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mysql.user WHERE user = ?")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
        Ok(n > 0)
    }

    /// The live guard: each permission's object exists in an allowed database; renders the grant.
    async fn render(
        &self,
        conn: &mut MySqlConnection,
        p: &Permission,
    ) -> Result<String, ProvisionError> {
        let obj = &p.object;
        // A database-wide grant: data privileges only (never CREATE, DROP or ALTER), and only on
        // a database this agent manages.
        if matches!(obj.kind, ObjectKind::Database | ObjectKind::Schema) {
            self.policy.check_database(&obj.name)?;
            let data = matches!(
                p.privilege,
                Privilege::Select
                    | Privilege::Insert
                    | Privilege::Update
                    | Privilege::Delete
                    | Privilege::Execute
            );
            if !data || p.columns.is_some() {
                return Err(GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into());
            }
            return Ok(format!("{} ON {}.*", p.privilege, ident(&obj.name)?));
        }
        let db = obj
            .schema
            .as_deref()
            .ok_or_else(|| GuardError::BadName(format!("{obj} without a database")))?;
        self.policy.check_database(db)?;
        let cols = match &p.columns {
            Some(c) => format!(
                " ({})",
                c.iter()
                    .map(|x| ident(x))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(", ")
            ),
            None => String::new(),
        };
        match obj.kind {
            ObjectKind::Table => {
                if !matches!(
                    p.privilege,
                    Privilege::Select
                        | Privilege::Insert
                        | Privilege::Update
                        | Privilege::Delete
                        | Privilege::References
                        | Privilege::Trigger
                ) {
                    return Err(
                        GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into(),
                    );
                }
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?")
                    .bind(db)
                    .bind(&obj.name)
                    .fetch_one(&mut *conn)
                    .await?;
                if n == 0 {
                    return Err(GuardError::Missing(obj.to_string()).into());
                }
                Ok(format!(
                    "{}{cols} ON {}.{}",
                    p.privilege,
                    ident(db)?,
                    ident(&obj.name)?
                ))
            }
            ObjectKind::Function => {
                let row = sqlx::query("SELECT ROUTINE_TYPE, SECURITY_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ?")
                    .bind(db)
                    .bind(&obj.name)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| GuardError::Missing(obj.to_string()))?;
                let (kind, security): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                if security.eq_ignore_ascii_case("DEFINER") {
                    return Err(GuardError::SecurityDefiner(format!("{db}.{}", obj.name)).into());
                }
                let keyword = if kind.eq_ignore_ascii_case("PROCEDURE") {
                    "PROCEDURE"
                } else {
                    "FUNCTION"
                };
                Ok(format!(
                    "EXECUTE ON {keyword} {}.{}",
                    ident(db)?,
                    ident(&obj.name)?
                ))
            }
            _ => Err(GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into()),
        }
    }

    /// A role may be handed out only if neither it nor any role granted to it, directly or
    /// transitively, holds a global privilege (administrative ones included), a GRANT OPTION
    /// anywhere, ADMIN OPTION on a role, PROXY, or any privilege in a system database.
    async fn check_role(conn: &mut MySqlConnection, role: &RoleName) -> Result<(), ProvisionError> {
        let is_role: Option<String> =
            sqlx::query_scalar("SELECT is_role FROM mysql.user WHERE user = ? AND host = ''")
                .bind(role.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        if is_role.as_deref() != Some("Y") {
            return Err(GuardError::Missing(format!("role {role}")).into());
        }
        // The roles it reaches: `SET ROLE` and default roles make every one of them usable.
        let mut closure = vec![role.as_str().to_string()];
        let mut i = 0;
        while i < closure.len() && closure.len() <= 256 {
            let granted: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(Role AS CHAR) FROM mysql.roles_mapping WHERE User = ? AND Host = ''",
            )
            .bind(&closure[i])
            .fetch_all(&mut *conn)
            .await?;
            for g in granted {
                if !closure.contains(&g) {
                    closure.push(g);
                }
            }
            i += 1;
        }
        let checks: [(&str, &str); 5] = [
            (
                "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ? AND Host = '' \
                 AND CAST(JSON_VALUE(Priv, '$.access') AS UNSIGNED) <> 0",
                "global privileges",
            ),
            (
                "SELECT (SELECT COUNT(*) FROM mysql.db WHERE User = ? AND Host = '' AND Grant_priv = 'Y') \
                      + (SELECT COUNT(*) FROM mysql.tables_priv WHERE User = ? AND Host = '' AND FIND_IN_SET('Grant', Table_priv) > 0) \
                      + (SELECT COUNT(*) FROM mysql.procs_priv WHERE User = ? AND Host = '' AND FIND_IN_SET('Grant', Proc_priv) > 0)",
                "GRANT OPTION",
            ),
            (
                "SELECT COUNT(*) FROM mysql.roles_mapping WHERE User = ? AND Host = '' AND Admin_option = 'Y'",
                "ADMIN OPTION on a role",
            ),
            (
                "SELECT COUNT(*) FROM mysql.proxies_priv WHERE User = ? AND Host = ''",
                "PROXY",
            ),
            (
                "SELECT (SELECT COUNT(*) FROM mysql.db WHERE User = ? AND Host = '' AND LOWER(Db) IN ('mysql', 'sys', 'performance_schema', 'information_schema')) \
                      + (SELECT COUNT(*) FROM mysql.tables_priv WHERE User = ? AND Host = '' AND LOWER(Db) IN ('mysql', 'sys', 'performance_schema', 'information_schema'))",
                "privileges in a system database",
            ),
        ];
        for name in &closure {
            for (sql, what) in checks {
                let mut q = sqlx::query_scalar::<_, i64>(sql);
                for _ in 0..sql.matches('?').count() {
                    q = q.bind(name);
                }
                if q.fetch_one(&mut *conn).await? > 0 {
                    let through = if name == role.as_str() {
                        String::new()
                    } else {
                        format!(" (through `{name}`)")
                    };
                    return Err(GuardError::PrivilegedRole(
                        role.to_string(),
                        format!("{what}{through}"),
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    async fn try_provision(
        &self,
        conn: &mut MySqlConnection,
        plan: &ProvisionPlan,
        user: &Username,
        password: &Password,
    ) -> Result<(RoleName, bool), ProvisionError> {
        if Self::record(conn, user.as_str()).await?.is_some()
            || Self::account_exists(conn, user.as_str()).await?
        {
            return Err(GuardError::ExistingRole(user.to_string()).into());
        }
        // Every check before the first change.
        let (role, create) = match &plan.access {
            Access::Permissions(set) => {
                let role = role_name_for(&plan.resource, set);
                match Self::record(conn, role.as_str()).await? {
                    Some((kind, _)) if kind == "role" => (role, None),
                    Some(_) => return Err(GuardError::ExistingRole(role.to_string()).into()),
                    None if Self::account_exists(conn, role.as_str()).await? => {
                        return Err(GuardError::ExistingRole(role.to_string()).into())
                    }
                    None => {
                        let mut grants = Vec::new();
                        for p in set.iter() {
                            grants.push(self.render(conn, &p).await?);
                        }
                        (role, Some(grants))
                    }
                }
            }
            Access::Role(role) => {
                if !self.mariadb {
                    // The checks read MariaDB's role catalog; MySQL 8 keeps roles (and its
                    // dynamic privileges) elsewhere, so refuse rather than check nothing.
                    return Err(GuardError::NotAllowed(format!(
                        "membership of `{role}` on MySQL (role requests are checked on MariaDB only)"
                    ))
                    .into());
                }
                Self::check_role(conn, role).await?;
                (role.clone(), None)
            }
        };
        let new_role = create.is_some();
        // p0's own role names are plain; an allowlisted role may need backtick quoting.
        let r = literal_plain(role.as_str()).or_else(|_| ident(role.as_str()))?;
        if let Some(grants) = create {
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
        }
        let acct = account(user.as_str(), &self.host)?;
        let expires = plan.expires_at.format("%Y-%m-%d %H:%M:%S").to_string();
        sqlx::query("INSERT INTO p0_agent.managed (name, kind, request, role, expires) VALUES (?, 'user', ?, ?, ?)")
            .bind(user.as_str())
            .bind(plan.request_id.as_str())
            .bind(role.as_str())
            .bind(plan.expires_at.naive_utc())
            .execute(&mut *conn)
            .await?;
        exec(
            conn,
            &format!(
                "CREATE USER {acct} {}",
                if self.mariadb {
                    format!(
                        "IDENTIFIED BY PASSWORD {}",
                        literal_plain(&native_hash(password.expose_secret()))?
                    )
                } else {
                    // MySQL 8 dropped IDENTIFIED BY PASSWORD; the hash is given with its plugin.
                    format!(
                        "IDENTIFIED WITH mysql_native_password AS {}",
                        literal_plain(&native_hash(password.expose_secret()))?
                    )
                }
            ),
        )
        .await?;
        exec(conn, &format!("GRANT {r} TO {acct}")).await?;
        // Role activation: MariaDB `SET DEFAULT ROLE r FOR u`, MySQL 8 `SET DEFAULT ROLE r TO u`.
        let to = if self.mariadb { "FOR" } else { "TO" };
        exec(conn, &format!("SET DEFAULT ROLE {r} {to} {acct}")).await?;
        exec(
            conn,
            &format!(
                "CREATE EVENT {}.{} ON SCHEDULE AT {} DO DROP USER IF EXISTS {acct}",
                ident(BOOKKEEPING_DB)?,
                ident(&format!("expire_{user}"))?,
                literal_plain(&expires)?
            ),
        )
        .await?;
        Ok((role, new_role))
    }

    async fn cleanup(&self, conn: &mut MySqlConnection, user: &Username, role: Option<&RoleName>) {
        if let Ok(acct) = account(user.as_str(), &self.host) {
            let _ = exec(conn, &format!("DROP USER IF EXISTS {acct}")).await;
        }
        let _ = sqlx::query("DELETE FROM p0_agent.managed WHERE name = ?")
            .bind(user.as_str())
            .execute(&mut *conn)
            .await;
        if let Some(r) = role {
            if let Ok(q) = literal_plain(r.as_str()) {
                let _ = exec(conn, &format!("DROP ROLE IF EXISTS {q}")).await;
                let _ =
                    sqlx::query("DELETE FROM p0_agent.managed WHERE name = ? AND kind = 'role'")
                        .bind(r.as_str())
                        .execute(&mut *conn)
                        .await;
            }
        }
    }
}

#[async_trait]
impl DatabaseProvisioner for MySqlProvisioner {
    fn supports_valid_until(&self) -> bool {
        false
    }

    fn max_username_len(&self) -> usize {
        32
    }

    async fn provision(&self, plan: &ProvisionPlan) -> Result<Credentials, ProvisionError> {
        match &plan.access {
            Access::Permissions(set) => {
                // Database-wide entries are checked when rendered; the rest by the shared guard.
                let tables = without_database_grants(set);
                if set.is_empty() {
                    return Err(GuardError::Empty.into());
                }
                if !tables.is_empty() {
                    self.policy.check_permissions(&tables)?;
                }
            }
            Access::Role(role) => self.policy.check_role(role)?,
        }
        self.policy.check_expiry(plan.expires_at, Utc::now())?;
        let user = username_for(&plan.requester, &plan.request_id, self.max_username_len());
        let password = Password::generate();
        let mut conn = self.locked().await?;
        if let Err(e) = check_backstop(&mut conn).await {
            Self::unlock(&mut conn).await;
            return Err(e);
        }
        let result = self.try_provision(&mut conn, plan, &user, &password).await;
        if let Err(e) = &result {
            if !matches!(e, ProvisionError::Guard(_)) {
                let role = match &plan.access {
                    Access::Permissions(set) => Some(role_name_for(&plan.resource, set)),
                    Access::Role(_) => None,
                };
                let shared = match &role {
                    Some(r) => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM p0_agent.managed WHERE role = ? AND kind = 'user' AND name <> ?")
                        .bind(r.as_str())
                        .bind(user.as_str())
                        .fetch_one(&mut *conn)
                        .await
                        .unwrap_or(1),
                    None => 1,
                };
                self.cleanup(
                    &mut conn,
                    &user,
                    if shared == 0 { role.as_ref() } else { None },
                )
                .await;
            }
        }
        Self::unlock(&mut conn).await;
        let (role, _) = result?;
        tracing::info!(user = %user, role = %role, request = %plan.request_id, "provisioned");
        Ok(Credentials {
            username: user,
            password,
            role,
            expires_at: plan.expires_at,
        })
    }

    async fn revoke(&self, username: &Username) -> Result<RevokeReport, ProvisionError> {
        let mut conn = self.locked().await?;
        let result = self.revoke_locked(&mut conn, username).await;
        Self::unlock(&mut conn).await;
        result
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
}

impl MySqlProvisioner {
    async fn revoke_locked(
        &self,
        conn: &mut MySqlConnection,
        username: &Username,
    ) -> Result<RevokeReport, ProvisionError> {
        let role = match Self::record(conn, username.as_str()).await? {
            Some((kind, role)) if kind == "user" => role,
            Some(_) => return Err(ProvisionError::NotManaged(username.to_string())),
            None if Self::account_exists(conn, username.as_str()).await? => {
                return Err(ProvisionError::NotManaged(username.to_string()))
            }
            None => return Ok(RevokeReport::default()),
        };
        let acct = account(username.as_str(), &self.host)?;
        let mut report = RevokeReport::default();
        let exists = Self::account_exists(conn, username.as_str()).await?;
        if exists {
            exec(conn, &format!("ALTER USER {acct} ACCOUNT LOCK")).await?;
        }
        // DROP USER does not end sessions, and the expiry event may have dropped the account
        // already: KILL every session of that name either way.
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE USER = ?",
        )
        .bind(username.as_str())
        .fetch_all(&mut *conn)
        .await?;
        for id in ids {
            if exec(conn, &format!("KILL CONNECTION {id}")).await.is_ok() {
                report.sessions_terminated += 1;
            }
        }
        if exists {
            report.user_dropped = true;
            let definer = format!("{}@{}", username, self.host);
            let defined: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE DEFINER = ?) + \
                        (SELECT COUNT(*) FROM information_schema.VIEWS WHERE DEFINER = ?) + \
                        (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE DEFINER = ?) + \
                        (SELECT COUNT(*) FROM information_schema.EVENTS WHERE DEFINER = ?)",
            )
            .bind(&definer)
            .bind(&definer)
            .bind(&definer)
            .bind(&definer)
            .fetch_one(&mut *conn)
            .await?;
            if defined > 0 {
                report.notes.push(format!(
                    "{defined} object(s) have DEFINER `{definer}` and will fail until redefined"
                ));
            }
            exec(conn, &format!("DROP USER IF EXISTS {acct}")).await?;
        }
        exec(
            conn,
            &format!(
                "DROP EVENT IF EXISTS {}.{}",
                ident(BOOKKEEPING_DB)?,
                ident(&format!("expire_{username}"))?
            ),
        )
        .await?;
        sqlx::query("DELETE FROM p0_agent.managed WHERE name = ?")
            .bind(username.as_str())
            .execute(&mut *conn)
            .await?;
        if let Some(role) = role {
            let left: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM p0_agent.managed WHERE role = ? AND kind = 'user'",
            )
            .bind(&role)
            .fetch_one(&mut *conn)
            .await?;
            let managed = matches!(Self::record(conn, &role).await?, Some((k, _)) if k == "role");
            if managed && left == 0 {
                exec(
                    conn,
                    &format!("DROP ROLE IF EXISTS {}", literal_plain(&role)?),
                )
                .await?;
                sqlx::query("DELETE FROM p0_agent.managed WHERE name = ?")
                    .bind(&role)
                    .execute(&mut *conn)
                    .await?;
                report.role_dropped = true;
            }
        }
        tracing::info!(user = %username, sessions = report.sessions_terminated, "revoked");
        Ok(report)
    }
}

/// MySQL has no CONNECT or schema USAGE: an extraction never asks for them, and the guard
/// checks table-level objects against the allowed databases.
fn without_database_grants(set: &PermissionSet) -> PermissionSet {
    set.iter()
        .filter(|p| !matches!(p.object.kind, ObjectKind::Database | ObjectKind::Schema))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_hash_matches_mysql() {
        // SELECT PASSWORD('password') on MariaDB.
        assert_eq!(
            native_hash("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }
}
