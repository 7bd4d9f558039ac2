//! The agent of [`p0_core::agent`] built from the agent's configuration: its provisioner, its
//! connection endpoint and signing key, its secrets from the config or the environment.

use crate::AgentConfig;
use chrono::Utc;
use p0_core::agent::{Agent, AgentSettings, ConnectEndpoint};
use p0_core::grant::{AgentSigningKey, TlsExpectation};
use p0_core::provision::{MySqlProvisioner, PostgresProvisioner, Sweeper};
use p0_core::{DatabaseProvisioner, Engine, IdTokenVerifier};
use std::sync::Arc;

/// The core [`Agent`] as the agent binary builds and serves it. It derefs to the [`Agent`], so
/// [`Agent::handle`], [`Agent::authenticate_server`], [`Agent::sweep`] and
/// [`Agent::provisioner`] are called on it directly.
#[derive(Debug)]
pub struct AgentState(Agent);

impl std::ops::Deref for AgentState {
    type Target = Agent;

    fn deref(&self) -> &Agent {
        &self.0
    }
}

impl AgentState {
    /// Builds the state for the HTTP transport: the admin URL from the config or
    /// `P0_AGENT_DATABASE_URL`, and the server's HMAC secret, which HTTP requires.
    pub async fn new(
        config: &AgentConfig,
        verifier: Arc<dyn IdTokenVerifier>,
    ) -> anyhow::Result<Arc<Self>> {
        let database_url = match config.database_url.clone() {
            Some(url) => url,
            None => secret_from_env("P0_AGENT_DATABASE_URL")?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no database_url in the config and no P0_AGENT_DATABASE_URL (or _FILE)"
                )
            })?,
        };
        let hmac_secret = match config.hmac_secret.clone() {
            Some(secret) => secret,
            None => secret_from_env("P0_AGENT_HMAC_SECRET")?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no hmac_secret in the config and no P0_AGENT_HMAC_SECRET (or _FILE)"
                )
            })?,
        };
        Self::connect(config, verifier, database_url, Some(hmac_secret)).await
    }

    /// Builds the state from an admin URL, wherever it came from. Without an HMAC secret the
    /// HTTP router refuses every call but health: only a transport that authenticates the
    /// caller itself (IAM, for Lambda) may run without one.
    pub async fn connect(
        config: &AgentConfig,
        verifier: Arc<dyn IdTokenVerifier>,
        database_url: String,
        hmac_secret: Option<String>,
    ) -> anyhow::Result<Arc<Self>> {
        let provisioner: Arc<dyn DatabaseProvisioner> = match config.engine {
            Engine::MySql => Arc::new(
                MySqlProvisioner::connect(
                    &database_url,
                    config.guard.clone(),
                    &config.account_host,
                )
                .await?,
            ),
            _ => Arc::new(PostgresProvisioner::connect(&database_url, config.guard.clone()).await?),
        };
        let mut settings = settings(
            config,
            verifier,
            provisioner,
            hmac_secret,
            Some(&database_url),
        )?;
        settings = settings.live_catalog(database_url);
        Ok(Self::from_agent(Agent::new(settings)?))
    }

    /// The agent around a provisioner of your own (a database p0 does not ship): every check
    /// of [`p0_core::agent`] runs as for the built-in ones; query requests are extracted in
    /// `config.engine`'s dialect without a live catalog.
    pub fn with_provisioner(
        config: &AgentConfig,
        verifier: Arc<dyn IdTokenVerifier>,
        provisioner: Arc<dyn DatabaseProvisioner>,
        hmac_secret: Option<String>,
    ) -> anyhow::Result<Arc<Self>> {
        let settings = settings(config, verifier, provisioner, hmac_secret, None)?;
        Ok(Self::from_agent(Agent::new(settings)?))
    }

    /// Serves an agent built from [`AgentSettings`] directly (with [`crate::build_router`]).
    pub fn from_agent(agent: Agent) -> Arc<Self> {
        Arc::new(Self(agent))
    }

    /// The core agent.
    pub fn agent(&self) -> &Agent {
        &self.0
    }

    /// Sweeps every `every` forever (the HTTP agent's background sweeper).
    pub async fn sweep_forever(self: Arc<Self>, every: std::time::Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "sweep failed; will retry");
            }
        }
    }
}

