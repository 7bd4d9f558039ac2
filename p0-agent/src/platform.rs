//! Where the agent runs, as each platform tells its process through the environment, and
//! what that changes: the address, who ends TLS, who checks the caller first, who runs the
//! sweeper, how logs are written. Every call still goes through the same
//! [`p0_core::agent::Agent`] checks.
//!
//! - **Standalone** (a host or a container of the operator's own): `listen`, TLS and the
//!   background sweeper as the configuration says.
//! - **Google Cloud Run** (`K_SERVICE` set): `$PORT` on every interface, plain HTTP behind
//!   Google's front end, which ends TLS and admits only callers with a Google ID token of an
//!   identity allowed to invoke the service; the agent checks that token again
//!   ([`crate::google`]), so `google_caller` is required. Cloud Scheduler calls the sweep;
//!   logs are JSON for Cloud Logging.
//! - **Azure Functions** (`FUNCTIONS_CUSTOMHANDLER_PORT` set): a custom handler on loopback
//!   behind the Functions host, which ends TLS and checks the function key before it
//!   forwards a call; the timer trigger's invocation arrives at `POST /sweep`.

use crate::router::{build_router_with, response, Gates};
use crate::{AgentConfig, AgentState, Serving};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use p0_core::agent::Op;
use std::sync::Arc;
use tracing::Instrument;

/// The platform the agent runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Platform {
    /// A host or container of the operator's own.
    Standalone,
    /// Google Cloud Run, serving on `port`; `project` names traces in the logs.
    CloudRun {
        /// `$PORT`.
        port: u16,
        /// The Google Cloud project (`GOOGLE_CLOUD_PROJECT`, or the metadata server's).
        project: Option<String>,
    },
    /// An Azure Functions custom handler, serving on `port` (loopback).
    AzureFunctions {
        /// `$FUNCTIONS_CUSTOMHANDLER_PORT`.
        port: u16,
    },
}

/// The path of the Azure timer trigger's invocations: its function's name.
pub const AZURE_TIMER_PATH: &str = "/sweep";

fn port(var: &str, value: &str) -> anyhow::Result<u16> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{var} `{value}` is not a port number"))
}

