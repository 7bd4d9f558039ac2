//! Server state behind a trait: [`SqliteStore`] (the default: one file, one server) or
//! [`PostgresStore`] (several server replicas on one database), chosen by the store URL
//! ([`open`]). Nothing outside this module assumes either.
//!
//! Several replicas behave as one because nothing is read, modified and written back blindly:
//! a record carries the version it was read at, and an update applies only to that version
//! ([`Conflict`] otherwise); the audit chain is appended under a lock of the database, so it
//! never forks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p0_core::api::{GrantView, RequestStatus};
use p0_core::audit::{entry_hash, AuditEntry, GENESIS};
use p0_core::route::Decision;
use p0_core::{PermissionSet, RequestId, SignedRequest};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod postgres;
mod sqlite;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Everything the server keeps about one request. No password and no token: the sealed
/// password is readable only with the requester's private key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Its id.
    pub id: RequestId,
    /// Who asked.
    pub requester: String,
    /// The requester's groups when they asked.
    pub groups: Vec<String>,
    /// What they signed.
    pub signed: SignedRequest,
    /// Their signature.
    pub signature: String,
    /// Their public key.
    pub public_key: String,
    /// Where it is.
    pub status: RequestStatus,
    /// What it needs.
    pub permissions: Option<PermissionSet>,
    /// The routing decision.
    pub decision: Option<Decision>,
    /// The rule that decided, when the router names its rules.
    #[serde(default)]
    pub rule: Option<String>,
    /// Who approved, and what.
    pub approvals: Vec<Approval>,
    /// The credentials, while active.
    pub grant: Option<GrantView>,
    /// Why it was denied or failed.
    pub message: Option<String>,
    /// Made at.
    pub created_at: DateTime<Utc>,
    /// Failed revocation attempts so far (reaper backoff).
    pub revoke_attempts: u32,
    /// Earliest next revocation attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// While a server replica asks the agent for the user, until when (another replica does
    /// not ask meanwhile; a replica that died mid-call holds it no longer than this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<DateTime<Utc>>,
    /// The store's version of the record when it was read (not part of the stored body): an
    /// update applies only to this version.
    #[serde(skip)]
    pub version: i64,
}

/// One approval, bound to the [`p0_core::api::approval_digest`] of what the approver saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Who approved.
    pub by: String,
    /// The digest they approved.
    pub digest: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl<'de> Deserialize<'de> for Approval {
    /// Also reads the bare names that records held before approvals were bound to a digest:
    /// such an approval binds to nothing, so it no longer counts.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Bound {
                by: String,
                digest: String,
                at: DateTime<Utc>,
            },
            Name(String),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Bound { by, digest, at } => Approval { by, digest, at },
            Stored::Name(by) => Approval {
                by,
                digest: String::new(),
                at: DateTime::<Utc>::UNIX_EPOCH,
            },
        })
    }
}

/// Store errors.
pub type StoreResult<T> = Result<T, anyhow::Error>;

/// An update of a record that changed since it was read (another request, or another server
/// replica, acted on it first): nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("request `{0}` changed meanwhile (another server acted on it); try again")]
pub struct Conflict(pub String);

/// Requests, leases and the audit log.
/// Where a page of the request list starts: the records after this one, newest first (by
/// time, then id, so records made in the same instant are neither skipped nor repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The time of the last record of the previous page (or a time given by hand).
    pub created_at: DateTime<Utc>,
    /// Its id; `None` for a bare time: every record made before it.
    pub id: Option<RequestId>,
}

impl Cursor {
    /// The cursor that follows `r`.
    pub fn after(r: &RequestRecord) -> Self {
        Self {
            created_at: r.created_at,
            id: Some(r.id.clone()),
        }
    }

    /// `<RFC 3339 time>_<id>` (what [`Cursor::render`] writes), or a bare RFC 3339 time.
    pub fn parse(text: &str) -> Option<Self> {
        let (time, id) = match text.split_once('_') {
            Some((time, id)) => (time, Some(RequestId::new(id).ok()?)),
            None => (text, None),
        };
        let created_at = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
        Some(Self { created_at, id })
    }

