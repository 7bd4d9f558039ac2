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
    /// On Cloud Run: the Google identities allowed to call, checked by the agent itself on
    /// top of Google's own check (and of the server's HMAC, which the sweeper's scheduler
    /// cannot sign: a listed identity may call the sweep without it).
    #[serde(default)]
    pub google_caller: Option<GoogleCallerConfig>,
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

/// The callers a Cloud Run agent accepts (see [`AgentConfig::google_caller`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleCallerConfig {
    /// The audience of their ID tokens: the service's URL (`https://p0-agent-….run.app`).
    pub audience: String,
    /// The service accounts (e-mail addresses) allowed to call: the p0 server's, and Cloud
    /// Scheduler's for the sweep.
    pub accounts: Vec<String>,
    /// The issuer of the tokens.
    #[serde(default = "default_google_issuer")]
    pub issuer: String,
}

fn default_google_issuer() -> String {
    "https://accounts.google.com".into()
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
        toml::from_str(text).map_err(|e| anyhow::anyhow!(p0_core::error::toml_error(&e, text)))
    }
}
