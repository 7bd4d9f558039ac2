//! Request claims, kept where any login role may keep something without a privilege: large
//! objects in the agent's database, each holding its claim as its data (which only its owner
//! may read, write or remove — unless `lo_compat_privileges` is on, in which case claiming
//! refuses to run). A claim's object id is one of [`SLOTS`] ids above 2^31 derived from the
//! request id (the next is taken when another request's claim or someone else's object holds
//! one). Claiming is one round trip, one implicit transaction: an advisory lock per request,
//! then one statement that reads every id and takes the first free one unless one holds this
//! request's claim — so a claim of the same request, concurrent or after an id before it was
//! emptied, always finds the first.
//!
//! An object counts only when a role that could be the agent's admin owns it: the admin's
//! own are read; one owned by another role with CREATEROLE or SUPERUSER (which p0 never
//! hands out: the agent's previous login, say) cannot be read and counts as this request's
//! claim, so a change of the admin's login never forgets a claim (at worst it refuses a request
//! whose id collides with such an object); a user's own object, whatever it holds, counts for
//! nothing.

use super::conn::{has_sqlstate, Admin};
use crate::error::ProvisionError;
use crate::provision::marker::Claim;
use crate::sql::pg::literal;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{Executor, Row};

/// Object ids a request's claim may take, in order.
const SLOTS: u32 = 4;

/// The first half of the claim lock's key: p0's own class of locks.
const CLAIM_LOCK_CLASS: i32 = i32::from_be_bytes(*b"p0q\0");

/// The admin's own login role.
const ME: &str =
    "(SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) session_user)";

/// Roles that could be the agent's admin.
const ADMIN_LIKE: &str =
    "ARRAY(SELECT oid FROM pg_catalog.pg_roles WHERE rolcreaterole OR rolsuper)";

/// The object ids a claim of `request` may take: above 2^31, clear of those the server hands
/// out to new databases' objects for a long while.
fn slots(request: &str) -> Vec<i64> {
    let digest = Sha256::digest(request.as_bytes());
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    (0..SLOTS)
        .map(|i| i64::from((1 << 31) | (first.wrapping_add(i) & 0x7fff_ffff)))
        .collect()
}

/// `request`'s ids as an array literal.
fn slot_array(request: &str) -> String {
    let ids: Vec<String> = slots(request).iter().map(i64::to_string).collect();
    format!("'{{{}}}'::pg_catalog.int8[]", ids.join(","))
}

/// What a claim's data starts with, whatever its `until`.
fn claim_prefix(request: &str) -> String {
    format!("{{\"request\":\"{request}\",")
}