    /// URL-safe: UTC with `Z`, at the precision the record has.
    pub fn render(&self) -> String {
        let time = self
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        match &self.id {
            Some(id) => format!("{time}_{id}"),
            None => time,
        }
    }
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests by status.
    pub by_status: Vec<(String, i64)>,
    /// Active leases more than a minute past their expiry: their revocation is being retried.
    pub retrying: i64,
    /// Entries in the audit log (its last sequence number: the chain has no gap).
    pub audit_entries: i64,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Saves a new record at version 1 (and sets `r.version`); fails if the id exists.
    async fn insert(&self, r: &mut RequestRecord) -> StoreResult<()>;
    /// Replaces a record if it is still at `r.version`, and moves `r.version` on; a
    /// [`Conflict`] error, writing nothing, if it is not.
    async fn update(&self, r: &mut RequestRecord) -> StoreResult<()>;
    /// One record.
    async fn get(&self, id: &RequestId) -> StoreResult<Option<RequestRecord>>;
    /// Up to `limit` records after `after` (from the newest when `None`), newest first (by
    /// time, then id); only `requester`'s when given. Read through an index, whatever the
    /// history's length.
    async fn list(
        &self,
        requester: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<RequestRecord>>;
    /// Up to `limit` requests in `status`, oldest first, read through an index on the status
    /// (what waits for approval, the live leases: however long the history, and however many
    /// newer requests were made since).
    async fn list_status(
        &self,
        status: RequestStatus,
        limit: usize,
    ) -> StoreResult<Vec<RequestRecord>>;
    /// What `/metrics` shows, counted by the database (active leases are read, not history).
    async fn counts(&self, now: DateTime<Utc>) -> StoreResult<Counts>;
    /// Claims up to `limit` active leases that are due at `now` (expired, to the second, and
    /// with no attempt pending after `now`), earliest expiry first, by moving their next
    /// attempt to `until`; returns them at their new version. Leases another replica is
    /// claiming at the same moment are skipped, not waited for; a claim that is not followed
    /// up (its replica died) lapses at `until`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<RequestRecord>>;
    /// Records that the proof of possession `proof` (key fingerprint and id) was accepted at
    /// `now`, to be remembered until `until` (Unix seconds): false if it was accepted before
    /// and is still remembered — by this server or any replica on the same store, before a
    /// restart or after.
    async fn first_use(&self, proof: &str, now: i64, until: i64) -> StoreResult<bool>;
    /// Forgets the proofs remembered until before `now` (the freshness check refuses them).
    async fn forget_proofs(&self, now: i64) -> StoreResult<()>;
    /// When the next active lease is due (its expiry or its next attempt, whichever is
    /// later), if any: the reaper sleeps until then.
    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Appends to the audit log.
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        request_id: Option<&str>,
        detail: &str,
    ) -> StoreResult<()>;
    /// The whole audit log in order.
    async fn audit_log(&self) -> StoreResult<Vec<AuditEntry>>;
}

/// Opens the store a URL names: `postgres://...` (or `postgresql://`) a PostgreSQL database
/// that several server replicas may share; anything else a SQLite file (or `sqlite::memory:`).
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(url).await?))
    }
}

/// The columns a record is stored with besides its body: expiry and next attempt, as Unix
/// seconds.
fn columns(r: &RequestRecord) -> StoreResult<(String, Option<i64>, Option<i64>)> {
    Ok((
        serde_json::to_string(r)?,
        r.grant.as_ref().map(|g| g.expires_at.timestamp()),
        r.next_attempt_at.map(|t| t.timestamp()),
    ))
}

/// Migrations compiled into the server: (version, description, SQL), applied by sqlx's
/// migrator (which takes a database lock, so replicas that start together migrate once).
#[derive(Debug, Clone, Copy)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> sqlx::migrate::MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
                > + Send
                + 's,
        >,
    > {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    sqlx::migrate::Migration::new(
                        *version,
                        (*description).into(),
                        sqlx::migrate::MigrationType::Simple,
                        (*sql).into(),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// An audit row as stored: seq, time (RFC 3339, as hashed), actor, action, request, detail,
/// previous hash, hash.
type AuditRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
);

fn audit_entry(r: AuditRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: r.0,
        at: DateTime::parse_from_rfc3339(&r.1)?.with_timezone(&Utc),
        actor: r.2,
        action: r.3,
        request_id: r.4,
        detail: r.5,
        prev_hash: r.6,
        hash: r.7,
    })
}

/// The entry after `last` (its seq and hash; none for the first), chained to it.
fn next_entry(
    last: Option<(i64, String)>,
    actor: &str,
    action: &str,
    request_id: Option<&str>,
    detail: &str,
) -> AuditEntry {
    let (seq, prev_hash) = last.map_or((1, GENESIS.to_string()), |(s, h)| (s + 1, h));
    let at = Utc::now();
    let hash = entry_hash(seq, &at, actor, action, request_id, detail, &prev_hash);
    AuditEntry {
        seq,
        at,
        actor: actor.into(),
        action: action.into(),
        request_id: request_id.map(str::to_string),
        detail: detail.into(),
        prev_hash,
        hash,
    }
}

/// Claimed records as the claim left them. The claim writes only the columns, never the
/// body: a body is the requester's text too (a reason may hold any character), and reading it
/// as JSON in the database would let one record stop every claim.
fn claimed(mut recs: Vec<RequestRecord>, until: DateTime<Utc>) -> StoreResult<Vec<RequestRecord>> {
    for r in &mut recs {
        r.next_attempt_at = Some(until);
    }
    Ok(recs)
}

/// Leases still active this long past their expiry are counted as revocations being retried
/// (the reaper revokes within seconds otherwise), as Unix seconds before `now`.
fn overdue(now: DateTime<Utc>) -> i64 {
    now.timestamp() - 60
}

/// A stored body and its version.
fn record(body: &str, version: i64) -> StoreResult<RequestRecord> {
    let mut r: RequestRecord = serde_json::from_str(body)?;
    r.version = version;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvals_stored_as_bare_names_bind_to_nothing() {
        let a: Vec<Approval> = serde_json::from_str(
            r#"["bob", {"by": "carol", "digest": "d", "at": "2026-01-01T00:00:00Z"}]"#,
        )
        .unwrap();
        assert_eq!(a[0].by, "bob");
        assert_eq!(a[0].digest, "");
        assert_eq!(a[1].digest, "d");
        let again: Vec<Approval> =
            serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(again, a);
    }
}
