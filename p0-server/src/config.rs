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
    /// Azure Functions: a function key.
    FunctionKey(String),
}

impl std::fmt::Debug for PlatformAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::GoogleIdToken { audience } => f
                .debug_struct("GoogleIdToken")
                .field("audience", audience)
                .finish(),
            Self::FunctionKey(_) => f.write_str("FunctionKey(<redacted>)"),
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
                    || self.agent_function_key.is_some() =>
            {
                anyhow::bail!(
                    "resource `{}`: agent_ca, dangerous_plain_http, agent_google_audience and agent_function_key are for an agent_url, not agent_function",
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
        match (&self.agent_google_audience, &self.agent_function_key) {
            (None, None) => Ok(PlatformAuth::None),
            (Some(audience), None) if !audience.trim().is_empty() => {
                Ok(PlatformAuth::GoogleIdToken {
                    audience: audience.clone(),
                })
            }
            (None, Some(key)) if !key.trim().is_empty() => {
                Ok(PlatformAuth::FunctionKey(key.clone()))
            }
            (Some(_), Some(_)) => anyhow::bail!(
                "resource `{}`: set agent_google_audience (Cloud Run) or agent_function_key (Azure Functions), not both",
                self.name
            ),
            _ => anyhow::bail!(
                "resource `{}`: agent_google_audience or agent_function_key is empty",
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
        let config: Self = toml::from_str(text)?;
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
        let http = resource("agent_url = \"https://agent:7070\"")?;
        assert_eq!(
            http.agent_target()?,
            AgentTarget::Http {
                url: "https://agent:7070".into(),
                ca: None,
                platform: PlatformAuth::None,
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
        let both = resource("agent_url = \"https://a\"\nagent_function = \"f\"")?;
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

    fn server(resource: &str) -> String {
        format!(
            "listen = \"127.0.0.1:7080\"\nstore = \"sqlite::memory:\"\nissuer = \"https://login.example.com\"\n\
             audience = \"p0\"\nrules = \"-\"\n[[resource]]\nname = \"pg/app\"\nengine = \"postgres\"\n\
             host = \"db\"\nport = 5432\ndatabase = \"app\"\nagent_secret = \"s\"\n{resource}"
        )
    }

    /// Loads a server config and returns what it logged.
    fn load_logging(text: &str) -> (anyhow::Result<ServerConfig>, String) {
        #[derive(Clone, Default)]
        struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let result =
            tracing::subscriber::with_default(subscriber, || ServerConfig::from_toml(text));
        let logged = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
        (result, logged)
    }

    #[test]
    fn plain_http_to_an_agent_off_loopback_is_refused_at_load() {
        let (result, logged) = load_logging(&server("agent_url = \"http://agent.internal:7070\""));
        let err = result.map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            err,
            "resource `pg/app`: agent_url `http://agent.internal:7070` is plain http to a host that is not loopback: use https (with agent_ca), or set dangerous_plain_http = true"
        );
        assert!(!err.contains('\n'));
        assert!(logged.is_empty(), "{logged}");
        for url in [
            "http://10.0.0.5:7070",
            "http://0.0.0.0:7070",
            "http://[fe80::1]:7070",
        ] {
            let (result, _) = load_logging(&server(&format!("agent_url = \"{url}\"")));
            assert!(result.is_err(), "{url}");
        }
    }

    #[test]
    fn plain_http_to_loopback_and_https_load_quietly() {
        for url in [
            "http://127.0.0.1:7070",
            "http://127.0.0.2:7070",
            "http://[::1]:7070",
            "http://localhost:7070",
            "https://agent.internal:7070",
        ] {
            let (result, logged) = load_logging(&server(&format!("agent_url = \"{url}\"")));
            assert!(result.is_ok(), "{url}: {:?}", result.err());
            assert!(logged.is_empty(), "{url}: {logged}");
        }
    }

    #[test]
    fn a_platform_authenticates_an_http_agent_one_way_at_most() -> anyhow::Result<()> {
        let run = resource(
            "agent_url = \"https://a.run.app\"\nagent_google_audience = \"https://a.run.app\"",
        )?;
        assert!(matches!(
            run.agent_target()?,
            AgentTarget::Http { platform: PlatformAuth::GoogleIdToken { audience }, .. } if audience == "https://a.run.app"
        ));
        let azure =
            resource("agent_url = \"https://f.azurewebsites.net\"\nagent_function_key = \"k3y\"")?;
        let target = azure.agent_target()?;
        assert!(!format!("{target:?}").contains("k3y"), "{target:?}");
        for (extra, why) in [
            ("agent_url = \"https://a\"\nagent_google_audience = \"a\"\nagent_function_key = \"k\"", "not both"),
            ("agent_url = \"https://a\"\nagent_function_key = \" \"", "is empty"),
            ("agent_function = \"f\"\nagent_function_key = \"k\"", "not agent_function"),
        ] {
            let err = resource(extra)?.agent_target().unwrap_err().to_string();
            assert!(err.contains(why), "{extra}: {err}");
        }
        Ok(())
    }

    #[test]
    fn dangerous_plain_http_is_accepted_and_logged_as_a_warning() {
        let (result, logged) = load_logging(&server(
            "agent_url = \"http://agent.internal:7070\"\ndangerous_plain_http = true",
        ));
        let config = result.unwrap();
        assert_eq!(
            config.resources[0].agent_target().unwrap(),
            AgentTarget::Http {
                url: "http://agent.internal:7070".into(),
                ca: None,
                platform: PlatformAuth::None,
            }
        );
        assert!(logged.contains("WARN"), "{logged}");
        assert!(logged.contains("dangerous_plain_http"), "{logged}");
        assert!(logged.contains("pg/app"), "{logged}");
    }

    #[test]
    fn agent_ca_goes_with_an_https_agent_only() {
        let (result, _) = load_logging(&server(
            "agent_url = \"https://agent.internal:7070\"\nagent_ca = \"/etc/p0/agent-ca.pem\"",
        ));
        assert_eq!(
            result.unwrap().resources[0].agent_target().unwrap(),
            AgentTarget::Http {
                url: "https://agent.internal:7070".into(),
                ca: Some("/etc/p0/agent-ca.pem".into()),
                platform: PlatformAuth::None,
            }
        );
        let (result, _) = load_logging(&server(
            "agent_url = \"http://127.0.0.1:7070\"\nagent_ca = \"ca.pem\"",
        ));
        let err = result.map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("agent_ca is set but agent_url"), "{err}");
        let err = resource("agent_function = \"f\"\nagent_ca = \"ca.pem\"")
            .unwrap()
            .agent_target()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not agent_function"), "{err}");
        let (result, _) = load_logging(&server("agent_url = \"ftp://agent:21\""));
        let err = result.map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("neither https nor http"), "{err}");
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
