//! The p0 agent. It trusts the server for approval only: every provision call is checked on
//! its own — the server's HMAC, the requester's ID token (its own issuer config), the key the
//! token commits to, the requester's signature, replay, the plan against a fresh extraction of
//! the signed query, and the escalation guard inside the provisioner.
//!
//! [`AgentState::handle`] runs one operation whatever the transport: [`build_router`] serves
//! it over HTTP (`main.rs`), and, with the `lambda` feature, [`lambda`] serves it as an AWS
//! Lambda function (`p0-agent-lambda`).

mod config;
mod handlers;
#[cfg(feature = "lambda")]
pub mod lambda;

pub use config::{AgentConfig, ConnectConfig};
pub use handlers::{build_router, run_sweeper, AgentState, Op, Reply};
