//! Revocation, and undoing a creation that failed half-way (MySQL commits DDL at once).

use super::conn::{
    account, account_exists, exec, literal_plain, lock, record, unlock, BOOKKEEPING_DB,
};
use crate::error::ProvisionError;
use crate::provision::plan::RevokeReport;
use crate::sql::mysql::{ident, literal};
use crate::types::{RoleName, Username};
use sqlx::mysql::MySqlConnection;
use sqlx::Row;

/// Revokes `username`: checks p0's record (the user may be gone meanwhile), locks the
/// account, kills its sessions, reports what it defined, drops it with its expiry event and
/// record, then, under p0's lock, its role once no user of p0's holds it. Only that last
/// step takes the lock.
pub(super) async fn revoke(
    conn: &mut MySqlConnection,
    host: &str,
    mariadb: bool,
    username: &Username,
) -> Result<RevokeReport, ProvisionError> {
    // One read: p0's record of the user (it may be gone meanwhile), whether its account
    // exists on any host, and whether its role is one of p0's shared roles and holds TRIGGER
    // (the only privilege p0 grants that creates anything).
    let row = sqlx::query(
        "SELECT u.kind, u.role, (SELECT COUNT(*) FROM mysql.user WHERE user = ?), \
                (SELECT COUNT(*) FROM p0_agent.managed r WHERE r.name = u.role AND r.kind = 'role'), \
                (SELECT COUNT(*) FROM mysql.tables_priv t WHERE t.User = u.role \
                   AND FIND_IN_SET('Trigger', t.Table_priv) > 0) \
         FROM (SELECT 1) one LEFT JOIN p0_agent.managed u ON u.name = ?",
    )
    .bind(username.as_str())
    .bind(username.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let kind: Option<String> = row.try_get(0)?;
    let role: Option<String> = row.try_get(1)?;
    let accounts: i64 = row.try_get(2)?;
    let shared: i64 = row.try_get(3)?;
    let triggers: i64 = row.try_get(4)?;
    match kind.as_deref() {
        Some("user") => {}
        Some(_) => return Err(ProvisionError::NotManaged(username.to_string())),
        None if accounts > 0 => return Err(ProvisionError::NotManaged(username.to_string())),
        None => return Ok(RevokeReport::default()),
    }
    // Views and triggers are looked for only where the user could have created one: an
    // allowlisted role (anything it may), or a shared role holding TRIGGER.
    let could_create = shared == 0 || triggers > 0;
    let acct = account(username.as_str(), host)?;
    let mut report = RevokeReport::default();
    let mut exists = accounts > 0;
    if exists {
        if let Err(e) = exec(conn, &format!("ALTER USER {acct} ACCOUNT LOCK")).await {
            // A concurrent revocation (the sweeper's, say) may have dropped it just now;
            // an account of that name left under another host is an error, not "gone".
            if account_exists(conn, username.as_str()).await? {
                return Err(e);
            }
            exists = false;
        }
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
    report.disabled_at = Some(chrono::Utc::now());
    let mut drop = String::new();
    if exists {
        report.user_dropped = true;
        let defined = defined_by(conn, username, host, could_create, mariadb).await?;
        if defined > 0 {
            report.notes.push(format!(
                "{defined} object(s) have DEFINER `{username}@{host}` and will fail until redefined"
            ));
        }
        drop = format!("DROP USER IF EXISTS {acct}; ");
    }
    // One batch: the user, its expiry event, its record.
    exec(
        conn,
        &format!(
            "{drop}DROP EVENT IF EXISTS {}.{}; DELETE FROM p0_agent.managed WHERE name = {}",
            ident(BOOKKEEPING_DB)?,
            ident(&format!("expire_{username}"))?,
            literal(username.as_str())?
        ),
    )
    .await?;
    if let Some(role) = role {
        if users_of(conn, &role).await? == 0 {
            lock(conn).await?;
            let dropped = drop_role_if_unused(conn, &role).await;
            unlock(conn).await;
            report.role_dropped = dropped?;
        }
    }
    Ok(report)
}

/// p0's users whose record names `role`.
async fn users_of(conn: &mut MySqlConnection, role: &str) -> Result<i64, ProvisionError> {
    Ok(
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM p0_agent.managed WHERE role = ? AND kind = 'user'",
        )
        .bind(role)
        .fetch_one(&mut *conn)
        .await?,
    )
}

/// Under p0's lock: drops `role` when it is p0's and no user of p0's holds it (one may have
/// joined since it was last counted).
async fn drop_role_if_unused(
    conn: &mut MySqlConnection,
    role: &str,
) -> Result<bool, ProvisionError> {
    let managed = matches!(record(conn, role).await?, Some((k, _)) if k == "role");
    if !managed || users_of(conn, role).await? > 0 {
        return Ok(false);
    }
    exec(
        conn,
        &format!("DROP ROLE IF EXISTS {}", literal_plain(role)?),
    )
    .await?;
    sqlx::query("DELETE FROM p0_agent.managed WHERE name = ?")
        .bind(role)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// How many stored objects name the user as their DEFINER. Routines and events are counted
/// from their own tables, which is cheap. Views and triggers live in files that only a scan
/// of `information_schema` opens, which costs milliseconds on an empty server and grows with
/// it, so they are counted only where the user could have created one (`files`).
async fn defined_by(
    conn: &mut MySqlConnection,
    username: &Username,
    host: &str,
    files: bool,
    mariadb: bool,
) -> Result<i64, ProvisionError> {
    let definer = format!("{username}@{host}");
    // MariaDB keeps routines and events in tables of its own; MySQL 8 in its data
    // dictionary, which `information_schema` reads without opening files.
    let cheap = if mariadb {
        "(SELECT COUNT(*) FROM mysql.proc WHERE definer = ?) + \
         (SELECT COUNT(*) FROM mysql.event WHERE definer = ?)"
    } else {
        "(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE DEFINER = ?) + \
         (SELECT COUNT(*) FROM information_schema.EVENTS WHERE DEFINER = ?)"
    };
    let sql = if files {
        format!(
            "SELECT {cheap} + (SELECT COUNT(*) FROM information_schema.VIEWS WHERE DEFINER = ?) + \
             (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE DEFINER = ?)"
        )
    } else {
        format!("SELECT {cheap}")
    };
    let mut q = sqlx::query_scalar(&sql).bind(&definer).bind(&definer);
    if files {
        q = q.bind(&definer).bind(&definer);
    }
    Ok(q.fetch_one(&mut *conn).await?)
}

/// Undoes a failed creation: drops the account, its expiry event, its record, and `role` (a
/// role created for it that no other user shares), ignoring what is not there.
pub(super) async fn undo_create(
    conn: &mut MySqlConnection,
    host: &str,
    user: &Username,
    role: Option<&RoleName>,
) {
    if let Ok(acct) = account(user.as_str(), host) {
        let _ = exec(conn, &format!("DROP USER IF EXISTS {acct}")).await;
    }
    if let (Ok(db), Ok(event)) = (ident(BOOKKEEPING_DB), ident(&format!("expire_{user}"))) {
        let _ = exec(conn, &format!("DROP EVENT IF EXISTS {db}.{event}")).await;
    }
    let _ = sqlx::query("DELETE FROM p0_agent.managed WHERE name = ?")
        .bind(user.as_str())
        .execute(&mut *conn)
        .await;
    if let Some(r) = role {
        if let Ok(q) = literal_plain(r.as_str()) {
            let _ = exec(conn, &format!("DROP ROLE IF EXISTS {q}")).await;
            let _ = sqlx::query("DELETE FROM p0_agent.managed WHERE name = ? AND kind = 'role'")
                .bind(r.as_str())
                .execute(&mut *conn)
                .await;
        }
    }
}
