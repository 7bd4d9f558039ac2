//! Entra ID without Azure: an App Service managed-identity endpoint that issues access tokens
//! for a resource (`GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…` with
//! `X-IDENTITY-HEADER`, as App Service, Functions and Container Apps serve it), the issuer's
//! discovery and keys, and App Service authentication ("Easy Auth") as the Functions host
//! applies it in front of an app: a valid token for the app's audience, or 401.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use p0_core::{DangerousDevIssuer, IdTokenVerifier, JwksVerifier, Token};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The path of the identity endpoint on the stand-in.
const TOKEN_PATH: &str = "/msi/token";

/// A managed identity's token endpoint and the Entra issuer behind it.
pub struct ManagedIdentity {
    /// The issuer (`http://127.0.0.1:PORT`).
    pub url: String,
    /// What `IDENTITY_ENDPOINT` is set to.
    pub endpoint: String,
    issuer: Arc<DangerousDevIssuer>,
    resources: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

struct Identity {
    issuer: Arc<DangerousDevIssuer>,
    header: String,
    resources: Arc<Mutex<Vec<String>>>,
}

impl ManagedIdentity {
    /// Starts it on `port` (0: any), answering requests that carry `header` as
    /// `X-IDENTITY-HEADER` (what `IDENTITY_HEADER` is set to).
    pub async fn start(port: u16, header: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let issuer = Arc::new(DangerousDevIssuer::new(url.clone())?);
        let resources = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Identity {
            issuer: issuer.clone(),
            header: header.to_string(),
            resources: resources.clone(),
        });
        let app = Router::new()
            .route(TOKEN_PATH, get(token))
            .route(
                "/.well-known/openid-configuration",
                get(|State(i): State<Arc<Identity>>| async move { Json(i.issuer.discovery()) }),
            )
            .route(
                "/jwks",
                get(|State(i): State<Arc<Identity>>| async move { Json(i.issuer.jwks().clone()) }),
            )
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            endpoint: format!("{url}{TOKEN_PATH}"),
            url,
            issuer,
            resources,
            task,
        })
    }

    /// An access token of the identity for `audience`, as the endpoint issues them.
    pub fn mint(&self, audience: &str) -> anyhow::Result<String> {
        Ok(self
            .issuer
            .issue_claims(&claims(self.issuer.issuer(), audience))?
            .expose_secret()
            .to_string())
    }

    /// The resources it issued tokens for, in order.
    pub fn resources(&self) -> Vec<String> {
        self.resources.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl std::fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for ManagedIdentity {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn claims(issuer: &str, audience: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({
        "iss": issuer,
        "aud": audience,
        "sub": "6f0f7c3e-0000-4000-8000-00000000p0sv",
        "oid": "6f0f7c3e-0000-4000-8000-00000000p0sv",
        "appid": "11111111-2222-3333-4444-555555555555",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    })
}

async fn token(
    State(i): State<Arc<Identity>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let secret = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if secret != Some(i.header.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-IDENTITY-HEADER",
        )
            .into_response();
    }
    let (Some(resource), Some("2019-08-01")) = (
        q.get("resource").filter(|r| !r.is_empty()),
        q.get("api-version").map(String::as_str),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "resource and api-version=2019-08-01 required",
        )
            .into_response();
    };
    if let Ok(mut r) = i.resources.lock() {
        r.push(resource.clone());
    }
    let now = chrono::Utc::now().timestamp();
    match i.issuer.issue_claims(&claims(i.issuer.issuer(), resource)) {
        Ok(t) => Json(serde_json::json!({
            "access_token": t.expose_secret(),
            "expires_on": (now + 3600).to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": "11111111-2222-3333-4444-555555555555",
        }))
        .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// App Service authentication in front of a Functions app: every request but those to
/// `excluded` paths carries a valid Entra token for `audience` (`Return401` otherwise).
pub struct EasyAuth {
    verifier: JwksVerifier,
    excluded: Vec<String>,
}

impl EasyAuth {
    /// Tokens of `issuer` for `audience`; `excluded` paths are let through unauthenticated.
    pub fn new(issuer: &str, audience: &str, excluded: &[&str]) -> anyhow::Result<Self> {
        Ok(Self {
            verifier: JwksVerifier::new(issuer, audience)?,
            excluded: excluded.iter().map(|p| p.to_string()).collect(),
        })
    }

    /// Whether a request to `path` with these headers gets through.
    pub async fn admits(&self, path: &str, headers: &HeaderMap) -> bool {
        if self.excluded.iter().any(|p| p == path) {
            return true;
        }
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.verifier
            .verify(&Token::new(token.to_string()))
            .await
            .is_ok()
    }
}

impl std::fmt::Debug for EasyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EasyAuth").finish_non_exhaustive()
    }
}
