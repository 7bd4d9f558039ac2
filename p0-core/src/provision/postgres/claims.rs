//! Request claims, kept where any login role may keep something without a privilege: large
//! objects in the agent's database, each with the claim as its comment. A claim's object id is
//! one of [`SLOTS`] ids above 2^31 derived from the request id (the next is taken when another
//! request's claim or someone else's object holds one). Claiming reads every slot and creates
//! the object in one transaction, under an advisory lock per request, so a claim of the same
//! request — concurrent, or after a slot before it was emptied — always finds the first.
//!
//! Only objects owned by a role that could be the agent's admin count (the admin itself, or
//! any role with CREATEROLE or SUPERUSER, which p0 never hands out), so the claims survive a
//! change of the admin's login, and a user's own large object with a forged comment counts for
//! nothing. Only the owner may comment on or remove one — unless `lo_compat_privileges` is on,
//! in which case claiming refuses to run.

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

/// Objects the admin's own login role owns (it may remove them).
const OURS: &str =
    "m.lomowner OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) session_user)";

/// Objects whose comment is taken for a claim: owned by the admin or a role like it.
const TRUSTED: &str =
    "m.lomowner OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT r.oid FROM pg_catalog.pg_roles r \
     WHERE r.rolname OPERATOR(pg_catalog.=) session_user OR r.rolcreaterole OR r.rolsuper))";

/// The object ids a claim of `request` may take: above 2^31, clear of those the server hands
/// out to new databases' objects for a long while.
fn slots(request: &str) -> Vec<i64> {
    let digest = Sha256::digest(request.as_bytes());
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    (0..SLOTS)
        .map(|i| i64::from((1 << 31) | (first.wrapping_add(i) & 0x7fff_ffff)))
        .collect()
}

/// Each slot of `request`: its object id, whether an object holds it, and the claim there, if
/// a trusted owner's comment is one.
async fn read_slots(
    conn: &mut sqlx::PgConnection,
    request: &str,
    prefix: &str,
) -> Result<(Vec<(i64, bool, Option<Claim>)>, bool), ProvisionError> {
    let ids: Vec<String> = slots(request).iter().map(i64::to_string).collect();
    let sql = format!(
        "{prefix}SELECT s.id, m.oid IS NOT NULL, CASE WHEN {TRUSTED} THEN pg_catalog.obj_description(m.oid, 'pg_largeobject') END, \
           pg_catalog.current_setting('lo_compat_privileges') \
         FROM pg_catalog.unnest('{{{}}}'::pg_catalog.int8[]) WITH ORDINALITY AS s(id, i) \
         LEFT JOIN pg_catalog.pg_largeobject_metadata m ON m.oid OPERATOR(pg_catalog.=) s.id::pg_catalog.oid \
         ORDER BY s.i",
        ids.join(",")
    );
    let rows = conn.fetch_all(sql.as_str()).await?;
    let mut out = Vec::new();
    let mut compat = false;
    // The prefix's statements answer rows of one column: the slots' rows have four.
    for row in rows.iter().filter(|r| r.len() == 4) {
        let comment: Option<String> = row.try_get(2)?;
        compat |= row.try_get::<String, _>(3)? != "off";
        out.push((
            row.try_get(0)?,
            row.try_get(1)?,
            comment.as_deref().and_then(Claim::parse),
        ));
    }
    Ok((out, compat))
}

/// Records `claim`: `true` when recorded now, `false` when this request's claim exists.
pub(super) async fn claim(admin: &Admin, claim: &Claim) -> Result<bool, ProvisionError> {
    let mut attempt = 0;
    loop {
        match try_claim(admin, claim).await {
            // Someone else's object appeared in the free slot meanwhile: read them again.
            Err(e) if has_sqlstate(&e, "23505") && attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

async fn try_claim(admin: &Admin, claim: &Claim) -> Result<bool, ProvisionError> {
    let text = literal(&claim.render())?;
    let key = slots(&claim.request)[0] as i32;
    let mut tx = admin.pool.begin().await?;
    // Not flushed to disk on its own: the user's creation commits after it, synchronously,
    // and a commit durable in the WAL makes every earlier one durable (on a promoted standby
    // too). A crash before that loses both, and nothing was handed out.
    let prefix = format!(
        "SET LOCAL synchronous_commit = off; \
         SELECT pg_catalog.pg_advisory_xact_lock({CLAIM_LOCK_CLASS}, {key}); "
    );
    let (slots, compat) = read_slots(&mut tx, &claim.request, &prefix).await?;
    if compat {
        return Err(ProvisionError::Database(
            "lo_compat_privileges is on, so anyone could remove the agent's request claims: turn it off".into(),
        ));
    }
    if slots
        .iter()
        .any(|(_, _, c)| c.as_ref().is_some_and(|c| c.request == claim.request))
    {
        return Ok(false);
    }
    let Some((oid, _, _)) = slots.iter().find(|(_, taken, _)| !taken) else {
        return Err(ProvisionError::Database(format!(
            "no free object id to record request `{}`'s claim ({SLOTS} tried)",
            claim.request
        )));
    };
    let create =
        format!("SELECT pg_catalog.lo_create({oid}); COMMENT ON LARGE OBJECT {oid} IS {text}");
    tx.execute(create.as_str()).await?;
    tx.commit().await?;
    Ok(true)
}

/// Removes the claim of `request` that the admin owns.
pub(super) async fn release(admin: &Admin, request: &str) -> Result<(), ProvisionError> {
    let mut conn = admin.pool.acquire().await?;
    let (slots, _) = read_slots(&mut conn, request, "").await?;
    for (oid, _, c) in slots {
        if c.is_some_and(|c| c.request == request) {
            sqlx::query(&format!(
                "SELECT pg_catalog.lo_unlink(m.oid) FROM pg_catalog.pg_largeobject_metadata m \
                 WHERE m.oid OPERATOR(pg_catalog.=) $1::int8::oid AND {OURS}"
            ))
            .bind(oid)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Removes the admin's claims kept until `now` or earlier; how many.
pub(super) async fn forget(admin: &Admin, now: DateTime<Utc>) -> Result<u64, ProvisionError> {
    let rows: Vec<(i64, Option<String>)> = sqlx::query_as(&format!(
        "SELECT m.oid::int8, pg_catalog.obj_description(m.oid, 'pg_largeobject') FROM pg_catalog.pg_largeobject_metadata m \
         WHERE m.oid OPERATOR(pg_catalog.>=) '2147483648'::oid AND {OURS}"
    ))
    .fetch_all(&admin.pool)
    .await?;
    let due: Vec<i64> = rows
        .into_iter()
        .filter_map(|(oid, comment)| {
            let claim = Claim::parse(comment.as_deref()?)?;
            (claim.until <= now).then_some(oid)
        })
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    // Another sweep may have removed some meanwhile: only those still there are unlinked.
    let removed: i64 = sqlx::query_scalar(&format!(
        "SELECT count(pg_catalog.lo_unlink(m.oid)) FROM pg_catalog.pg_largeobject_metadata m \
         WHERE m.oid OPERATOR(pg_catalog.=) ANY ($1::int8[]::oid[]) AND {OURS}"
    ))
    .bind(&due)
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
    }
}
