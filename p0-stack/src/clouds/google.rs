//! The GCE metadata server's identity endpoint and project id.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use p0_core::DangerousDevIssuer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The metadata server of a Google Cloud instance, issuing ID tokens of `account`.
pub struct GoogleMetadata {
    /// `http://127.0.0.1:PORT`: also the tokens' issuer.
    pub url: String,
    /// `127.0.0.1:PORT`, as `GCE_METADATA_HOST` takes it.
    pub host: String,
    issuer: Arc<DangerousDevIssuer>,
    audiences: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

/// The project the stand-in names.
pub const GOOGLE_PROJECT: &str = "p0-test";

struct Metadata {
    issuer: Arc<DangerousDevIssuer>,
    account: String,
    audiences: Arc<Mutex<Vec<String>>>,
}

impl GoogleMetadata {
    /// Starts it on `port` (0: any); its ID tokens are `account`'s.
    pub async fn start(port: u16, account: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let host = listener.local_addr()?.to_string();
        let url = format!("http://{host}");
        let issuer = Arc::new(DangerousDevIssuer::new(url.clone())?);
        let audiences = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Metadata {
            issuer: issuer.clone(),
            account: account.to_string(),
            audiences: audiences.clone(),
        });
        let app = Router::new()
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/identity",
                get(identity),
            )
            .route("/computeMetadata/v1/project/project-id", get(project))
            .route(
                "/.well-known/openid-configuration",
                get(|State(m): State<Arc<Metadata>>| async move { Json(m.issuer.discovery()) }),
            )
            .route(
                "/jwks",
                get(|State(m): State<Arc<Metadata>>| async move { Json(m.issuer.jwks().clone()) }),
            )
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            host,
            issuer,
            audiences,
            task,
        })
    }

    /// A token as Google signs one for `account` and `audience` (format `full`).
    pub fn mint(&self, account: &str, audience: &str) -> anyhow::Result<String> {
        Ok(self
            .issuer
            .issue_claims(&claims(self.issuer.issuer(), account, audience))?
            .expose_secret()
            .to_string())
    }

    /// The audiences it issued tokens for, in order.
    pub fn audiences(&self) -> Vec<String> {
        self.audiences.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl std::fmt::Debug for GoogleMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleMetadata")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for GoogleMetadata {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn claims(issuer: &str, account: &str, audience: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({
        "iss": issuer,
        "aud": audience,
        "azp": "112233445566778899000",
        "sub": "112233445566778899000",
        "email": account,
        "email_verified": true,
        "iat": now,
        "exp": now + 3600,
    })
}

fn flavored(headers: &HeaderMap) -> bool {
    headers
        .get("metadata-flavor")
        .is_some_and(|v| v.as_bytes() == b"Google")
}

async fn identity(
    State(m): State<Arc<Metadata>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // The metadata server refuses a request without the header (a forwarded request
    // smuggled through a proxy would lack it).
    if !flavored(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header",
        )
            .into_response();
    }
    let Some(audience) = q.get("audience").filter(|a| !a.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "non-empty audience parameter required",
        )
            .into_response();
    };
    if let Ok(mut a) = m.audiences.lock() {
        a.push(audience.clone());
    }
    match m
        .issuer
        .issue_claims(&claims(m.issuer.issuer(), &m.account, audience))
    {
        Ok(t) => t.expose_secret().to_string().into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn project(headers: HeaderMap) -> Response {
    if !flavored(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    GOOGLE_PROJECT.into_response()
}
