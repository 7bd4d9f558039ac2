//! The agent's own configuration (TOML). Nothing in it comes from the server.

use p0_core::{GuardPolicy, ResourceId};
use serde::Deserialize;

/// Agent configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Address to listen on, e.g. `127.0.0.1:7070` (HTTP transport only).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The engine of the database (`postgres` or `mysql`).
    #[serde(default = "default_engine")]
    pub engine: p0_core::Engine,
    /// MySQL only: the host part of created accounts.
    #[serde(default = "default_host")]
    pub account_host: String,
    /// The resource this agent serves (must match the server's name for it).
    pub resource: ResourceId,
    /// Admin connection URL (the agent's own service user). Falls back to `P0_AGENT_DATABASE_URL`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Shared secret with the server (HMAC). Falls back to `P0_AGENT_HMAC_SECRET`.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// The identity issuer whose ID tokens are accepted.
    pub issuer: String,
    /// The audience (client id) tokens must carry.
    pub audience: String,
    /// What this agent may hand out.
    pub guard: GuardPolicy,
    /// Seconds between sweeps of expired users (0: off).
    #[serde(default = "default_sweep")]
    pub sweep_interval_secs: u64,
    /// HTTPS: the agent's certificate chain, leaf first (PEM). With `tls_key`.
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// HTTPS: the private key of `tls_cert` (PEM).
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on a non-loopback `listen` (behind a proxy that terminates TLS).
    /// Logged as a warning at start. Without TLS, plain HTTP is served on loopback only.
    #[serde(default)]
    pub dangerous_plain_http: bool,
}

fn default_listen() -> String {
    "127.0.0.1:7070".into()
}

fn default_engine() -> p0_core::Engine {
    p0_core::Engine::Postgres
}

fn default_host() -> String {
    "%".into()
}

fn default_sweep() -> u64 {
    60
}

impl AgentConfig {
    /// Parses a config file's text.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }
}
