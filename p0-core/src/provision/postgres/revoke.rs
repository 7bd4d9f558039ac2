//! Revocation: no new logins, open sessions ended, then everything the user and its unshared
//! role own or hold removed from every database of the cluster, and the roles dropped.

use super::conn::{drop_owned, exec, has_sqlstate, is_retryable, marker_of, Admin};
use crate::error::ProvisionError;
use crate::provision::managed::backoff;
use crate::provision::marker::{Lookup, Marker};
use crate::provision::plan::{AccountKind, RevokeReport};
use crate::sql::pg::ident;
use crate::types::Username;
use sqlx::PgConnection;

const MAX_ATTEMPTS: u32 = 8;

/// Removes `username` (p0's, as its marker said) and its role `role` once no other member is
/// left.
pub(super) async fn delete(
    admin: &Admin,
    username: &Username,
    role: Option<&str>,
) -> Result<RevokeReport, ProvisionError> {
    let mut conn = admin.pool.acquire().await?;
    let user = ident(username.as_str())?;
    // First no new logins, then end the sessions that are open (waiting up to 5 s each).
    let mut attempt = 0;
    while let Err(e) = exec(&mut conn, &format!("ALTER ROLE {user} NOLOGIN")).await {
        // A concurrent revocation (the sweeper's, say) dropped it meanwhile (42704, or
        // "tuple concurrently deleted"): that is this one's outcome too. One that altered it
        // at the same moment ("tuple concurrently updated") is waited out. Anything else fails.
        if marker_of(&mut conn, username.as_str()).await? == Lookup::Absent {
            return Ok(RevokeReport::default());
        }
        if !is_retryable(&e) || attempt + 1 >= MAX_ATTEMPTS {
            return Err(e);
        }
        attempt += 1;
        backoff(attempt).await;
    }
    let mut report = RevokeReport {
        user_dropped: true,
        ..RevokeReport::default()
    };
    let mut now = end_sessions_and_read(&mut conn, username, &mut report).await?;
    report.disabled_at = Some(chrono::Utc::now());
    let mut attempt = 0;
    // The first round goes on with this connection and what was just read; a retried one
    // takes a fresh connection from the pool (pinged), in case this one broke, and ends the
    // sessions and reads the user afresh.
    let mut first = Some(conn);
    loop {
        let mut conn = match first.take() {
            Some(conn) => conn,
            None => {
                let mut conn = admin.pool.acquire().await?;
                now = end_sessions_and_read(&mut conn, username, &mut report).await?;
                conn
            }
        };
        // Each round reports afresh: a retried round must not repeat the notes.
        let mut round = report.clone();
        match try_drop(admin, &mut conn, username, &now, role, &mut round).await {
            Ok(()) => {
                // A login that passed authentication before NOLOGIN committed may have
                // registered only after the sessions were last counted: by its oid (its name
                // is gone with it), every session of the user is ended once more.
                if let Some(oid) = now.oid {
                    round.sessions_terminated += end_sessions_of(&mut conn, oid).await?;
                }
                return Ok(round);
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
}

/// What revocation found of the user once its sessions were ended.
#[derive(Debug)]
struct UserNow {
    /// The user's oid, while it exists.
    oid: Option<i64>,
    /// The user's comment (`None` when it is gone or unmarked).
    comment: Option<String>,
    /// Whether it owns or holds anything in any database of the cluster.
    holds: bool,
}

impl UserNow {
    fn is_ours(&self) -> bool {
        self.comment.as_deref().and_then(Marker::parse).is_some()
    }
}

/// Ends the user's sessions until a pass sees none (waiting up to 5 s for each), counting
/// them in `report`, and reads what the user is now: whether it is still p0's, and whether it
/// owns or holds anything in any database (the usual answer is no: its privileges are its
/// role's).
async fn end_sessions_and_read(
    conn: &mut PgConnection,
    username: &Username,
    report: &mut RevokeReport,
) -> Result<UserNow, ProvisionError> {
    loop {
        let (seen, ended, oid, comment, holds): (i64, i64, Option<i64>, Option<String>, bool) =
            sqlx::query_as(
                // The FILTER, not a WHERE, guards the call: a WHERE's conditions may be
                // evaluated in any order, and pg_terminate_backend must never see another
                // user's session.
                "SELECT s.seen, s.ended, r.oid::pg_catalog.int8, pg_catalog.shobj_description(r.oid, 'pg_authid'), \
                        EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend d \
                          WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND d.refobjid = r.oid) \
                 FROM (SELECT count(*) AS seen, \
                              count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid, 5000)) AS ended \
                       FROM pg_catalog.pg_stat_activity \
                       WHERE usename OPERATOR(pg_catalog.=) $1 AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()) s \
                 LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) $1",
            )
            .bind(username.as_str())
            .fetch_one(&mut *conn)
            .await?;
        report.sessions_terminated += ended as u64;
        if seen == 0 {
            return Ok(UserNow {
                oid,
                comment,
                holds,
            });
        }
    }
}

/// Ends every session of the user whose oid was `oid`, until none is left; how many it ended.
async fn end_sessions_of(conn: &mut PgConnection, oid: i64) -> Result<u64, ProvisionError> {
    let mut total = 0;
    loop {
        let (seen, ended): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid, 5000)) \
             FROM pg_catalog.pg_stat_activity \
             WHERE usesysid OPERATOR(pg_catalog.=) $1::pg_catalog.oid \
               AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()",
        )
        .bind(oid)
        .fetch_one(&mut *conn)
        .await?;
        total += ended as u64;
        if seen == 0 {
            return Ok(total);
        }
    }
}

