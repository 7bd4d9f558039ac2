//! Calls to an agent: over HTTP, authenticated with the shared HMAC, or through AWS Lambda's
//! Invoke API (feature `lambda`), authenticated by IAM. Both carry the same operations and
//! bodies, and both answer a status and a JSON body, read here the same way.

use anyhow::Context;
use p0_core::api::{hmac_sign, ApiError, HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

mod platform;
use platform::Platform;

/// Why a call to the agent failed.
#[derive(Debug)]
pub enum AgentError {
    /// The agent refused (its code and reason).
    Refused(String, String),
    /// The agent could not be reached or failed.
    Unavailable(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::Refused(code, m) => write!(f, "agent refused ({code}): {m}"),
            AgentError::Unavailable(m) => write!(f, "agent unavailable: {m}"),
        }
    }
}

/// One agent.
pub struct AgentClient {
    transport: Transport,
}

enum Transport {
    Http {
        base: String,
        secret: Vec<u8>,
        http: reqwest::Client,
        platform: Platform,
    },
    #[cfg(feature = "lambda")]
    Lambda(lambda::LambdaAgent),
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Http { base, .. } => f
                .debug_struct("AgentClient")
                .field("base", base)
                .finish_non_exhaustive(),
            #[cfg(feature = "lambda")]
            Transport::Lambda(l) => f
                .debug_struct("AgentClient")
                .field("function", &l.function)
                .finish_non_exhaustive(),
        }
    }
}

impl AgentClient {
    /// The same client, also authenticated as the agent's platform requires (a Google ID
    /// token for Cloud Run; a function key, an Entra ID token or both for Azure Functions).
    /// Only for an HTTP agent.
    pub fn with_platform_auth(mut self, auth: crate::config::PlatformAuth) -> anyhow::Result<Self> {
        // Irrefutable without the `lambda` feature.
        #[allow(irrefutable_let_patterns)]
        let Transport::Http { platform, .. } = &mut self.transport
        else {
            anyhow::bail!("platform authentication is for an HTTP agent");
        };
        *platform = Platform::new(auth)?;
        Ok(self)
    }

    /// A client for the HTTP agent at `base`. With `ca` (a PEM file of one or more
    /// certificates), those are the only roots trusted for the agent's certificate; without
    /// it, the public web roots are. Certificates and host names are always verified.
    pub fn new(base: &str, secret: &str, ca: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            // An agent that redirects is misconfigured or not an agent: never follow.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = ca {
            let pem = std::fs::read(ca)
                .with_context(|| format!("reading agent_ca `{}`", ca.display()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("agent_ca `{}` is not PEM certificates", ca.display()))?;
            if roots.is_empty() {
                anyhow::bail!("agent_ca `{}` holds no certificate", ca.display());
            }
            builder = builder.tls_built_in_root_certs(false);
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let http = builder.build()?;
        Ok(Self {
            transport: Transport::Http {
                base: base.trim_end_matches('/').to_string(),
                secret: secret.as_bytes().to_vec(),
                http,
                platform: Platform::None,
            },
        })
    }

    /// A client for the agent that is the Lambda function `function`, invoked with the
    /// server's own AWS credentials (loaded on first use).
    #[cfg(feature = "lambda")]
    pub fn lambda(
        _resource: &p0_core::ResourceId,
        function: String,
        endpoint: Option<String>,
        max_attempts: u32,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            transport: Transport::Lambda(lambda::LambdaAgent::new(
                function,
                endpoint,
                max_attempts,
            )),
        })
    }

    /// Without the `lambda` feature, a Lambda agent is a configuration error.
    #[cfg(not(feature = "lambda"))]
    pub fn lambda(
        resource: &p0_core::ResourceId,
        _function: String,
        _endpoint: Option<String>,
        _max_attempts: u32,
    ) -> anyhow::Result<Self> {
        anyhow::bail!(
            "resource `{resource}`: agent_function needs a server built with `--features lambda`"
        )
    }

    /// Calls the operation at `path` (`/v1/provision`, …) with `body`.
    pub async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, AgentError> {
        let bytes = serde_json::to_vec(body).map_err(|e| AgentError::Unavailable(e.to_string()))?;
        let (status, reply) = match &self.transport {
            Transport::Http {
                base,
                secret,
                http,
                platform,
            } => {
                let ts = chrono::Utc::now().timestamp();
                let sig = hmac_sign(secret, ts, path, &bytes);
                let req = http
                    .post(format!("{base}{path}"))
                    .header(HMAC_TIME_HEADER, ts.to_string())
                    .header(HMAC_SIG_HEADER, sig)
                    .header("content-type", "application/json");
                let req = platform.authorize(req).await?;
                let resp = req
                    .body(bytes)
                    .send()
                    .await
                    .map_err(|e| AgentError::Unavailable(error_chain(e)))?;
                let status = resp.status().as_u16();
                let reply = resp
                    .bytes()
                    .await
                    .map_err(|e| AgentError::Unavailable(error_chain(e)))?;
                (status, serde_json::from_slice(&reply).ok())
            }
            #[cfg(feature = "lambda")]
            Transport::Lambda(l) => l.invoke(path, &bytes).await?,
        };
        interpret(status, reply)
    }
}

