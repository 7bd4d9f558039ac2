//! Revocation, and undoing a creation that failed half-way (MySQL commits DDL at once).

use super::conn::{account, account_exists, exec, literal_plain, record, BOOKKEEPING_DB};
use crate::error::ProvisionError;
use crate::provision::plan::RevokeReport;
use crate::sql::mysql::ident;
use crate::types::{RoleName, Username};
use sqlx::mysql::MySqlConnection;

/// Revokes `username` on a connection holding p0's lock: checks p0's record again (the user
/// may be gone meanwhile), locks the account, kills its sessions, reports what it defined,
/// drops it with its expiry event and record, then its role once no user of p0's holds it.
pub(super) async fn revoke_locked(
    conn: &mut MySqlConnection,
    host: &str,
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
    let exists = account_exists(conn, username.as_str()).await?;
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
        let definer = format!("{}@{}", username, host);
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
        let managed = matches!(record(conn, &role).await?, Some((k, _)) if k == "role");
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
    Ok(report)
}

/// Undoes a failed creation: drops the account, its record, and `role` (a role created for it
/// that no other user shares), ignoring what is not there.
pub(super) async fn undo_create(
    conn: &mut MySqlConnection,
    host: &str,
    user: &Username,
    role: Option<&RoleName>,
) {
    if let Ok(acct) = account(user.as_str(), host) {
        let _ = exec(conn, &format!("DROP USER IF EXISTS {acct}")).await;
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