/// Removes the user, and its role once no other member is left, from every database of
/// the cluster: first the databases other than the managed one where either owns
/// something or holds a privilege (a large object in `template1`, default privileges, a
/// grant from another user), then the managed one, where the roles themselves are dropped.
/// A user that owns and holds nothing anywhere (the usual case: its privileges are its
/// role's) is dropped with one statement under no lock; what rewrites others' ACLs takes the
/// ACL lock, and the role is dropped under its own lock, so no user joins it meanwhile. All
/// on one connection.
async fn try_drop(
    admin: &Admin,
    conn: &mut PgConnection,
    username: &Username,
    now: &UserNow,
    role: Option<&str>,
    report: &mut RevokeReport,
) -> Result<(), ProvisionError> {
    if !now.is_ours() {
        // Gone already: a concurrent revocation (the sweeper's, say) dropped it.
        report.user_dropped = false;
    } else if !now.holds {
        // It owns and holds nothing: no ACL is rewritten. Something granted to it since
        // fails the DROP (2BP01) and the round is retried the long way.
        drop_user(conn, username, false, report).await?;
    } else {
        let names = [username.as_str().to_string()];
        clean_other_databases(admin, conn, &names, report).await?;
        let mut tx = Admin::begin_on(conn).await?;
        // What it owns or holds here is in others' ACLs: that takes the ACL lock.
        admin.lock_acls(&mut tx).await?;
        drop_owned(&mut tx, username.as_str(), "", report).await?;
        drop_user(&mut tx, username, true, report).await?;
        tx.commit().await?;
    }
    let Some(role) = role else {
        return Ok(());
    };
    if !role_goes_with(&mut *conn, role, username).await? {
        return Ok(());
    }
    // The role and the grain roles that go with it, everywhere: a member may act as them in
    // any database.
    let mut names = vec![role.to_string()];
    names.extend(super::grains::grains_alone(&mut *conn, role).await?);
    clean_other_databases(admin, conn, &names, report).await?;
    let mut tx = Admin::begin_on(conn).await?;
    admin.lock_acls(&mut tx).await?;
    admin.lock_role(&mut tx, role).await?;
    // Checked again under the lock: a user may have joined since.
    if role_goes_with(&mut *tx, role, username).await? {
        let grains = super::grains::grains_of(&mut tx, role).await?;
        drop_owned(&mut tx, role, "", report).await?;
        exec(&mut tx, &format!("DROP ROLE {}", ident(role)?)).await?;
        report.role_dropped = true;
        // Its grain roles go too once no other set role is a member (the ACL lock is held).
        super::grains::drop_unused(&mut tx, &grains, report).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Drops the user; in a transaction (`in_tx`), under a savepoint, all in one round trip (a
/// failed DROP stops the batch before the RELEASE). Dropped by a concurrent revocation since
/// it was read: gone is gone. Anything else fails.
async fn drop_user(
    conn: &mut PgConnection,
    username: &Username,
    in_tx: bool,
    report: &mut RevokeReport,
) -> Result<(), ProvisionError> {
    let user = ident(username.as_str())?;
    let sql = if in_tx {
        format!("SAVEPOINT p0_drop_user; DROP ROLE {user}; RELEASE SAVEPOINT p0_drop_user")
    } else {
        format!("DROP ROLE {user}")
    };
    let Err(e) = exec(conn, &sql).await else {
        return Ok(());
    };
    if in_tx {
        exec(conn, "ROLLBACK TO SAVEPOINT p0_drop_user").await?;
    }
    if marker_of(conn, username.as_str()).await? != Lookup::Absent {
        return Err(e);
    }
    report.user_dropped = false;
    Ok(())
}

/// Whether `role` is p0's and has no member but `user`: it is dropped with the user.
async fn role_goes_with<'c, C>(conn: C, role: &str, user: &Username) -> Result<bool, ProvisionError>
where
    C: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    // Whether any other member exists, not how many: the first one found answers, whatever
    // the number of live leases sharing the role.
    let (comment, others): (Option<String>, bool) = sqlx::query_as(
        "SELECT pg_catalog.shobj_description(r.oid, 'pg_authid'), EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m \
           WHERE m.roleid = r.oid AND m.member IS DISTINCT FROM \
             (SELECT u.oid FROM pg_catalog.pg_roles u WHERE u.rolname = $2)) \
         FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
    )
    .bind(role)
    .bind(user.as_str())
    .fetch_optional(conn)
    .await?
    .unwrap_or((None, true));
    let managed_role = comment
        .as_deref()
        .and_then(Marker::parse)
        .is_some_and(|m| m.kind == AccountKind::Role);
    Ok(managed_role && !others)
}

/// `DROP OWNED` in every other database where the catalog's shared dependencies show one of
/// `names` owns something or holds a privilege: exactly where `DROP ROLE` would otherwise
/// fail. A database that allows no connections cannot be cleaned and is reported (the
/// sweeper retries).
async fn clean_other_databases(
    admin: &Admin,
    here: &mut PgConnection,
    names: &[String],
    report: &mut RevokeReport,
) -> Result<(), ProvisionError> {
    use sqlx::Connection;
    let dbs: Vec<(String, bool)> = sqlx::query_as(
        "SELECT DISTINCT d.datname::text, d.datallowconn FROM pg_catalog.pg_shdepend s \
         JOIN pg_catalog.pg_database d ON d.oid = s.dbid JOIN pg_catalog.pg_roles r ON r.oid = s.refobjid \
         WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass \
           AND r.rolname OPERATOR(pg_catalog.=) ANY($1) \
           AND d.datname OPERATOR(pg_catalog.<>) pg_catalog.current_database() ORDER BY 1",
    )
    .bind(names)
    .fetch_all(&mut *here)
    .await?;
    for (db, allows_connections) in dbs {
        if !allows_connections {
            return Err(ProvisionError::Database(format!(
                "`{}` owns objects or holds privileges in database `{db}`, which allows no connections: \
                 allow connections to it (or remove them there) and revocation completes",
                names.join("`, `")
            )));
        }
        let opts = (*admin.pool.connect_options()).clone().database(&db);
        let mut conn = PgConnection::connect_with(&opts).await?;
        let result = async {
            super::conn::check_session(&mut conn).await?;
            let mut tx = Admin::begin_on(&mut conn).await?;
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
