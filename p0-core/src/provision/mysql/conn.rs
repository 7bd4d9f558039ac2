//! The admin connection: p0's named lock, statements sent as text, the bookkeeping table,
//! and the plain literals MySQL takes where it accepts no quoting.

use crate::error::{GuardError, ProvisionError};
use sha1::{Digest, Sha1};
use sqlx::mysql::MySqlConnection;
use sqlx::{Executor, Row};

/// The agent's own database, holding `managed` (MariaDB has no comments on accounts) and the
/// one-shot expiry events.
pub(super) const BOOKKEEPING_DB: &str = "p0_agent";
const LOCK: &str = "p0-provision";

/// `mysql_native_password`'s stored form: `*` + upper-case hex of SHA1(SHA1(password)). Only
/// this reaches the server, so no log holds the password.
pub(super) fn native_hash(password: &str) -> String {
    let inner = Sha1::digest(password.as_bytes());
    format!("*{}", hex::encode_upper(Sha1::digest(inner)))
}

/// `'name'@'host'`.
pub(super) fn account(name: &str, host: &str) -> Result<String, GuardError> {
    Ok(format!("{}@{}", literal_plain(name)?, literal_plain(host)?))
}

/// A plain `'…'` literal for values from a fixed safe alphabet: p0's own `[a-z0-9_]` account
/// names, `%`-style hosts, `*HEX` password hashes and timestamps. Anything else is refused, so
/// no quote or backslash can ever appear (places where MySQL takes only plain strings).
pub(super) fn literal_plain(s: &str) -> Result<String, GuardError> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_%.-:* ".contains(&b))
    {
        return Err(GuardError::BadName(s.into()));
    }
    Ok(format!("'{s}'"))
}

/// The expression that reads `event_scheduler`'s state, for [`backstop`].
pub(super) const BACKSTOP: &str = "CAST(@@GLOBAL.event_scheduler AS CHAR)";

/// The expiry backstop (a one-shot `EVENT` per user) fires only while `event_scheduler`
/// (read by [`BACKSTOP`]) is ON.
pub(super) fn backstop(state: &str) -> Result<(), ProvisionError> {
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

/// [`backstop`], read on `conn`.
pub(super) async fn check_backstop(conn: &mut MySqlConnection) -> Result<(), ProvisionError> {
    let state: String = sqlx::query_scalar(&format!("SELECT {BACKSTOP}"))
        .fetch_one(&mut *conn)
        .await?;
    backstop(&state)
}

pub(super) async fn exec(conn: &mut MySqlConnection, sql: &str) -> Result<(), ProvisionError> {
    conn.execute(sql).await?;
    Ok(())
}

/// Takes p0's provisioning lock on `conn`; give it back with [`unlock`]. It covers only what
/// must not interleave: whether a shared role exists, creating it, joining it and dropping it.
pub(super) async fn lock(conn: &mut MySqlConnection) -> Result<(), ProvisionError> {
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 30)")
        .bind(LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if got != Some(1) {
        return Err(ProvisionError::Database(
            "timed out waiting for the provisioning lock".into(),
        ));
    }
    Ok(())
}

/// Gives p0's provisioning lock back; also sent at the end of a batch.
pub(super) const UNLOCK: &str = "DO RELEASE_LOCK('p0-provision')";

pub(super) async fn unlock(conn: &mut MySqlConnection) {
    let _ = exec(conn, UNLOCK).await;
}

/// p0's record of `name`: its kind (`user` or `role`) and, for a user, its role.
pub(super) async fn record(
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

/// Whether an account (user or role) of that name exists on any host.
pub(super) async fn account_exists(
    conn: &mut MySqlConnection,
    name: &str,
) -> Result<bool, ProvisionError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mysql.user WHERE user = ?")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// In one read: p0's record of `name` ([`record`]) and whether an account of that name
/// exists on any host ([`account_exists`]).
pub(super) async fn record_and_account(
    conn: &mut MySqlConnection,
    name: &str,
) -> Result<(Option<(String, Option<String>)>, bool), ProvisionError> {
    let row = sqlx::query(
        "SELECT m.kind, m.role, (SELECT COUNT(*) FROM mysql.user WHERE user = ?) \
         FROM (SELECT 1) one LEFT JOIN p0_agent.managed m ON m.name = ?",
    )
    .bind(name)
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    let kind: Option<String> = row.try_get(0)?;
    let role: Option<String> = row.try_get(1)?;
    let accounts: i64 = row.try_get(2)?;
    Ok((kind.map(|k| (k, role)), accounts > 0))
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