impl Platform {
    /// The platform the environment describes (`var` reads a variable).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        if let Some(p) = var("FUNCTIONS_CUSTOMHANDLER_PORT") {
            return Ok(Self::AzureFunctions {
                port: port("FUNCTIONS_CUSTOMHANDLER_PORT", &p)?,
            });
        }
        if let Some(service) = var("K_SERVICE").filter(|s| !s.trim().is_empty()) {
            // Cloud Run sets both; K_SERVICE alone (a leftover variable, another platform)
            // must not turn a standalone agent into a plain-HTTP one on every interface.
            let Some(p) = var("PORT") else {
                anyhow::bail!(
                    "K_SERVICE `{service}` is set but PORT is not: on Cloud Run both are set; elsewhere unset K_SERVICE"
                );
            };
            let port = port("PORT", &p)?;
            let project = var("GOOGLE_CLOUD_PROJECT").filter(|p| !p.is_empty());
            return Ok(Self::CloudRun { port, project });
        }
        Ok(Self::Standalone)
    }

    /// The address to listen on.
    pub fn listen(&self, config: &AgentConfig) -> String {
        match self {
            Self::Standalone => config.listen.clone(),
            Self::CloudRun { port, .. } => format!("0.0.0.0:{port}"),
            Self::AzureFunctions { port } => format!("127.0.0.1:{port}"),
        }
    }

    /// How to serve, or why this configuration cannot run here.
    pub fn serving(&self, config: &AgentConfig) -> anyhow::Result<Serving> {
        match self {
            Self::Standalone | Self::AzureFunctions { .. } if config.google_caller.is_some() => {
                anyhow::bail!(
                    "[google_caller] is for Cloud Run, which checks the token before the agent does; remove it on {}",
                    self.name()
                )
            }
            Self::Standalone => config.serving(),
            _ if config.tls_cert.is_some() || config.tls_key.is_some() => anyhow::bail!(
                "tls_cert and tls_key are for a standalone agent: on {} the platform ends TLS",
                self.name()
            ),
            Self::CloudRun { .. } if config.google_caller.is_none() => anyhow::bail!(
                "on Cloud Run the agent checks the caller's Google ID token itself: set [google_caller] (audience = the service URL, accounts = the server's and the scheduler's service accounts)"
            ),
            _ => Ok(Serving::Plain { dangerous: false }),
        }
    }

    /// Whether the agent sweeps on a timer of its own: the platforms call the sweep instead
    /// (Cloud Scheduler; the timer trigger), and Cloud Run gives an instance no CPU between
    /// calls.
    pub fn sweeps_itself(&self, config: &AgentConfig) -> bool {
        *self == Self::Standalone && config.sweep_interval_secs > 0
    }

    /// Whether logs are JSON for Cloud Logging.
    pub fn cloud_logging(&self) -> bool {
        matches!(self, Self::CloudRun { .. })
    }

    /// The agent's router here: the platform's gate in front of the HMAC, and its own
    /// entry points.
    pub fn router(
        &self,
        state: Arc<AgentState>,
        config: &AgentConfig,
    ) -> anyhow::Result<axum::Router> {
        // Only behind Cloud Run does a token without its signature mean that Google checked
        // it; anywhere else anybody could write one.
        let gates = Gates {
            google: match (self, &config.google_caller) {
                (Self::CloudRun { .. }, Some(g)) => {
                    Some(Arc::new(crate::google::GoogleCaller::new(g)?))
                }
                _ => None,
            },
        };
        let router = build_router_with(state.clone(), gates);
        Ok(match self {
            Self::Standalone => router,
            Self::CloudRun { project, .. } => router.layer(axum::middleware::from_fn_with_state(
                project.clone(),
                traced,
            )),
            Self::AzureFunctions { .. } => router.route(
                AZURE_TIMER_PATH,
                axum::routing::post(timer_sweep).with_state(state),
            ),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Standalone => "a standalone host",
            Self::CloudRun { .. } => "Cloud Run",
            Self::AzureFunctions { .. } => "Azure Functions",
        }
    }
}

/// Runs a call in a span that carries its Cloud Trace id, so its log lines name it.
async fn traced(State(project): State<Option<String>>, req: Request, next: Next) -> Response {
    let trace = project
        .as_deref()
        .and_then(|p| trace_header(p, req.headers()));
    let span = match trace {
        Some(trace) => tracing::info_span!("call", trace = %trace),
        None => tracing::Span::none(),
    };
    next.run(req).instrument(span).await
}

fn trace_header(project: &str, headers: &axum::http::HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    crate::logging::trace_of(
        project,
        header("x-cloud-trace-context"),
        header("traceparent"),
    )
}

