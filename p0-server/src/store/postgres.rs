//! The PostgreSQL store: several server replicas on one database. Records change only from the
//! version they were read at; the audit chain is appended under a transaction-scoped advisory
//! lock, so appends from all replicas form one chain.

use super::{
    audit_entry, columns, next_entry, record, AuditEntry, AuditRow, Conflict, Counts, Cursor,
    Embedded, RequestRecord, Store, StoreResult,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p0_core::RequestId;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

/// The advisory lock key that orders audit appends (any constant of p0's own).
const AUDIT_LOCK: i64 = 0x7030_6175_6469_7431;

const MIGRATIONS: Embedded = Embedded(&[
    (
        1,
        "requests and audit",
        "CREATE TABLE requests (
        id TEXT PRIMARY KEY, requester TEXT NOT NULL, status TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, expires_at BIGINT, next_attempt_at BIGINT,
        version BIGINT NOT NULL DEFAULT 1, body TEXT NOT NULL);
     CREATE INDEX requests_due ON requests (expires_at) WHERE status = 'active';
     CREATE INDEX requests_by_requester ON requests (requester, created_at DESC);
     CREATE INDEX requests_by_time ON requests (created_at DESC);
     CREATE TABLE audit (
        seq BIGINT PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        request_id TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
    ),
    (
        2,
        "proofs seen",
        "CREATE TABLE proofs (id TEXT PRIMARY KEY, until BIGINT NOT NULL);
         CREATE INDEX proofs_until ON proofs (until);",
    ),
    (
        3,
        "requests by status",
        "CREATE INDEX requests_by_status ON requests (status, created_at);",
    ),
]);

/// PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects (a pool of up to 16 connections) and migrates.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the store: {}",
                    p0_core::error::ProvisionError::from(e)
                )
            })?;
        sqlx::migrate::Migrator::new(MIGRATIONS)
            .await?
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    fn parse(rows: Vec<sqlx::postgres::PgRow>) -> StoreResult<Vec<RequestRecord>> {
        rows.into_iter()
            .map(|r| record(&r.try_get::<String, _>(0)?, r.try_get(1)?))
            .collect()
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert(&self, r: &mut RequestRecord) -> StoreResult<()> {
        let (body, exp, next) = columns(r)?;
        sqlx::query("INSERT INTO requests (id, requester, status, created_at, expires_at, next_attempt_at, body, version) VALUES ($1, $2, $3, $4, $5, $6, $7, 1)")
            .bind(r.id.as_str())
            .bind(&r.requester)
            .bind(r.status.as_str())
            .bind(r.created_at)
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
        let done = sqlx::query("UPDATE requests SET status = $1, expires_at = $2, next_attempt_at = $3, body = $4, version = version + 1 WHERE id = $5 AND version = $6")
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
        let rows = sqlx::query("SELECT body, version FROM requests WHERE id = $1")
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
        let rows = sqlx::query(
            "SELECT body, version FROM requests WHERE ($1::text IS NULL OR requester = $1) \
             AND ($2::timestamptz IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(requester)
        .bind(after.map(|c| c.created_at))
        .bind(after.and_then(|c| c.id.as_ref()).map(|id| id.as_str()))
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
            "SELECT body, version FROM requests WHERE status = $1 ORDER BY created_at, id LIMIT $2",
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
            "SELECT count(*) FROM requests WHERE status = 'active' AND expires_at <= $1",
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
        // Row locks, skipping rows another replica holds: replicas claiming at once take
        // disjoint batches and never wait on each other.
        let rows = sqlx::query(
            "WITH due AS (SELECT id FROM requests WHERE status = 'active' AND expires_at <= $1 \
               AND coalesce(next_attempt_at, 0) <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE requests r SET next_attempt_at = $3, version = r.version + 1 \
             FROM due WHERE r.id = due.id RETURNING r.body, r.version",
        )
        .bind(now.timestamp())
        .bind(limit as i64)
        .bind(until.timestamp())
        .fetch_all(&self.pool)
        .await?;
        super::claimed(Self::parse(rows)?, until)
    }

    async fn first_use(&self, proof: &str, now: i64, until: i64) -> StoreResult<bool> {
        // One row per proof for every replica: a proof one replica accepted, another refuses.
        let done = sqlx::query(
            "INSERT INTO proofs (id, until) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET until = excluded.until WHERE proofs.until < $3",
        )
        .bind(proof)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_proofs(&self, now: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM proofs WHERE until < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT min(greatest(expires_at, coalesce(next_attempt_at, 0))) FROM requests WHERE status = 'active'",
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
        // Every replica appends under this lock: the last entry read is the last there is.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK)
            .execute(&mut *tx)
            .await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let e = next_entry(last, actor, action, request_id, detail);
        sqlx::query("INSERT INTO audit (seq, at, actor, action, request_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
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
