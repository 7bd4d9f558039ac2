//! A custom agent for a database p0 does not ship — Redis ACL users. The back-end
//! (`backend.rs`) only maps plans to ACL rules and creates, removes and lists users; p0's
//! `Managed` wrapper does the rest, as for PostgreSQL and MySQL. `cargo run -p p0-examples
//! --example redis_agent` runs it against Debian's `redis-server` (`drive.rs` plays the
//! issuer, the p0 server and the CLI); `examples/tests/redis_conformance.rs` runs p0's
//! provisioner conformance suite against it.

mod backend;
mod drive;
mod server;

pub use backend::{RedisBackend, RedisProvisioner};
use p0_core::DatabaseProvisioner;
use std::sync::Arc;

/// The custom agent: p0's agent handler (every verification of the HTTP agent) with the Redis
/// provisioner, served on loopback, and its sweeper.
pub async fn serve_agent(
    config: &p0_agent::AgentConfig,
    provisioner: Arc<dyn DatabaseProvisioner>,
) -> anyhow::Result<std::net::SocketAddr> {
    let verifier = Arc::new(p0_core::JwksVerifier::new(
        &config.issuer,
        &config.audience,
    )?);
    let hmac = config.hmac_secret.clone();
    let state = p0_agent::AgentState::with_provisioner(config, verifier, provisioner, hmac)?;
    tokio::spawn(p0_agent::run_sweeper(
        state.provisioner(),
        std::time::Duration::from_secs(5),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, p0_agent::build_router(state)).await });
    Ok(addr)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    drive::run().await
}