impl AgentClient {
    /// Whether the agent answers its health check (readiness), within `within`.
    pub async fn health(&self, within: std::time::Duration) -> Result<(), AgentError> {
        let checked = async {
            match &self.transport {
                Transport::Http {
                    base,
                    http,
                    platform,
                    ..
                } => {
                    let req = platform
                        .authorize(http.get(format!("{base}/v1/health")))
                        .await?;
                    let resp = req
                        .send()
                        .await
                        .map_err(|e| AgentError::Unavailable(error_chain(e)))?;
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.ok();
                    let body = body.and_then(|b| serde_json::from_slice(&b).ok());
                    interpret::<serde_json::Value>(status, body).map(|_| ())
                }
                #[cfg(feature = "lambda")]
                Transport::Lambda(l) => {
                    let (status, reply) = l.invoke("/v1/health", b"{}").await?;
                    interpret::<serde_json::Value>(status, reply).map(|_| ())
                }
            }
        };
        tokio::time::timeout(within, checked)
            .await
            .unwrap_or_else(|_| Err(AgentError::Unavailable("no answer in time".into())))
    }
}

/// A transport error with its causes on one line (`error sending request: client error
/// (Connect): invalid peer certificate: UnknownIssuer`), without the URL.
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Reads an agent's answer: the result on success, its [`ApiError`] otherwise; a 5xx (or an
/// unreadable answer) means unavailable, to be retried, anything else a refusal.
fn interpret<R: DeserializeOwned>(
    status: u16,
    body: Option<serde_json::Value>,
) -> Result<R, AgentError> {
    if (200..300).contains(&status) {
        let body = body.ok_or_else(|| AgentError::Unavailable("unreadable answer".into()))?;
        return serde_json::from_value(body).map_err(|e| AgentError::Unavailable(e.to_string()));
    }
    let err = body
        .and_then(|b| serde_json::from_value::<ApiError>(b).ok())
        .unwrap_or(ApiError {
            code: "internal".into(),
            message: format!("status {status}"),
        });
    if status >= 500 {
        Err(AgentError::Unavailable(err.message))
    } else {
        Err(AgentError::Refused(err.code, err.message))
    }
}

#[cfg(feature = "lambda")]
mod lambda {
    use super::AgentError;
    use aws_sdk_lambda::error::DisplayErrorContext;
    use aws_sdk_lambda::primitives::Blob;
    use tokio::sync::OnceCell;

    /// A Lambda agent; the SDK client is built on first use (loading AWS configuration is
    /// asynchronous and may read the instance's role).
    pub(super) struct LambdaAgent {
        pub(super) function: String,
        endpoint: Option<String>,
        max_attempts: u32,
        client: OnceCell<aws_sdk_lambda::Client>,
    }

    /// What the agent's Lambda handler answers (`p0_agent::Reply`).
    #[derive(serde::Deserialize)]
    struct Reply {
        status: u16,
        body: serde_json::Value,
    }

    impl LambdaAgent {
        pub(super) fn new(function: String, endpoint: Option<String>, max_attempts: u32) -> Self {
            Self {
                function,
                endpoint,
                max_attempts,
                client: OnceCell::new(),
            }
        }

        async fn client(&self) -> &aws_sdk_lambda::Client {
            self.client
                .get_or_init(|| async {
                    let shared =
                        aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                    let retry = aws_sdk_lambda::config::retry::RetryConfig::standard()
                        .with_max_attempts(self.max_attempts);
                    // As long as the HTTP transport waits: an agent that never answers (a
                    // function that died in its init) is unavailable, not a hung request.
                    let timeout = aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                        .operation_timeout(std::time::Duration::from_secs(60))
                        .build();
                    let mut conf = aws_sdk_lambda::config::Builder::from(&shared)
                        .retry_config(retry)
                        .timeout_config(timeout);
                    if let Some(e) = &self.endpoint {
                        conf = conf.endpoint_url(e);
                    }
                    aws_sdk_lambda::Client::from_conf(conf.build())
                })
                .await
        }

        /// Invokes the function with `{"op": …, "body": …}` and returns its status and body.
        pub(super) async fn invoke(
            &self,
            path: &str,
            body: &[u8],
        ) -> Result<(u16, Option<serde_json::Value>), AgentError> {
            let op = path.strip_prefix("/v1/").unwrap_or(path);
            let body: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| AgentError::Unavailable(e.to_string()))?;
            let payload = serde_json::to_vec(&serde_json::json!({ "op": op, "body": body }))
                .map_err(|e| AgentError::Unavailable(e.to_string()))?;
            let out = self
                .client()
                .await
                .invoke()
                .function_name(&self.function)
                .payload(Blob::new(payload))
                .send()
                .await
                .map_err(|e| {
                    AgentError::Unavailable(format!(
                        "invoking `{}`: {}",
                        self.function,
                        DisplayErrorContext(e)
                    ))
                })?;
            let answer = out.payload().map(|p| p.as_ref()).unwrap_or_default();
            if let Some(kind) = out.function_error() {
                // The handler failed or the runtime did (timeout, crash): the Lambda error
                // document names it; the agent's own refusals never come this way.
                let message = serde_json::from_slice::<serde_json::Value>(answer)
                    .ok()
                    .and_then(|v| v["errorMessage"].as_str().map(String::from))
                    .unwrap_or_default();
                return Err(AgentError::Unavailable(format!(
                    "the function `{}` failed ({kind}): {message}",
                    self.function
                )));
            }
            let reply: Reply = serde_json::from_slice(answer).map_err(|e| {
                AgentError::Unavailable(format!("unreadable answer from the function: {e}"))
            })?;
            Ok((reply.status, Some(reply.body)))
        }
    }
}
