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
    report.disabled_at = Some(chrono::Utc::now());
    let mut attempt = 0;
    // The first round goes on with this connection; a retried one takes a fresh one from the
    // pool (pinged), in case this one broke.
    let mut first = Some(conn);
    loop {
        let mut conn = match first.take() {
            Some(conn) => conn,
            None => admin.pool.acquire().await?,
        };
        // Each round reports afresh: a retried round must not repeat the notes.
        let mut round = report.clone();
        match try_drop(admin, &mut conn, username, role, &mut round).await {
            Ok(()) => return Ok(round),
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

/// Removes the user, and its role once no other member is left, from every database of
/// the cluster: first the databases other than the managed one where either owns
/// something or holds a privilege (a large object in `template1`, default privileges, a
/// grant from another user), then the managed one, where the roles themselves are dropped.
/// A user that owns and holds nothing here (the usual case: its privileges are its role's)
/// is dropped under no lock; what rewrites others' ACLs takes the ACL lock, and the role is
/// dropped under its own lock, so no user joins it meanwhile. All on one connection.
async fn try_drop(
    admin: &Admin,
    conn: &mut PgConnection,
    username: &Username,
    role: Option<&str>,
    report: &mut RevokeReport,
) -> Result<(), ProvisionError> {
    clean_other_databases(admin, conn, username, role, report).await?;
    let mut tx = Admin::begin_on(conn).await?;
    let (marked, holds): (Option<String>, bool) = sqlx::query_as(
        "SELECT shobj_description(r.oid, 'pg_authid'), EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend d \
           WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = r.oid \
             AND d.dbid IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))) \
         FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
    )
    .bind(username.as_str())
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or((None, false));
    if marked.as_deref().and_then(Marker::parse).is_some() {
        // What it owns or holds here is in others' ACLs: that takes the ACL lock.
        if holds {
            admin.lock_acls(&mut tx).await?;
            drop_owned(&mut tx, username.as_str(), "", report).await?;
        }
        // One round trip; a failed DROP stops the batch before the RELEASE.
        let drop_user = format!(
            "SAVEPOINT p0_drop_user; DROP ROLE {}; RELEASE SAVEPOINT p0_drop_user",
            ident(username.as_str())?
        );
        match exec(&mut tx, &drop_user).await {
            Ok(()) => {}
            Err(e) => {
                // Dropped by a concurrent revocation since the marker was read: gone is
                // gone. Anything else fails.
                exec(&mut tx, "ROLLBACK TO SAVEPOINT p0_drop_user").await?;
                if marker_of(&mut tx, username.as_str()).await? != Lookup::Absent {
                    return Err(e);
                }
                report.user_dropped = false;
            }
        }
    } else {
        // Gone already: a concurrent revocation (the sweeper's, say) dropped it.
        report.user_dropped = false;
    }
    tx.commit().await?;
    let Some(role) = role else {
        return Ok(());
    };
    if !role_goes_with(&mut *conn, role, username).await? {
        return Ok(());
    }
    let mut tx = Admin::begin_on(conn).await?;
    admin.lock_acls(&mut tx).await?;
    admin.lock_role(&mut tx, role, false).await?;
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

/// Whether `role` is p0's and has no member but `user`: it is dropped with the user.
async fn role_goes_with<'c, C>(conn: C, role: &str, user: &Username) -> Result<bool, ProvisionError>
where
    C: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    // Whether any other member exists, not how many: the first one found answers, whatever
    // the number of live leases sharing the role.
    let (comment, others): (Option<String>, bool) = sqlx::query_as(
        "SELECT shobj_description(r.oid, 'pg_authid'), EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m \
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

/// `DROP OWNED` in every other database where the catalog's shared dependencies show the
/// user, or its role and the grain roles that go with it, owns something or holds a
/// privilege: exactly where `DROP ROLE` would otherwise fail. A database that allows no
/// connections cannot be cleaned and is reported (the sweeper retries).
async fn clean_other_databases(
    admin: &Admin,
    here: &mut PgConnection,
    username: &Username,
    role: Option<&str>,
    report: &mut RevokeReport,
) -> Result<(), ProvisionError> {
    use sqlx::Connection;
    // A member may act as its set role's grain roles too, in any database.
    let grains = match role {
        Some(role) => super::grains::grains_alone(&mut *here, role).await?,
        None => Vec::new(),
    };
    let candidates: Vec<String> = std::iter::once(username.as_str())
        .chain(role)
        .chain(grains.iter().map(String::as_str))
        .map(str::to_string)
        .collect();
    let rows: Vec<(String, bool, String)> = sqlx::query_as(
        "SELECT DISTINCT d.datname::text, d.datallowconn, r.rolname::text FROM pg_catalog.pg_shdepend s \
         JOIN pg_catalog.pg_database d ON d.oid = s.dbid JOIN pg_catalog.pg_roles r ON r.oid = s.refobjid \
         WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass AND r.rolname = ANY($1) \
           AND d.datname <> current_database() ORDER BY 1",
    )
    .bind(&candidates)
    .fetch_all(&mut *here)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    // The role and its grains are cleaned elsewhere only when the role goes: its other
    // members keep what it holds (and a grain with another member is not in `grains`).
    let mut names = vec![username.as_str()];
    if let Some(role) = role {
        if rows.iter().any(|r| r.2 != username.as_str())
            && role_goes_with(&mut *here, role, username).await?
        {
            names.push(role);
            names.extend(grains.iter().map(String::as_str));
        }
    }
    let mut dbs: Vec<(String, bool)> = rows
        .into_iter()
        .filter(|r| names.contains(&r.2.as_str()))
        .map(|r| (r.0, r.1))
        .collect();
    dbs.dedup();
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
            let mut tx = Admin::begin_on(&mut conn).await?;
            for name in &names {
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
