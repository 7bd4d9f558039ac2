//! The admin connection: transactions under p0's advisory lock, statements sent as text, the
//! marker read back, and which errors are worth another attempt.

use crate::error::ProvisionError;
use crate::provision::marker::{Lookup, Marker};
use crate::provision::plan::RevokeReport;
use crate::sql::pg::{ident, literal};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::PgConnection;

/// Transient errors worth another attempt: serialization failures, deadlocks, lock timeouts,
/// concurrent role creation across databases, and "tuple concurrently updated" (XX000).
const RETRY_SQLSTATES: &[&str] = &["40001", "40P01", "55P03", "23505", "XX000"];

/// Every admin connection's settings, sent with its startup packet so that they hold from its
/// first statement on and no `ALTER DATABASE`/`ALTER ROLE ... SET` overrides them: nothing
/// resolved through a search_path someone else controls (a database owner could otherwise
/// shadow a catalog function the agent calls with one of theirs, run with the agent's
/// rights), at most 30 s of waiting for a lock, and nothing a database's owner could set to
/// make revocation fail (read-only transactions, a statement or idle timeout, another
/// isolation level). Values as PostgreSQL reads the `options` parameter: a space is escaped.
const SESSION_SETTINGS: [(&str, &str); 6] = [
    ("search_path", "pg_catalog,pg_temp"),
    ("lock_timeout", "30s"),
    ("default_transaction_read_only", "off"),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("default_transaction_isolation", "read\\ committed"),
];

/// `opts` with p0's session settings.
pub(super) fn session_settings(opts: PgConnectOptions) -> PgConnectOptions {
    opts.options(SESSION_SETTINGS)
}

/// Refuses a connection on which p0's session settings do not hold (a connection pooler that
/// drops startup options, say), or whose current user is not the one that logged in (an
/// `ALTER ... SET role`): the agent never runs a statement where a database's owner decides
/// what its names resolve to.
pub(super) async fn check_session(conn: &mut PgConnection) -> Result<(), ProvisionError> {
    let mut sql = String::from("SELECT session_user OPERATOR(pg_catalog.=) current_user");
    for (name, _) in SESSION_SETTINGS {
        sql.push_str(&format!(", pg_catalog.current_setting({})", literal(name)?));
    }
    let row = sqlx::query(&sql).fetch_one(&mut *conn).await?;
    use sqlx::Row;
    if !row.try_get::<bool, _>(0)? {
        return Err(ProvisionError::Database(
            "the agent's connection runs as another role than the one that logged in (a `SET role` for its \
             database or user?): refused"
                .into(),
        ));
    }
    for (i, (name, value)) in SESSION_SETTINGS.iter().enumerate() {
        let now: String = row.try_get(i + 1)?;
        let asked = value.replace("\\ ", " ");
        if now != asked {
            return Err(ProvisionError::Database(format!(
                "the agent's connection has {name} = `{now}`, not the `{asked}` it asked for in its startup packet \
                 (a connection pooler that drops startup options?): refused"
            )));
        }
    }
    Ok(())
}

/// The pool of the agent's admin connections and the keys of p0's advisory locks.
///
/// Two locks, taken only where statements really conflict, always in this order:
/// - the ACL lock (exclusive): granting to or revoking from a shared role rewrites the ACLs
///   of the objects it names, and two such changes to one object at once fail ("tuple
///   concurrently updated"); creating and dropping a shared role take it.
/// - a role's lock: shared while a user joins an existing shared role, exclusive while the
///   role is created or dropped, so no user joins a role that is being dropped.
///
/// Creating a login user (where the server checks its SCRAM verifier, thousands of hash
/// rounds), dropping one, and ending sessions take neither.
pub(super) struct Admin {
    pub(super) pool: PgPool,
    lock_key: i64,
}

/// The first half of a role lock's two-part key: p0's own class of locks.
const ROLE_LOCK_CLASS: i32 = i32::from_be_bytes(*b"p0r\0");

impl Admin {
    pub(super) fn new(pool: PgPool) -> Self {
        // Advisory locks are per database already; the key only has to be p0's own.
        let lock_key = i64::from_be_bytes(*b"p0-lock\0");
        Self { pool, lock_key }
    }

    /// A transaction on a connection the caller holds (the connection's own settings apply:
    /// see [`session_settings`]).
    pub(super) async fn begin_on<'c>(
        conn: &'c mut PgConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, ProvisionError> {
        use sqlx::Connection;
        Ok(conn.begin().await?)
    }

    /// Takes the ACL lock until the end of the transaction.
    pub(super) async fn lock_acls(&self, tx: &mut PgConnection) -> Result<(), ProvisionError> {
        sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1)")
            .bind(self.lock_key)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Takes `role`'s lock, exclusive, until the end of the transaction.
    pub(super) async fn lock_role(
        &self,
        tx: &mut PgConnection,
        role: &str,
    ) -> Result<(), ProvisionError> {
        sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))")
            .bind(ROLE_LOCK_CLASS)
            .bind(role)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// The statement that takes `role`'s lock shared until the end of the transaction, to
    /// send in a batch with others (a user joining an existing shared role).
    pub(super) fn lock_role_shared_sql(role: &str) -> Result<String, ProvisionError> {
        Ok(format!(
            "SELECT pg_catalog.pg_advisory_xact_lock_shared({ROLE_LOCK_CLASS}, pg_catalog.hashtext({}))",
            literal(role)?
        ))
    }
}

