//! The agent's pool of admin connections, shared by the shipped back-ends.

use std::time::Duration;

/// The pool's options: enough connections for the agent's concurrent requests and the
/// reaper's concurrent revokes. sqlx pings each connection it hands out: one round trip per
/// checkout, kept on purpose, because it is what replaces the connections a database restart
/// or failover broke before any provisioning or revocation meets one. (Handing out recently
/// used connections unpinged measured 1.0-1.3x the cycles per second, and turned a restart
/// into up to 16 failed calls.) Operations therefore hold one connection where they can.
pub(crate) fn admin_pool<DB: sqlx::Database>() -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
}
