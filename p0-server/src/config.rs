//! Server configuration (TOML).

use p0_core::{Engine, ResourceId};
use serde::Deserialize;

/// One database target and the agent that serves it. Its `Debug` leaves the secrets out.
#[derive(Clone, Deserialize)]
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
    /// `agent_function` is set. `https://` (verified), or `http://` to a loopback address only
    /// unless `dangerous_plain_http` is set.
    #[serde(default)]
    pub agent_url: Option<String>,
    /// PEM file of the CA certificate(s) that issued the agent's certificate: with it, the only
    /// roots the server trusts for this agent; without it, the public web roots.
    #[serde(default)]
    pub agent_ca: Option<std::path::PathBuf>,
    /// Allow a plain `http://` agent_url that is not loopback (the server's tokens and the
    /// agent's answers cross the network unencrypted). Logged as a warning at start.
    #[serde(default)]
    pub dangerous_plain_http: bool,
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
    /// An HTTP agent on Google Cloud Run: every call also carries a Google-signed ID token
    /// for this audience (the service's URL), from the metadata server on Google Cloud or
    /// from the service-account key file `GOOGLE_APPLICATION_CREDENTIALS` names elsewhere.
    /// Needs the `gcp` feature.
    #[serde(default)]
    pub agent_google_audience: Option<String>,
    /// An HTTP agent on Azure Functions with function-level authorization: every call also
    /// carries this function key (`x-functions-key`), which the Functions host checks.
    #[serde(default)]
    pub agent_function_key: Option<String>,
    /// An HTTP agent on Azure Functions behind App Service authentication (Entra ID): every
    /// call also carries an Entra ID token of the server's managed identity for this
    /// application ID URI (`api://…`). With or without a function key. Needs the `azure`
    /// feature.
    #[serde(default)]
    pub agent_entra_audience: Option<String>,
}

impl std::fmt::Debug for ResourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ResourceConfig")
            .field("name", &self.name)
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("agent_url", &self.agent_url)
            .field("agent_ca", &self.agent_ca)
            .field("dangerous_plain_http", &self.dangerous_plain_http)
            .field("agent_secret", &redacted(&self.agent_secret))
            .field("agent_function", &self.agent_function)
            .field("agent_lambda_endpoint", &self.agent_lambda_endpoint)
            .field("agent_lambda_max_attempts", &self.agent_lambda_max_attempts)
            .field("agent_google_audience", &self.agent_google_audience)
            .field("agent_function_key", &redacted(&self.agent_function_key))
            .field("agent_entra_audience", &self.agent_entra_audience)
            .finish()
    }
}

fn one() -> u32 {
    1
}

/// How the server reaches a resource's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentTarget {
    /// Over HTTPS (or loopback HTTP) with the shared HMAC; `ca` is the only root to trust;
    /// `platform` is what the agent's platform checks first.
    Http {
        url: String,
        ca: Option<std::path::PathBuf>,
        platform: PlatformAuth,
    },
    /// Through AWS Lambda's Invoke API.
    Lambda {
        function: String,
        endpoint: Option<String>,
        max_attempts: u32,
    },
}

/// What an HTTP agent's platform checks of the server before the agent sees a call (the
/// agent checks the HMAC, and on Cloud Run the token, itself too).
#[derive(Clone, PartialEq, Eq)]
pub enum PlatformAuth {
    /// Nothing: a standalone agent.
    None,
    /// Cloud Run: a Google-signed ID token for this audience.
    GoogleIdToken {
        /// The service's URL.
        audience: String,
    },
    /// Azure Functions: a function key, an Entra ID token of the server's managed identity
    /// for this audience (App Service authentication in front of the app), or both.
    Azure {
        /// Sent as `x-functions-key`.
        function_key: Option<String>,
        /// The application ID URI (`api://…`) the token is for.
        entra_audience: Option<String>,
    },
}

impl std::fmt::Debug for PlatformAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::GoogleIdToken { audience } => f
                .debug_struct("GoogleIdToken")
                .field("audience", audience)
                .finish(),
            Self::Azure {
                function_key,
                entra_audience,
            } => f
                .debug_struct("Azure")
                .field("function_key", &function_key.as_ref().map(|_| "<redacted>"))
                .field("entra_audience", entra_audience)
                .finish(),
        }
    }
}

