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
    /// The agent's base URL, for an agent served over HTTP. Exactly one of `agent_url` and
    /// `agent_function` is set.
    #[serde(default)]
    pub agent_url: Option<String>,
    /// Shared HMAC secret with an HTTP agent. Falls back to `P0_AGENT_HMAC_SECRET`.
    #[serde(default)]
    pub agent_secret: Option<String>,
    /// The agent's AWS Lambda function (name or ARN), invoked with the server's own AWS
    /// credentials; IAM authenticates the server. Needs the `lambda` feature.
    #[serde(default)]
    pub agent_function: Option<String>,
    /// The Lambda API endpoint, when not the region's public one (a VPC interface endpoint,
    /// or `cargo lambda watch` in tests).
    #[serde(default)]
    pub agent_lambda_endpoint: Option<String>,
    /// Attempts per Lambda invocation (1: no SDK retries, the default). The reaper retries
    /// revocations with its own backoff, and the agent accepts a request id once, so a blind
    /// retry of a provision that did reach the agent could only be refused.
    #[serde(default = "one")]
    pub agent_lambda_max_attempts: u32,
}

fn one() -> u32 {
    1
}

/// How the server reaches a resource's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentTarget {
    /// Over HTTP with the shared HMAC.
    Http { url: String },
    /// Through AWS Lambda's Invoke API.
    Lambda {
        function: String,
        endpoint: Option<String>,
        max_attempts: u32,
    },
}

impl ResourceConfig {
    /// Where its agent is; exactly one transport must be configured.
    pub fn agent_target(&self) -> anyhow::Result<AgentTarget> {
        match (&self.agent_url, &self.agent_function) {
            (Some(url), None) => Ok(AgentTarget::Http { url: url.clone() }),
            (None, Some(function)) => Ok(AgentTarget::Lambda {
                function: function.clone(),
                endpoint: self.agent_lambda_endpoint.clone(),
                max_attempts: self.agent_lambda_max_attempts.max(1),
            }),
            (Some(_), Some(_)) => anyhow::bail!(
                "resource `{}`: set agent_url or agent_function, not both",
                self.name
            ),
            (None, None) => anyhow::bail!(
                "resource `{}`: no agent (set agent_url or agent_function)",
                self.name
            ),
        }
    }
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
    /// Who sees every request and may end every lease (`user:NAME` or `group:NAME`). Others
    /// see their own requests and those of resources they approve under the rules.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Who may read the audit log (`user:NAME` or `group:NAME`); nobody when empty.
    #[serde(default)]
    pub auditors: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(agent: &str) -> anyhow::Result<ResourceConfig> {
        let text = format!(
            "name = \"pg/app\"\nengine = \"postgres\"\nhost = \"db\"\nport = 5432\ndatabase = \"app\"\n{agent}"
        );
        Ok(toml::from_str(&text)?)
    }

    #[test]
    fn exactly_one_agent_transport() -> anyhow::Result<()> {
        let http = resource("agent_url = \"http://agent:7070\"")?;
        assert_eq!(
            http.agent_target()?,
            AgentTarget::Http {
                url: "http://agent:7070".into()
            }
        );
        let lambda = resource("agent_function = \"arn:aws:lambda:eu-west-1:1:function:a\"")?;
        assert_eq!(
            lambda.agent_target()?,
            AgentTarget::Lambda {
                function: "arn:aws:lambda:eu-west-1:1:function:a".into(),
                endpoint: None,
                max_attempts: 1,
            }
        );
        let both = resource("agent_url = \"http://a\"\nagent_function = \"f\"")?;
        let err = both.agent_target().unwrap_err().to_string();
        assert_eq!(
            err,
            "resource `pg/app`: set agent_url or agent_function, not both"
        );
        let none = resource("")?;
        let err = none.agent_target().unwrap_err().to_string();
        assert!(err.contains("no agent"), "{err}");
        // Zero attempts would mean never calling: read as one.
        let zero = resource("agent_function = \"f\"\nagent_lambda_max_attempts = 0")?;
        assert!(matches!(
            zero.agent_target()?,
            AgentTarget::Lambda {
                max_attempts: 1,
                ..
            }
        ));
        Ok(())
    }

    #[cfg(not(feature = "lambda"))]
    #[test]
    fn a_lambda_agent_without_the_feature_is_a_clear_error() {
        let rid = ResourceId::new("pg/app").unwrap_or_else(|e| panic!("{e}"));
        let err = crate::AgentClient::lambda(&rid, "f".into(), None, 1)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--features lambda"), "{err}");
    }
}
