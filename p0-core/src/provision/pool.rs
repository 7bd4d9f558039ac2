//! The agent's pool of admin connections, shared by the shipped back-ends.

use std::time::Duration;

/// How long a pooled connection may have been idle and still be handed out without a ping.
const FRESH: Duration = Duration::from_secs(30);

/// The pool's options: enough connections for the agent's concurrent requests and the
/// reaper's concurrent revokes. A connection used in the last 30 s is handed out as it is; an
/// older one is pinged first and replaced when it does not answer. (sqlx pings every
/// connection it hands out by default: one more round trip for every checkout, eight in a
/// PostgreSQL issue and revoke.)
pub(crate) fn admin_pool<DB: sqlx::Database>() -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > FRESH {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}