impl ResourceConfig {
    /// Where its agent is; exactly one transport must be configured, and an HTTP agent is
    /// reached over verified TLS unless it is on loopback (or `dangerous_plain_http`).
    pub fn agent_target(&self) -> anyhow::Result<AgentTarget> {
        match (&self.agent_url, &self.agent_function) {
            (Some(url), None) => {
                self.check_agent_url(url)?;
                Ok(AgentTarget::Http {
                    url: url.clone(),
                    ca: self.agent_ca.clone(),
                    platform: self.platform_auth()?,
                })
            }
            (None, Some(_))
                if self.agent_ca.is_some()
                    || self.dangerous_plain_http
                    || self.agent_google_audience.is_some()
                    || self.agent_function_key.is_some()
                    || self.agent_entra_audience.is_some() =>
            {
                anyhow::bail!(
                    "resource `{}`: agent_ca, dangerous_plain_http and a platform's authentication are for an agent_url, not agent_function",
                    self.name
                )
            }
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

impl ResourceConfig {
    fn platform_auth(&self) -> anyhow::Result<PlatformAuth> {
        let given = |v: &Option<String>, what: &str| match v {
            Some(v) if v.trim().is_empty() => {
                anyhow::bail!("resource `{}`: {what} is empty", self.name)
            }
            v => Ok(v.clone()),
        };
        let google = given(&self.agent_google_audience, "agent_google_audience")?;
        let function_key = given(&self.agent_function_key, "agent_function_key")?;
        let entra_audience = given(&self.agent_entra_audience, "agent_entra_audience")?;
        match (google, function_key, entra_audience) {
            (None, None, None) => Ok(PlatformAuth::None),
            (Some(audience), None, None) => Ok(PlatformAuth::GoogleIdToken { audience }),
            (None, function_key, entra_audience) => Ok(PlatformAuth::Azure {
                function_key,
                entra_audience,
            }),
            _ => anyhow::bail!(
                "resource `{}`: set agent_google_audience (Cloud Run) or agent_function_key / agent_entra_audience (Azure Functions), not both",
                self.name
            ),
        }
    }

    /// `https://`, or `http://` to loopback, or `http://` anywhere with `dangerous_plain_http`.
    fn check_agent_url(&self, url: &str) -> anyhow::Result<()> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("resource `{}`: agent_url `{url}`: {e}", self.name))?;
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if self.agent_ca.is_some() => anyhow::bail!(
                "resource `{}`: agent_ca is set but agent_url `{url}` is not https",
                self.name
            ),
            "http" if is_loopback_host(parsed.host_str().unwrap_or_default()) => Ok(()),
            "http" if self.dangerous_plain_http => Ok(()),
            "http" => anyhow::bail!(
                "resource `{}`: agent_url `{url}` is plain http to a host that is not loopback: use https (with agent_ca), or set dangerous_plain_http = true",
                self.name
            ),
            other => anyhow::bail!(
                "resource `{}`: agent_url `{url}`: scheme `{other}` is neither https nor http",
                self.name
            ),
        }
    }

    /// Whether this resource talks plain HTTP to an agent other machines may be between.
    pub fn is_dangerous_plain_http(&self) -> bool {
        self.agent_url.as_deref().is_some_and(|url| {
            reqwest::Url::parse(url).is_ok_and(|u| {
                u.scheme() == "http" && !is_loopback_host(u.host_str().unwrap_or_default())
            })
        })
    }
}

/// `localhost`, 127.0.0.0/8 or `::1` (as a URL writes it, in brackets).
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    /// Approvals from Slack: pending requests posted to a channel with Approve and Deny.
    #[serde(default)]
    pub slack: Option<crate::slack::SlackConfig>,
    /// The web console under `/console`: approvers sign in with the issuer (authorization
    /// code + PKCE) and approve in a browser.
    #[serde(default)]
    pub console: Option<crate::console::ConsoleConfig>,
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
    /// Parses a config file's text and checks how each resource's agent is reached (one
    /// transport; TLS unless loopback or `dangerous_plain_http`, which is logged as a warning).
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!(p0_core::error::toml_error(&e, text)))?;
        for r in &config.resources {
            r.agent_target()?;
            if r.is_dangerous_plain_http() {
                tracing::warn!(
                    resource = %r.name,
                    agent_url = r.agent_url.as_deref().unwrap_or_default(),
                    "dangerous_plain_http: the agent is reached over plain HTTP; anyone on the path sees requesters' ID tokens and can alter the agent's answers"
                );
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
