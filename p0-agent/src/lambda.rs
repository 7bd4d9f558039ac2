//! The agent as an AWS Lambda function, with the same [`p0_core::agent::Agent::handle`] as
//! the HTTP service. IAM authenticates the caller: only the principals the function's resource
//! policy names (the p0 server's role, an EventBridge schedule) can invoke it, so this
//! transport has no HMAC. Everything else — the requester's token, key binding, signature, replay, the plan
//! against the signed query, the escalation guard — is checked exactly as over HTTP.
//!
//! Configuration comes from the function's environment:
//! - `P0_AGENT_CONFIG_TOML` (the agent's TOML itself) or `P0_AGENT_CONFIG` (a path inside the
//!   deployment package);
//! - the admin connection: `P0_AGENT_DATABASE_SECRET`, the ARN or name of an AWS Secrets
//!   Manager secret holding a connection URL or an RDS-style JSON document (`username`,
//!   `password`, `host`, `port`, `dbname`); else `P0_AGENT_DATABASE_URL`; else the config's
//!   `database_url`. Never from an invocation.

use crate::{AgentConfig, AgentState, Op, Reply};
use anyhow::{anyhow, bail, Context};
use p0_core::Engine;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One invocation: `{"op": "provision", "body": {…}}`, the body being what the HTTP
/// transport would POST to the operation's path. An EventBridge schedule sends
/// `{"op": "sweep"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    pub op: Op,
    #[serde(default)]
    pub body: serde_json::Value,
}

/// The agent's configuration from `P0_AGENT_CONFIG_TOML` or the file `P0_AGENT_CONFIG` names.
pub fn config_from_env() -> anyhow::Result<AgentConfig> {
    if let Ok(text) = std::env::var("P0_AGENT_CONFIG_TOML") {
        return AgentConfig::from_toml(&text).context("P0_AGENT_CONFIG_TOML");
    }
    let path = std::env::var("P0_AGENT_CONFIG")
        .map_err(|_| anyhow!("set P0_AGENT_CONFIG_TOML or P0_AGENT_CONFIG"))?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading `{path}`"))?;
    AgentConfig::from_toml(&text).with_context(|| format!("`{path}`"))
}

/// The admin connection URL, from Secrets Manager, the environment or the config, in that
/// order.
pub async fn database_url(config: &AgentConfig) -> anyhow::Result<String> {
    if let Ok(id) = std::env::var("P0_AGENT_DATABASE_SECRET") {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let out = aws_sdk_secretsmanager::Client::new(&aws)
            .get_secret_value()
            .secret_id(&id)
            .send()
            .await
            .map_err(|e| {
                let e = aws_sdk_secretsmanager::error::DisplayErrorContext(e);
                anyhow!("reading the secret `{id}` from Secrets Manager: {e}")
            })?;
        let text = out
            .secret_string()
            .ok_or_else(|| anyhow!("the secret `{id}` has no string value"))?;
        return url_from_secret(text, config.engine).with_context(|| format!("the secret `{id}`"));
    }
    std::env::var("P0_AGENT_DATABASE_URL")
        .ok()
        .or_else(|| config.database_url.clone())
        .ok_or_else(|| {
            anyhow!("no P0_AGENT_DATABASE_SECRET, no P0_AGENT_DATABASE_URL and no database_url")
        })
}

/// A connection URL from a secret's text: the URL itself, or the JSON document RDS keeps for
/// managed credentials. No error quotes the text.
pub fn url_from_secret(text: &str, engine: Engine) -> anyhow::Result<String> {
    let text = text.trim();
    if ["postgres://", "postgresql://", "mysql://", "mariadb://"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        return Ok(text.to_string());
    }
    #[derive(Deserialize)]
    struct Rds {
        username: String,
        password: String,
        host: String,
        port: Option<u16>,
        dbname: Option<String>,
    }
    let Ok(rds) = serde_json::from_str::<Rds>(text) else {
        bail!("neither a connection URL nor a JSON document with username, password and host");
    };
    let (scheme, port) = match engine {
        Engine::MySql => ("mysql", 3306),
        _ => ("postgres", 5432),
    };
    let mut url = url::Url::parse(&format!("{scheme}://placeholder/"))?;
    url.set_host(Some(&rds.host))
        .map_err(|_| anyhow!("the host is not a valid host name"))?;
    let _ = url.set_port(Some(rds.port.unwrap_or(port)));
    url.set_path(rds.dbname.as_deref().unwrap_or(""));
    let userinfo = url
        .set_username(&rds.username)
        .and_then(|()| url.set_password(Some(&rds.password)));
    if userinfo.is_err() {
        bail!("cannot put the credentials into a URL");
    }
    Ok(url.to_string())
}

/// Serves invocations until the runtime stops: builds the state once per execution
/// environment (its connection pool and catalog snapshot live across warm invocations).
pub async fn run() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .init();
    let config = config_from_env()?;
    let verifier = Arc::new(p0_core::JwksVerifier::new(
        &config.issuer,
        &config.audience,
    )?);
    let url = database_url(&config).await?;
    let state = AgentState::connect(&config, verifier, url, None).await?;
    tracing::info!(resource = %config.resource, "p0-agent ready on Lambda");
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Invocation>| {
            let state = state.clone();
            async move {
                let Invocation { op, body } = event.payload;
                let body = serde_json::to_vec(&body)?;
                Ok::<Reply, lambda_runtime::Error>(state.handle(op, &body).await)
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations() {
        let sweep: Invocation = serde_json::from_str(r#"{"op":"sweep"}"#).unwrap();
        assert_eq!(sweep.op, Op::Sweep);
        assert!(sweep.body.is_null());
        let p: Invocation =
            serde_json::from_str(r#"{"op":"provision","body":{"plan":1}}"#).unwrap();
        assert_eq!(p.op, Op::Provision);
        // Unknown operations and fields are refused, not ignored.
        assert!(serde_json::from_str::<Invocation>(r#"{"op":"drop_everything"}"#).is_err());
        assert!(serde_json::from_str::<Invocation>(r#"{"op":"sweep","as":"root"}"#).is_err());
        for op in Op::ALL {
            assert_eq!(Op::from_path(op.path()), Some(op));
        }
    }

    #[test]
    fn urls_from_secrets() {
        let url = url_from_secret(
            r#"{"username":"p0 admin","password":"p@ss:w/rd#1","host":"db.internal","port":6432,"dbname":"app","engine":"postgres"}"#,
            Engine::Postgres,
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://p0%20admin:p%40ss%3Aw%2Frd%231@db.internal:6432/app"
        );
        let url = url_from_secret(
            r#"{"username":"root","password":"x","host":"10.0.0.5"}"#,
            Engine::MySql,
        )
        .unwrap();
        assert_eq!(url, "mysql://root:x@10.0.0.5:3306");
        assert_eq!(
            url_from_secret(" postgres://a:b@h/d\n", Engine::Postgres).unwrap(),
            "postgres://a:b@h/d"
        );
        let err = url_from_secret(
            r#"{"username":"u","password":"hunter22"}"#,
            Engine::Postgres,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("neither") && !err.contains("hunter22"),
            "{err}"
        );
        let err = url_from_secret("hunter22", Engine::Postgres)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter22"), "{err}");
    }
}
