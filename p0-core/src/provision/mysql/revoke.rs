//! Revocation, and undoing a creation that failed half-way (MySQL commits DDL at once).

use super::conn::{
    account, account_exists, exec, literal_plain, lock, record, unlock, BOOKKEEPING_DB,
};
use crate::error::ProvisionError;
use crate::provision::plan::RevokeReport;
use crate::sql::mysql::ident;
use crate::types::{RoleName, Username};
use sqlx::mysql::MySqlConnection;

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
    let role = match record(conn, username.as_str()).await? {
        Some((kind, role)) if kind == "user" => role,
        Some(_) => return Err(ProvisionError::NotManaged(username.to_string())),
        None if account_exists(conn, username.as_str()).await? => {
            return Err(ProvisionError::NotManaged(username.to_string()))
        }
        None => return Ok(RevokeReport::default()),
    };
    let acct = account(username.as_str(), host)?;
    let mut report = RevokeReport::default();
    let mut exists = account_exists(conn, username.as_str()).await?;
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
    if exists {
        report.user_dropped = true;
        let defined = defined_by(conn, username, host, role.as_deref(), mariadb).await?;
        if defined > 0 {
            report.notes.push(format!(
                "{defined} object(s) have DEFINER `{username}@{host}` and will fail until redefined"
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
/// it, so they are counted only where the user could have created one: an allowlisted role
/// (anything it may), or one of p0's shared roles holding TRIGGER (p0 grants no other
/// privilege that creates anything).
async fn defined_by(
    conn: &mut MySqlConnection,
    username: &Username,
    host: &str,
    role: Option<&str>,
    mariadb: bool,
) -> Result<i64, ProvisionError> {
    let definer = format!("{username}@{host}");
    // MariaDB keeps routines and events in tables of its own; MySQL 8 in its data
    // dictionary, which `information_schema` reads without opening files.
    let cheap = if mariadb {
        "SELECT (SELECT COUNT(*) FROM mysql.proc WHERE definer = ?) + \
                (SELECT COUNT(*) FROM mysql.event WHERE definer = ?)"
    } else {
        "SELECT (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE DEFINER = ?) + \
                (SELECT COUNT(*) FROM information_schema.EVENTS WHERE DEFINER = ?)"
    };
    let mut defined: i64 = sqlx::query_scalar(cheap)
        .bind(&definer)
        .bind(&definer)
        .fetch_one(&mut *conn)
        .await?;
    let shared = match role {
        Some(r) => matches!(record(conn, r).await?, Some((k, _)) if k == "role"),
        None => false,
    };
    let could_create = !shared
        || {
            let triggers: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mysql.tables_priv WHERE User = ? AND FIND_IN_SET('Trigger', Table_priv) > 0",
        )
        .bind(role)
        .fetch_one(&mut *conn)
        .await?;
            triggers > 0
        };
    if could_create {
        let files: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM information_schema.VIEWS WHERE DEFINER = ?) + \
                    (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE DEFINER = ?)",
        )
        .bind(&definer)
        .bind(&definer)
        .fetch_one(&mut *conn)
        .await?;
        defined += files;
    }
    Ok(defined)
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
