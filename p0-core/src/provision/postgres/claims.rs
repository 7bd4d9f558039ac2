//! Request claims, kept where any login role may keep something without a privilege: large
//! objects of the agent's admin in its database, each with the claim as its comment. A claim's
//! object id is derived from the request id (one of [`SLOTS`] ids above 2^31, tried in turn when
//! another request's claim or someone else's object holds one), so recording a claim is one
//! implicit transaction that creating the object makes atomic: a second claim of the same
//! request finds the first. Only objects the admin owns count: a user's own large object with a
//! forged comment is skipped, and only the owner may remove or comment on one.

use super::conn::{has_sqlstate, Admin};
use crate::error::ProvisionError;
use crate::provision::marker::Claim;
use crate::sql::pg::literal;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Object ids a request's claim may take, in order.
const SLOTS: u32 = 4;

/// The admin's own role, as a condition on `lomowner`.
const OURS: &str =
    "m.lomowner OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) session_user)";

/// The object ids a claim of `request` may take: above 2^31, clear of those the server hands
/// out to new databases' objects for a long while.
fn slots(request: &str) -> impl Iterator<Item = i64> {
    let digest = Sha256::digest(request.as_bytes());
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    (0..SLOTS).map(move |i| i64::from((1 << 31) | (first.wrapping_add(i) & 0x7fff_ffff)))
}

/// Records `claim`: `true` when recorded now, `false` when this request's claim exists.
pub(super) async fn claim(admin: &Admin, claim: &Claim) -> Result<bool, ProvisionError> {
    let text = literal(&claim.render())?;
    for oid in slots(&claim.request) {
        // Not flushed to disk on its own: the user's creation commits after it, synchronously,
        // and a commit durable in the WAL makes every earlier one durable (on a promoted
        // standby too). A crash before that loses both, and nothing was handed out.
        let sql = format!(
            "SET LOCAL synchronous_commit = off; SELECT pg_catalog.lo_create({oid}); \
             COMMENT ON LARGE OBJECT {oid} IS {text}"
        );
        let taken = match sqlx::raw_sql(&sql).execute(&admin.pool).await {
            Ok(_) => return Ok(true),
            Err(e) => ProvisionError::from(e),
        };
        // 23505: an object of that id exists (or is being created by a concurrent claim,
        // which this statement waited for).
        if !has_sqlstate(&taken, "23505") {
            return Err(taken);
        }
        if holder(admin, oid)
            .await?
            .is_some_and(|c| c.request == claim.request)
        {
            return Ok(false);
        }
    }
    Err(ProvisionError::Database(format!(
        "no free object id to record request `{}`'s claim ({SLOTS} tried)",
        claim.request
    )))
}

/// The claim held by the admin's object `oid`, if any.
async fn holder(admin: &Admin, oid: i64) -> Result<Option<Claim>, ProvisionError> {
    let comment: Option<Option<String>> = sqlx::query_scalar(&format!(
        "SELECT pg_catalog.obj_description(m.oid, 'pg_largeobject') FROM pg_catalog.pg_largeobject_metadata m \
         WHERE m.oid OPERATOR(pg_catalog.=) $1::int8::oid AND {OURS}"
    ))
    .bind(oid)
    .fetch_optional(&admin.pool)
    .await?;
    Ok(comment.flatten().as_deref().and_then(Claim::parse))
}

/// Removes the claim of `request`.
pub(super) async fn release(admin: &Admin, request: &str) -> Result<(), ProvisionError> {
    for oid in slots(request) {
        if holder(admin, oid)
            .await?
            .is_some_and(|c| c.request == request)
        {
            sqlx::query("SELECT pg_catalog.lo_unlink($1::int8::oid)")
                .bind(oid)
                .execute(&admin.pool)
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
        let s: Vec<i64> = slots("0123456789abcdef").collect();
        assert_eq!(s.len(), 4);
        assert!(s.iter().all(|o| (1i64 << 31..1i64 << 32).contains(o)));
        let mut d = s.clone();
        d.dedup();
        assert_eq!(d, s);
        assert_ne!(slots("other-request").next(), s.first().copied());
    }
}