/// Records `claim`: `true` when recorded now, `false` when this request's claim exists.
pub(super) async fn claim(admin: &Admin, claim: &Claim) -> Result<bool, ProvisionError> {
    let mut attempt = 0;
    loop {
        match try_claim(admin, claim).await {
            // Someone else's object appeared in the free id meanwhile: read them again.
            Err(e) if has_sqlstate(&e, "23505") && attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

async fn try_claim(admin: &Admin, claim: &Claim) -> Result<bool, ProvisionError> {
    let data = serde_json::to_string(claim)
        .map_err(|e| ProvisionError::Database(format!("a claim that does not render: {e}")))?;
    let data = literal(&data)?;
    let prefix = claim_prefix(&claim.request);
    // Only the first bytes are read: whatever else an object of the admin's holds is not read.
    let len = prefix.len();
    let prefix = literal(&prefix)?;
    let ids = slot_array(&claim.request);
    let key = slots(&claim.request)[0] as i32;
    // Not flushed to disk on its own: the user's creation commits after it, synchronously,
    // and a commit durable in the WAL makes every earlier one durable (on a promoted standby
    // too). A crash before that loses both, and nothing was handed out. The free id is taken
    // only when the CASE reaches it (a sub-select in a branch runs when the branch does).
    let sql = format!(
        "SET LOCAL synchronous_commit = off; \
         SELECT pg_catalog.pg_advisory_xact_lock({CLAIM_LOCK_CLASS}, {key})::text; \
         WITH s AS MATERIALIZED ( \
           SELECT t.id, t.i, m.oid IS NOT NULL AS taken, \
             CASE WHEN m.lomowner OPERATOR(pg_catalog.=) {ME} \
                    THEN pg_catalog.lo_get(m.oid, 0, {len}) OPERATOR(pg_catalog.=) pg_catalog.convert_to({prefix}, 'UTF8') \
                  WHEN m.lomowner OPERATOR(pg_catalog.=) ANY ({ADMIN_LIKE}) THEN true \
                  ELSE false END AS ours \
           FROM pg_catalog.unnest({ids}) WITH ORDINALITY AS t(id, i) \
           LEFT JOIN pg_catalog.pg_largeobject_metadata m ON m.oid OPERATOR(pg_catalog.=) t.id::pg_catalog.oid) \
         SELECT CASE \
           WHEN pg_catalog.current_setting('lo_compat_privileges') OPERATOR(pg_catalog.<>) 'off' THEN 'compat' \
           WHEN (SELECT pg_catalog.bool_or(ours) FROM s) THEN 'claimed' \
           ELSE (SELECT pg_catalog.lo_from_bytea(s.id::pg_catalog.oid, pg_catalog.convert_to({data}, 'UTF8'))::text \
                 FROM s WHERE NOT s.taken ORDER BY s.i LIMIT 1) END"
    );
    // Several statements: the simple protocol. Each answers one text column; the last counts.
    let rows = admin.pool.fetch_all(sql.as_str()).await?;
    let outcome: Option<String> = match rows.last() {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    match outcome.as_deref() {
        Some("claimed") => Ok(false),
        Some("compat") => Err(ProvisionError::Database(
            "lo_compat_privileges is on, so anyone could remove the agent's request claims: turn it off".into(),
        )),
        Some(id) if rows.len() == 2 && id.parse::<u32>().is_ok() => Ok(true),
        Some(other) => Err(ProvisionError::Database(format!(
            "unexpected answer to the request's claim: `{other}`"
        ))),
        None => Err(ProvisionError::Database(format!(
            "no free object id to record request `{}`'s claim ({SLOTS} tried)",
            claim.request
        ))),
    }
}

/// Removes the claim of `request` that the admin owns.
pub(super) async fn release(admin: &Admin, request: &str) -> Result<(), ProvisionError> {
    let prefix = claim_prefix(request);
    sqlx::query(&format!(
        "SELECT pg_catalog.lo_unlink(m.oid) FROM pg_catalog.pg_largeobject_metadata m \
         WHERE m.oid OPERATOR(pg_catalog.=) ANY ({}::pg_catalog.oid[]) AND m.lomowner OPERATOR(pg_catalog.=) {ME} \
           AND pg_catalog.lo_get(m.oid, 0, $2) OPERATOR(pg_catalog.=) pg_catalog.convert_to($1, 'UTF8')",
        slot_array(request)
    ))
    .bind(&prefix)
    .bind(prefix.len() as i32)
    .execute(&admin.pool)
    .await?;
    Ok(())
}

/// Removes the admin's claims kept until `now` or earlier; how many. An object of the
/// admin's that holds no claim is left alone.
pub(super) async fn forget(admin: &Admin, now: DateTime<Utc>) -> Result<u64, ProvisionError> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(&format!(
        "SELECT m.oid::int8, pg_catalog.lo_get(m.oid) FROM pg_catalog.pg_largeobject_metadata m \
         WHERE m.oid OPERATOR(pg_catalog.>=) '2147483648'::pg_catalog.oid AND m.lomowner OPERATOR(pg_catalog.=) {ME}"
    ))
    .fetch_all(&admin.pool)
    .await?;
    let (due, data): (Vec<i64>, Vec<Vec<u8>>) = rows
        .into_iter()
        .filter(|(_, data)| {
            serde_json::from_slice::<Claim>(data).is_ok_and(|claim| claim.until <= now)
        })
        .unzip();
    if due.is_empty() {
        return Ok(0);
    }
    // Only what still holds the claim read here is removed (another sweep may have removed
    // it, and another request's claim taken its id, meanwhile).
    let removed: i64 = sqlx::query_scalar(&format!(
        "SELECT count(pg_catalog.lo_unlink(m.oid)) \
         FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.bytea[])) AS d(id, data) \
         JOIN pg_catalog.pg_largeobject_metadata m ON m.oid OPERATOR(pg_catalog.=) d.id::pg_catalog.oid \
         WHERE m.lomowner OPERATOR(pg_catalog.=) {ME} AND pg_catalog.lo_get(m.oid) OPERATOR(pg_catalog.=) d.data"
    ))
    .bind(&due)
    .bind(&data)
    .fetch_one(&admin.pool)
    .await?;
    Ok(removed as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_has_four_distinct_slots_above_2_to_the_31() {
        let s = slots("0123456789abcdef");
        assert_eq!(s.len(), 4);
        assert!(s.iter().all(|o| (1i64 << 31..1i64 << 32).contains(o)));
        let mut d = s.clone();
        d.dedup();
        assert_eq!(d, s);
        assert_ne!(slots("other-request")[0], s[0]);
        let data = serde_json::to_string(&Claim::new("r1r1r1r1".into())).unwrap_or_default();
        assert!(data.starts_with(&claim_prefix("r1r1r1r1")), "{data}");
    }
}
