//! Server state behind a trait. `SqliteStore` is the default; nothing outside this module
//! assumes SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p0_core::api::{GrantView, RequestStatus};
use p0_core::audit::{entry_hash, AuditEntry, GENESIS};
use p0_core::route::Decision;
use p0_core::{PermissionSet, RequestId, SignedRequest};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use std::str::FromStr;

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

/// Requests, leases and the audit log.
#[async_trait]
pub trait Store: Send + Sync {
    /// Saves a new record; fails if the id exists.
    async fn insert(&self, r: &RequestRecord) -> StoreResult<()>;
    /// Replaces a record.
    async fn update(&self, r: &RequestRecord) -> StoreResult<()>;
    /// One record.
    async fn get(&self, id: &RequestId) -> StoreResult<Option<RequestRecord>>;
    /// Records, newest first; only `requester`'s when given.
    async fn list(&self, requester: Option<&str>) -> StoreResult<Vec<RequestRecord>>;
    /// Active leases whose expiry has passed and whose next attempt is due.
    async fn due_leases(&self, now: DateTime<Utc>) -> StoreResult<Vec<RequestRecord>>;
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

/// SQLite store (one file, zero set-up).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS requests (
        id TEXT PRIMARY KEY, requester TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
        expires_at INTEGER, next_attempt_at INTEGER, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS requests_due ON requests (status, expires_at)",
    "CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        request_id TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
];

impl SqliteStore {
    /// Opens (creating if needed) and migrates.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        // One writer keeps the audit chain's append strictly ordered.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        for m in MIGRATIONS {
            sqlx::query(m).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    fn row(r: &RequestRecord) -> StoreResult<(String, Option<i64>, Option<i64>)> {
        Ok((
            serde_json::to_string(r)?,
            r.grant.as_ref().map(|g| g.expires_at.timestamp()),
            r.next_attempt_at.map(|t| t.timestamp()),
        ))
    }

    fn parse(rows: Vec<sqlx::sqlite::SqliteRow>) -> StoreResult<Vec<RequestRecord>> {
        rows.into_iter()
            .map(|r| Ok(serde_json::from_str(&r.try_get::<String, _>(0)?)?))
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(&self, r: &RequestRecord) -> StoreResult<()> {
        let (body, exp, next) = Self::row(r)?;
        sqlx::query("INSERT INTO requests (id, requester, status, created_at, expires_at, next_attempt_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(r.id.as_str())
            .bind(&r.requester)
            .bind(r.status.as_str())
            .bind(r.created_at.to_rfc3339())
            .bind(exp)
            .bind(next)
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update(&self, r: &RequestRecord) -> StoreResult<()> {
        let (body, exp, next) = Self::row(r)?;
        sqlx::query("UPDATE requests SET status = ?, expires_at = ?, next_attempt_at = ?, body = ? WHERE id = ?")
            .bind(r.status.as_str())
            .bind(exp)
            .bind(next)
            .bind(body)
            .bind(r.id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get(&self, id: &RequestId) -> StoreResult<Option<RequestRecord>> {
        let rows = sqlx::query("SELECT body FROM requests WHERE id = ?")
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(Self::parse(rows)?.into_iter().next())
    }

    async fn list(&self, requester: Option<&str>) -> StoreResult<Vec<RequestRecord>> {
        let rows = match requester {
            Some(r) => {
                sqlx::query(
                    "SELECT body FROM requests WHERE requester = ? ORDER BY created_at DESC",
                )
                .bind(r)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT body FROM requests ORDER BY created_at DESC")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Self::parse(rows)
    }

    async fn due_leases(&self, now: DateTime<Utc>) -> StoreResult<Vec<RequestRecord>> {
        let rows = sqlx::query(
            "SELECT body FROM requests WHERE status = 'active' AND expires_at <= ? AND coalesce(next_attempt_at, 0) <= ?",
        )
        .bind(now.timestamp())
        .bind(now.timestamp())
        .fetch_all(&self.pool)
        .await?;
        Self::parse(rows)
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        request_id: Option<&str>,
        detail: &str,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (seq, prev) = match last {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS.to_string()),
        };
        let at = Utc::now();
        let hash = entry_hash(seq, &at, actor, action, request_id, detail, &prev);
        sqlx::query("INSERT INTO audit (seq, at, actor, action, request_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(seq)
            .bind(at.to_rfc3339())
            .bind(actor)
            .bind(action)
            .bind(request_id)
            .bind(detail)
            .bind(&prev)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT seq, at, actor, action, request_id, detail, prev_hash, hash FROM audit ORDER BY seq").fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get(0)?,
                    at: DateTime::parse_from_rfc3339(&r.try_get::<String, _>(1)?)?
                        .with_timezone(&Utc),
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    request_id: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    prev_hash: r.try_get(6)?,
                    hash: r.try_get(7)?,
                })
            })
            .collect()
    }
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
