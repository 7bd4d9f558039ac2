//! Server configuration (TOML).

use p0_core::{Engine, ResourceId};
use serde::Deserialize;

/// One database target and the agent that serves it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Its name, e.g. `pg/app`.
    pub name: ResourceId,
    /// The engine.
    pub engine: Engine,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// The agent's base URL.
    pub agent_url: String,
    /// Shared HMAC secret with that agent. Falls back to `P0_AGENT_HMAC_SECRET`.
    #[serde(default)]
    pub agent_secret: Option<String>,
}

/// Server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// SQLite file of the store (`sqlite::memory:` for a throwaway one).
    pub store: String,
    /// The identity issuer.
    pub issuer: String,
    /// The audience (client id).
    pub audience: String,
    /// The rules file.
    pub rules: String,
    /// Resources.
    #[serde(default, rename = "resource")]
    pub resources: Vec<ResourceConfig>,
    /// Seconds between reaper runs.
    #[serde(default = "default_reaper")]
    pub reaper_interval_secs: u64,
    /// Webhook (Slack-compatible) for approvals and decisions.
    #[serde(default)]
    pub webhook_url: Option<String>,
}

fn default_reaper() -> u64 {
    5
}

impl ServerConfig {
    /// Parses a config file's text.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }
}
