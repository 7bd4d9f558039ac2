//! The SQLite store: one file, one server process (one writer keeps the audit chain ordered).

use super::{
    audit_entry, columns, next_entry, record, AuditEntry, AuditRow, Conflict, Counts, Cursor,
    Embedded, RequestRecord, Store, StoreResult,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p0_core::RequestId;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use std::str::FromStr;

/// SQLite store (one file, zero set-up).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// The schema, in order. The first is what stores made before migrations had (created only
/// where missing), so an older file migrates in place.
const MIGRATIONS: Embedded = Embedded(&[
    (
        1,
        "requests and audit",
        "CREATE TABLE IF NOT EXISTS requests (
            id TEXT PRIMARY KEY, requester TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
            expires_at INTEGER, next_attempt_at INTEGER, body TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS requests_due ON requests (status, expires_at);
         CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            request_id TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
    ),
    (
        2,
        "record versions",
        "ALTER TABLE requests ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
         CREATE INDEX IF NOT EXISTS requests_by_requester ON requests (requester, created_at);",
    ),
    (
        3,
        "proofs seen",
        "CREATE TABLE proofs (id TEXT PRIMARY KEY, until INTEGER NOT NULL);
         CREATE INDEX proofs_until ON proofs (until);",
    ),
    (
        4,
        "requests by status",
        "CREATE INDEX requests_by_status ON requests (status, created_at);",
    ),
]);

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
        sqlx::migrate::Migrator::new(MIGRATIONS)
            .await?
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    fn parse(rows: Vec<sqlx::sqlite::SqliteRow>) -> StoreResult<Vec<RequestRecord>> {
        rows.into_iter()
            .map(|r| record(&r.try_get::<String, _>(0)?, r.try_get(1)?))
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(&self, r: &mut RequestRecord) -> StoreResult<()> {
        let (body, exp, next) = columns(r)?;
        sqlx::query("INSERT INTO requests (id, requester, status, created_at, expires_at, next_attempt_at, body, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)")
            .bind(r.id.as_str())
            .bind(&r.requester)
            .bind(r.status.as_str())
            .bind(r.created_at.to_rfc3339())
            .bind(exp)
            .bind(next)
            .bind(body)
            .execute(&self.pool)
            .await?;
        r.version = 1;
        Ok(())
    }

    async fn update(&self, r: &mut RequestRecord) -> StoreResult<()> {
        let (body, exp, next) = columns(r)?;
        let done = sqlx::query("UPDATE requests SET status = ?, expires_at = ?, next_attempt_at = ?, body = ?, version = version + 1 WHERE id = ? AND version = ?")
            .bind(r.status.as_str())
            .bind(exp)
            .bind(next)
            .bind(body)
            .bind(r.id.as_str())
            .bind(r.version)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() != 1 {
            return Err(Conflict(r.id.to_string()).into());
        }
        r.version += 1;
        Ok(())
    }

    async fn get(&self, id: &RequestId) -> StoreResult<Option<RequestRecord>> {
        let rows = sqlx::query("SELECT body, version FROM requests WHERE id = ?")
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(Self::parse(rows)?.into_iter().next())
    }

    async fn list(
        &self,
        requester: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<RequestRecord>> {
        // Times are kept as `to_rfc3339` writes them (UTC, 0, 3, 6 or 9 fraction digits), in
        // which text order is time order: the cursor's time is written the same way, so the
        // index on (requester, created_at) serves the order and the bound alike.
        let rows = sqlx::query(
            "SELECT body, version FROM requests WHERE (?1 IS NULL OR requester = ?1) \
             AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
             ORDER BY created_at DESC, id DESC LIMIT ?4",
        )
        .bind(requester)
        .bind(after.map(|c| c.created_at.to_rfc3339()))
        .bind(
            after
                .and_then(|c| c.id.as_ref())
                .map(|id| id.as_str().to_string()),
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Self::parse(rows)
    }

    async fn list_status(
        &self,
        status: p0_core::api::RequestStatus,
        limit: usize,
    ) -> StoreResult<Vec<RequestRecord>> {
        let rows = sqlx::query(
            "SELECT body, version FROM requests WHERE status = ?1 ORDER BY created_at, id LIMIT ?2",
        )
        .bind(status.as_str())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Self::parse(rows)
    }

    async fn counts(&self, now: DateTime<Utc>) -> StoreResult<Counts> {
        let by_status: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM requests GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        let retrying: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM requests WHERE status = 'active' AND expires_at <= ?",
        )
        .bind(super::overdue(now))
        .fetch_one(&self.pool)
        .await?;
        let audit_entries: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM audit")
            .fetch_one(&self.pool)
            .await?;
        Ok(Counts {
            by_status,
            retrying,
            audit_entries: audit_entries.unwrap_or(0),
        })
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<RequestRecord>> {
        // One statement: SQLite runs writers one at a time, so the batch is claimed whole.
        let rows = sqlx::query(
            "UPDATE requests SET next_attempt_at = ?, version = version + 1 \
             WHERE id IN (SELECT id FROM requests WHERE status = 'active' AND expires_at <= ? \
               AND coalesce(next_attempt_at, 0) <= ? ORDER BY expires_at LIMIT ?) \
             RETURNING body, version",
        )
        .bind(until.timestamp())
        .bind(now.timestamp())
        .bind(now.timestamp())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        super::claimed(Self::parse(rows)?, until)
    }

    async fn first_use(&self, proof: &str, now: i64, until: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO proofs (id, until) VALUES (?, ?) \
             ON CONFLICT (id) DO UPDATE SET until = excluded.until WHERE proofs.until < ?",
        )
        .bind(proof)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_proofs(&self, now: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM proofs WHERE until < ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT min(max(expires_at, coalesce(next_attempt_at, 0))) FROM requests WHERE status = 'active'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(at.and_then(|t| DateTime::from_timestamp(t, 0)))
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
        let e = next_entry(last, actor, action, request_id, detail);
        sqlx::query("INSERT INTO audit (seq, at, actor, action, request_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(e.seq)
            .bind(e.at.to_rfc3339())
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.request_id)
            .bind(&e.detail)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT seq, at, actor, action, request_id, detail, prev_hash, hash FROM audit ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(audit_entry).collect()
    }
}
