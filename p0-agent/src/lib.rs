//! The p0 agent: transport and configuration around [`p0_core::agent`], which holds every
//! check of a call — the server's HMAC, the requester's ID token (the agent's own issuer
//! config), the key the token commits to, the requester's signature, freshness, replay, the
//! plan against a fresh extraction of the signed query — before the escalation guard inside
//! the provisioner.
//!
//! [`AgentState`] builds the core agent from an [`AgentConfig`]; [`build_router`] serves it
//! over HTTPS (or plain HTTP on loopback; [`serve`], `main.rs`), on Google Cloud Run and as
//! an Azure Functions custom handler ([`Platform`]), and, with the `lambda` feature,
//! [`lambda`] serves it as an AWS Lambda function (`p0-agent-lambda`).

mod config;
pub mod google;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod logging;
mod platform;
mod router;
mod serve;
mod state;

pub use config::{AgentConfig, ConnectConfig, GoogleCallerConfig};
pub use p0_core::agent::{Op, Reply};
pub use platform::{metadata_project, Platform, AZURE_TIMER_PATH};
pub use router::{build_router, build_router_with, Gates};
pub use serve::{
    is_loopback_listen, serve, serve_router, serve_until, tls_server_config, Serving, TlsListener,
    SHUTDOWN_GRACE,
};
pub use state::{run_sweeper, secret_from_env, AgentState};