/// The Functions host's timer invocation (`{"Data": …, "Metadata": …}`), answered as a custom
/// handler answers: `Outputs`, `Logs`, `ReturnValue`. Only the host reaches this route: the
/// handler listens on loopback, and the route exists on Azure only.
async fn timer_sweep(State(state): State<Arc<AgentState>>, body: Bytes) -> Response {
    let invocation: Result<serde_json::Map<String, serde_json::Value>, _> =
        serde_json::from_slice(&body);
    if !invocation.is_ok_and(|m| m.contains_key("Data")) {
        return response(p0_core::agent::Reply::refusal(
            400,
            "bad_request",
            "not a Functions host invocation (a JSON object with `Data`)",
        ));
    }
    let reply = state.handle(Op::Sweep, b"{}").await;
    let status = if reply.status == 200 {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let log = format!("p0 sweep: {}", reply.body);
    (
        status,
        Json(serde_json::json!({
            "Outputs": {},
            "Logs": [log],
            "ReturnValue": reply.body,
        })),
    )
        .into_response()
}

/// The project from the metadata server (`GCE_METADATA_HOST` overrides its address), for
/// Cloud Run without `GOOGLE_CLOUD_PROJECT`; `None` if it does not answer within 2 s.
pub async fn metadata_project() -> Option<String> {
    let host =
        std::env::var("GCE_METADATA_HOST").unwrap_or_else(|_| "metadata.google.internal".into());
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .ok()?;
    let text = client
        .get(format!(
            "http://{host}/computeMetadata/v1/project/project-id"
        ))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .await
        .ok()?;
    let text = text.trim();
    (!text.is_empty() && text.len() <= 64 && !text.contains(char::is_whitespace))
        .then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn each_platform_is_read_from_what_it_sets() {
        assert_eq!(Platform::from_env(env(&[])).unwrap(), Platform::Standalone);
        assert_eq!(
            Platform::from_env(env(&[("K_SERVICE", "p0-agent"), ("PORT", "8081")])).unwrap(),
            Platform::CloudRun {
                port: 8081,
                project: None
            }
        );
        assert_eq!(
            Platform::from_env(env(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "36111")])).unwrap(),
            Platform::AzureFunctions { port: 36111 }
        );
        let e = Platform::from_env(env(&[("K_SERVICE", "a"), ("PORT", "http")]))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "PORT `http` is not a port number");
        // K_SERVICE alone is not Cloud Run; an empty one is nothing.
        let e = Platform::from_env(env(&[("K_SERVICE", "a")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PORT is not"), "{e}");
        assert_eq!(
            Platform::from_env(env(&[("K_SERVICE", ""), ("PORT", "8080")])).unwrap(),
            Platform::Standalone
        );
    }

    fn config(extra: &str) -> AgentConfig {
        let text = format!(
            "resource = \"pg/app\"\nissuer = \"https://login.example.com\"\naudience = \"p0\"\n{extra}\n[guard]\ndatabases = [\"app\"]\nservice_user = \"p0_agent\"\n"
        );
        AgentConfig::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn each_platform_serves_where_and_how_it_must() {
        let run = Platform::CloudRun {
            port: 8080,
            project: None,
        };
        let google = "[google_caller]\naudience = \"https://a.run.app\"\naccounts = [\"s@p.iam.gserviceaccount.com\"]";
        // On Cloud Run the agent checks Google's token itself: no google_caller, no start.
        let e = run.serving(&config("")).unwrap_err().to_string();
        assert!(e.contains("[google_caller]"), "{e}");
        let with = config(google);
        assert_eq!(run.listen(&with), "0.0.0.0:8080");
        assert_eq!(
            run.serving(&with).ok(),
            Some(Serving::Plain { dangerous: false })
        );
        assert!(!run.sweeps_itself(&with) && run.cloud_logging());
        // The platform ends TLS: a certificate is a mistake, said so.
        let e = run
            .serving(&config(&format!(
                "tls_cert = \"c\"\ntls_key = \"k\"\n{google}"
            )))
            .unwrap_err()
            .to_string();
        assert!(e.contains("the platform ends TLS"), "{e}");
        let azure = Platform::AzureFunctions { port: 9000 };
        assert_eq!(azure.listen(&config("")), "127.0.0.1:9000");
        assert_eq!(
            azure.serving(&config("")).ok(),
            Some(Serving::Plain { dangerous: false })
        );
        assert!(!azure.sweeps_itself(&config("")) && !azure.cloud_logging());
        let e = azure.serving(&config(google)).unwrap_err().to_string();
        assert!(e.contains("is for Cloud Run"), "{e}");
        // Standalone: the config's own rules.
        let e = Platform::Standalone
            .serving(&config("listen = \"0.0.0.0:7070\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a loopback address"), "{e}");
        assert!(Platform::Standalone.sweeps_itself(&config("")));
        let e = Platform::Standalone
            .serving(&config(google))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is for Cloud Run"), "{e}");
    }
}
