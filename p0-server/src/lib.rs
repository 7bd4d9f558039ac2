//! The p0 control plane: requests, routing, approvals, leases, the reaper and the audit log.
//! It routes and approves; it never sees a password and cannot widen a grant (the agent
//! checks every plan against the requester's own signed query).

mod access_log;
mod agent_client;
mod auth;
mod config;
mod console;
mod error;
mod lifecycle;
mod reaper;
mod routes;
mod serve;
mod shown;
mod slack;
mod state;
pub mod store;

pub use agent_client::{AgentClient, AgentError};
pub use config::{AgentTarget, ResourceConfig, ServerConfig};
pub use reaper::{run_reaper, sweep_once};
pub use routes::build_router;
pub use serve::{serve, serve_until, SHUTDOWN_GRACE};
pub use slack::SlackConfig;
pub use state::AppState;