/// Runs a sweeper forever around any provisioner: removes managed users past their expiry
/// even if the server is gone, goes on past the ones it cannot remove (logged, retried with
/// backoff).
pub async fn run_sweeper(provisioner: Arc<dyn DatabaseProvisioner>, every: std::time::Duration) {
    let sweeper = Sweeper::default();
    loop {
        tokio::time::sleep(every).await;
        match sweeper.run(&*provisioner, Utc::now()).await {
            Ok(r) if !r.removed.is_empty() => {
                tracing::info!(count = r.removed.len(), "sweeper removed expired users")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep failed; will retry"),
        }
    }
}

pub use p0_core::secret::from_env as secret_from_env;

/// The core agent's settings from the configuration; the core checks them when it builds
/// the agent.
fn settings(
    config: &AgentConfig,
    verifier: Arc<dyn IdTokenVerifier>,
    provisioner: Arc<dyn DatabaseProvisioner>,
    hmac_secret: Option<String>,
    database_url: Option<&str>,
) -> anyhow::Result<AgentSettings> {
    let endpoint = endpoint(config, database_url)?;
    let signer = signing_key(config)?;
    let mut settings = AgentSettings::new(
        config.resource.clone(),
        config.engine,
        verifier,
        provisioner,
        endpoint,
        signer,
    )
    .max_request_age_secs(config.max_request_age_secs)
    .default_database(config.guard.databases.first().cloned());
    if let Some(secret) = hmac_secret {
        settings = settings.hmac_secret(secret.into_bytes());
    }
    Ok(settings)
}

/// The connection endpoint of [`crate::ConnectConfig`], with defaults from the admin URL.
fn endpoint(config: &AgentConfig, database_url: Option<&str>) -> anyhow::Result<ConnectEndpoint> {
    let c = &config.connect;
    let url = database_url
        .map(url::Url::parse)
        .transpose()
        .map_err(|_| anyhow::anyhow!("database_url is not a URL"))?;
    let host = c
        .host
        .clone()
        .or_else(|| url.as_ref().and_then(|u| u.host_str().map(str::to_string)))
        .ok_or_else(|| anyhow::anyhow!("no [connect] host and no host in database_url"))?;
    let default_port = match config.engine {
        Engine::MySql => 3306,
        _ => 5432,
    };
    let port = c
        .port
        .or_else(|| url.as_ref().map(|u| u.port().unwrap_or(default_port)))
        .ok_or_else(|| anyhow::anyhow!("no [connect] port and no database_url"))?;
    let database = c
        .database
        .clone()
        .or_else(|| config.guard.databases.first().cloned())
        .ok_or_else(|| anyhow::anyhow!("no [connect] database and no guard.databases"))?;
    let tls = match &c.ca_file {
        Some(path) => TlsExpectation::VerifyFull {
            ca_pem: Some(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading connect.ca_file `{}`: {e}", path.display())
            })?),
        },
        None => TlsExpectation::Off,
    };
    Ok(ConnectEndpoint {
        host,
        port,
        database,
        tls,
    })
}

/// The agent's signing key: `signing_key_file`, else `P0_AGENT_SIGNING_KEY`, else a new one.
fn signing_key(config: &AgentConfig) -> anyhow::Result<AgentSigningKey> {
    let pem =
        match &config.signing_key_file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading signing_key_file `{}`: {e}", path.display())
            })?),
            None => secret_from_env("P0_AGENT_SIGNING_KEY")?,
        };
    match pem {
        Some(pem) => Ok(AgentSigningKey::from_pkcs8_pem(&pem)?),
        None => {
            let key = AgentSigningKey::generate();
            tracing::warn!(agent_key = %key.public().fingerprint(), "no signing_key_file or P0_AGENT_SIGNING_KEY: using a key generated now; CLIs that pinned another key of this resource will refuse its grants");
            Ok(key)
        }
    }
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use p0_core::agent::Op;

    use p0_core::provision::{AccountKind, ManagedAccount, RevokeReport};
    use p0_core::{Credentials, ProvisionError, ProvisionPlan, Username};

    /// Two expired users; `p0_stuck_1` cannot be removed.
    struct Stuck(std::sync::Mutex<Vec<ManagedAccount>>);

    #[async_trait::async_trait]
    impl DatabaseProvisioner for Stuck {
        fn supports_valid_until(&self) -> bool {
            true
        }
        fn max_username_len(&self) -> usize {
            63
        }
        async fn provision(&self, _: &ProvisionPlan) -> Result<Credentials, ProvisionError> {
            Err(ProvisionError::Database("unused".into()))
        }
        async fn revoke(&self, user: &Username) -> Result<RevokeReport, ProvisionError> {
            if user.as_str() == "p0_stuck_1" {
                return Err(ProvisionError::Database(
                    "`p0_stuck_1` owns objects in database `frozen`".into(),
                ));
            }
            let mut accounts = self.0.lock().unwrap();
            let before = accounts.len();
            accounts.retain(|a| a.name != user.as_str());
            Ok(RevokeReport {
                user_dropped: accounts.len() < before,
                ..RevokeReport::default()
            })
        }
        async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    #[tokio::test]
    async fn sweep_answers_with_what_it_could_not_remove_and_health_counts_it() {
        let config = crate::AgentConfig::from_toml(
            r#"
            resource = "pg/app"
            issuer = "https://issuer.invalid"
            audience = "p0"
            [connect]
            host = "db.internal"
            port = 5432
            [guard]
            databases = ["app"]
            service_user = "postgres"
            allow_definer_functions = ["public.current_tenant()"]
            "#,
        )
        .unwrap();
        assert_eq!(
            config.guard.allow_definer_functions,
            ["public.current_tenant()"]
        );
        let expired = |name: &str| ManagedAccount {
            name: name.into(),
            kind: AccountKind::User,
            expires_at: Some(Utc::now() - chrono::TimeDelta::seconds(1)),
            request_id: None,
        };
        let provisioner = Arc::new(Stuck(std::sync::Mutex::new(vec![
            expired("p0_stuck_1"),
            expired("p0_gone_1"),
        ])));
        let verifier =
            Arc::new(p0_core::JwksVerifier::new("https://issuer.invalid", "p0").unwrap());
        let state = AgentState::with_provisioner(&config, verifier, provisioner, None).unwrap();
        let reply = state.handle(Op::Sweep, b"{}").await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["removed"], serde_json::json!(["p0_gone_1"]));
        let failed = &reply.body["failed"][0];
        assert_eq!(failed["user"], "p0_stuck_1");
        assert!(failed["error"].as_str().unwrap().contains("`frozen`"));
        assert_eq!(failed["attempts"], 1);
        assert!(failed["retry_at"].is_string());
        let health = state.handle(Op::Health, b"").await;
        assert_eq!(health.body["sweep_failing"], 1);
        assert_eq!(health.body["sweep_failures_total"], 1);
        assert!(
            !health.body.to_string().contains("stuck"),
            "no names in health"
        );
    }
}
