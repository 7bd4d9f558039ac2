//! The p0 agent. It trusts the server for approval only: every provision call is checked on
//! its own — the server's HMAC, the requester's ID token (its own issuer config), the key the
//! token commits to, the requester's signature, replay, the plan against a fresh extraction of
//! the signed query, and the escalation guard inside the provisioner.
//!
//! [`build_router`] returns one `axum::Router`; `main.rs` serves it over HTTP, and the same
//! router can be handed to a Lambda runtime.

mod config;
mod handlers;

pub use config::AgentConfig;
pub use handlers::{build_router, run_sweeper, AgentState};