/// What the role `name` is: absent, unmarked, or p0's with its marker (the role's comment).
pub(super) async fn marker_of(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Lookup, ProvisionError> {
    let row: Option<Option<String>> = sqlx::query_scalar(
        "SELECT pg_catalog.shobj_description(oid, 'pg_authid') FROM pg_catalog.pg_roles WHERE rolname = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(classify(row))
}

/// A role's lookup from its row: none, or its comment.
pub(super) fn classify(row: Option<Option<String>>) -> Lookup {
    match row {
        None => Lookup::Absent,
        Some(comment) => match comment.as_deref().and_then(Marker::parse) {
            Some(m) => Lookup::Managed(m),
            None => Lookup::Unmarked,
        },
    }
}

/// Runs statements with the simple query protocol (nothing prepared, nothing cached).
pub(super) async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), ProvisionError> {
    use sqlx::Executor;
    conn.execute(sql).await?;
    Ok(())
}

pub(super) fn is_retryable(e: &ProvisionError) -> bool {
    RETRY_SQLSTATES.iter().any(|s| has_sqlstate(e, s))
}

/// The shared role a user was about to join was dropped meanwhile (its last member revoked):
/// worth another attempt, which creates it afresh.
pub(super) fn role_dropped_meanwhile(role: &str) -> ProvisionError {
    ProvisionError::Database(format!(
        "p0's role `{role}` was dropped while a user joined it (SQLSTATE 40001)"
    ))
}

pub(super) fn has_sqlstate(e: &ProvisionError, code: &str) -> bool {
    matches!(e, ProvisionError::Database(msg) if msg.ends_with(&format!("(SQLSTATE {code})")))
}

/// The role that inherits what revoked leases leave behind when others' objects depend on it.
pub(super) const ORPHANS: &str = "p0_orphans";
const ORPHANS_COMMENT: &str =
    "p0: owns objects of revoked leases that others depend on; holds nothing, nobody logs in as it";

/// `DROP OWNED BY name` in the current database, inside the caller's transaction: drops what
/// it owns there (large objects included), revokes what was granted to it, and removes its
/// default privileges. When other roles' objects depend on what it owns, those are kept and
/// given to `p0_orphans` (`REASSIGN OWNED`), so revocation still completes. Never to the
/// agent's admin: a SECURITY DEFINER function it inherited would run with the admin's rights.
pub(super) async fn drop_owned(
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
            orphanage(tx).await?;
            exec(
                tx,
                &format!("REASSIGN OWNED BY {role} TO {ORPHANS}; DROP OWNED BY {role}"),
            )
            .await?;
            report.notes.push(format!(
                "gave {owned} object(s) owned by `{name}`{where_} to `{ORPHANS}`: other objects depend on them"
            ));
        }
        Err(e) => return Err(e),
    }
    exec(tx, "RELEASE SAVEPOINT p0_drop_owned").await
}

/// Makes sure `p0_orphans` exists and is powerless: no login, no attribute, a member of no
/// role. The agent's user is made a member so it may reassign to it (superusers need not
/// be). A role of that name that is anything else is refused: objects would gain its rights.
async fn orphanage(tx: &mut PgConnection) -> Result<(), ProvisionError> {
    let comment = literal(ORPHANS_COMMENT)?;
    exec(tx, "SAVEPOINT p0_orphanage").await?;
    let created = exec(
        tx,
        &format!(
            "CREATE ROLE {ORPHANS} NOLOGIN NOINHERIT; COMMENT ON ROLE {ORPHANS} IS {comment}; \
             GRANT {ORPHANS} TO CURRENT_USER"
        ),
    )
    .await;
    match created {
        Ok(()) => return exec(tx, "RELEASE SAVEPOINT p0_orphanage").await,
        // 42710: it exists; 23505: another revocation created it meanwhile.
        Err(e) if has_sqlstate(&e, "42710") || has_sqlstate(&e, "23505") => {
            exec(tx, "ROLLBACK TO SAVEPOINT p0_orphanage").await?;
        }
        Err(e) => return Err(e),
    }
    let powerless: bool = sqlx::query_scalar(
        "SELECT pg_catalog.shobj_description(r.oid, 'pg_authid') IS NOT DISTINCT FROM $2 AND NOT r.rolcanlogin \
           AND NOT r.rolsuper AND NOT r.rolcreaterole AND NOT r.rolcreatedb AND NOT r.rolreplication \
           AND NOT r.rolbypassrls \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid) \
         FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
    )
    .bind(ORPHANS)
    .bind(ORPHANS_COMMENT)
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(false);
    if !powerless {
        return Err(ProvisionError::Database(format!(
            "role `{ORPHANS}` exists but is not p0's powerless heir (a login, an attribute, a membership \
             or another comment): objects given to it would gain its rights; drop or fix it"
        )));
    }
    exec(tx, "RELEASE SAVEPOINT p0_orphanage").await
}
