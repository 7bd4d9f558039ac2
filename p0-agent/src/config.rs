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
    /// Where clients connect, sealed with every password so nobody between agent and CLI can
    /// send the CLI elsewhere. Defaults: host and port of `database_url`, the first of
    /// `guard.databases`.
    #[serde(default)]
    pub connect: ConnectConfig,
    /// The agent's Ed25519 signing key (PKCS#8 PEM file; `openssl genpkey -algorithm
    /// ed25519`). CLIs pin it on first use, so keep it across restarts and share it between
    /// instances. Falls back to `P0_AGENT_SIGNING_KEY` (the PEM itself); without either, a
    /// key is generated at start and a warning logged.
    #[serde(default)]
    pub signing_key_file: Option<std::path::PathBuf>,
    /// How far a signed request's `issued_at` (or the requester's fresh pickup proof, for a
    /// request that waited for approval) may be from now, in seconds.
    #[serde(default = "default_max_age")]
    pub max_request_age_secs: i64,
}

/// Where clients connect (see [`AgentConfig::connect`]).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectConfig {
    /// Host name or address users reach the database at.
    #[serde(default)]
    pub host: Option<String>,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Database name.
    #[serde(default)]
    pub database: Option<String>,
    /// PEM file of the CA that signs the database's certificate: clients then connect with
    /// TLS and verify the certificate and host name (`verify-full`).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

fn default_max_age() -> i64 {
    300
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
