//! The web console, served by the server itself under `/console`: approvers sign in with the
//! same OIDC issuer as the CLI, see pending requests with exactly what they grant (the SQL or
//! role, the privileges, the rule that matched, how long each has waited) and approve or deny
//! them; everyone sees their own requests, live leases with the time left (ending those they
//! may end), and auditors the audit log with its verification. Everything goes through the
//! same store, lifecycle and visibility rules as the API: there is no second source of truth.
//!
//! Server-rendered HTML (askama), one small script and one stylesheet served from here, no
//! third-party host (the Content-Security-Policy says so to the browser). Pages update without
//! a reload through server-sent events.

mod actions;
mod events;
mod login;
mod pages;
mod session;
mod web;

pub use web::routes;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

/// The server's `[console]` section.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// The server's URL as browsers reach it: the issuer returns to
    /// `{public_url}/console/callback` (register it with the issuer), and cookies are `Secure`
    /// when it is `https://`.
    pub public_url: String,
    /// The OIDC client's secret, for an issuer that wants one (the client id is the server's
    /// `audience`). Falls back to `P0_CONSOLE_CLIENT_SECRET`.
    #[serde(default)]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("public_url", &self.public_url)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The console's own state: its OIDC client and the key of its cookies.
pub struct Console {
    oidc: login::Oidc,
    streams: events::Streams,
    key: cookie::Key,
    secure: bool,
    origin: String,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("oidc", &self.oidc)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// From the configuration. The cookie key comes from `P0_CONSOLE_COOKIE_KEY` (base64 of at
    /// least 64 random bytes; the same for every replica), or is made now, and sessions then
    /// end when the server restarts.
    pub fn new(c: &ConsoleConfig, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let public = c.public_url.trim_end_matches('/');
        let url = reqwest::Url::parse(public)
            .map_err(|e| anyhow::anyhow!("console.public_url `{public}`: {e}"))?;
        let secure = match url.scheme() {
            "https" => true,
            "http" => false,
            other => anyhow::bail!("console.public_url: `{other}` is not http or https"),
        };
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if !secure && !loopback {
            anyhow::bail!(
                "console.public_url `{public}`: plain http:// is for a loopback address only; sessions would cross the network in clear"
            );
        }
        let secret = match c.client_secret.clone() {
            Some(s) => Some(s),
            None => p0_core::secret::from_env("P0_CONSOLE_CLIENT_SECRET")?,
        };
        let key = match p0_core::secret::from_env("P0_CONSOLE_COOKIE_KEY")? {
            Some(b64) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| anyhow::anyhow!("P0_CONSOLE_COOKIE_KEY is not base64"))?;
                cookie::Key::try_from(bytes.as_slice()).map_err(|_| {
                    anyhow::anyhow!("P0_CONSOLE_COOKIE_KEY must hold at least 64 bytes")
                })?
            }
            None => {
                tracing::info!("console: no P0_CONSOLE_COOKIE_KEY, so a key made now: sessions end when the server restarts, and replicas need the same key");
                cookie::Key::generate()
            }
        };
        Ok(Self {
            oidc: login::Oidc::new(
                issuer,
                audience,
                secret,
                format!("{public}/console/callback"),
            )?,
            streams: events::Streams::default(),
            key,
            secure,
            origin: url.origin().ascii_serialization(),
        })
    }
}

/// The answer when the server has no `[console]` section.
pub(crate) fn not_configured() -> Response {
    page_error(
        StatusCode::NOT_FOUND,
        "the web console is not configured on this server (add a [console] section)",
    )
}

/// A page that says, in one line, what went wrong.
pub(crate) fn page_error(status: StatusCode, message: &str) -> Response {
    use askama::Template;
    let page = pages::ErrorPage { message };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message.to_string()).into_response(),
    }
}
