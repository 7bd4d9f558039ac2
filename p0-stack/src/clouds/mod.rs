//! Local stand-ins for what the clouds put around an agent, on loopback, for tests that run
//! the real `p0-agent` as each platform would:
//!
//! - [`GoogleMetadata`]: the GCE metadata server's identity endpoint (Google-signed ID tokens
//!   for an audience, `Metadata-Flavor: Google` required) and project id, and the issuer's
//!   discovery and keys, so the agent verifies what it hands out.
//! - [`FunctionsHost`]: the Azure Functions host in front of a custom handler, read from the
//!   app's `host.json` and `*/function.json`: it checks the function key of function-level
//!   HTTP triggers, forwards their requests to the handler's port unchanged, and delivers
//!   timer invocations as the host does.
//! - [`ManagedIdentity`]: an App Service managed-identity endpoint (`IDENTITY_ENDPOINT`)
//!   issuing Entra ID tokens, and their issuer's discovery and keys, which the host's
//!   App Service authentication stand-in ([`EasyAuth`]) checks.

mod azure;
mod entra;
mod google;

pub use azure::{Function, FunctionsApp, FunctionsHost};
pub use entra::{EasyAuth, ManagedIdentity};
pub use google::{GoogleMetadata, GOOGLE_PROJECT};
