//! Signing in to the console with the server's own OIDC issuer: the authorization code flow
//! with PKCE (S256), a `state` and a nonce, run on the server side with `openidconnect`. The
//! ID token it returns is checked twice: by `openidconnect` (signature, issuer, audience,
//! nonce) and by the server's own verifier, so the console's approver is named and grouped
//! exactly as the API names and groups the same person.

use super::session::{random_token, LoginFlow, Session, LOGIN_MINUTES, SESSION_HOURS};
use super::{page_error, Console};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::Mutex;

/// How long the issuer's discovery document and keys are kept.
const METADATA_TTL_SECS: i64 = 3600;

/// The issuer as the console's OIDC client.
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    redirect: String,
    http: reqwest::Client,
    metadata: Mutex<Option<(i64, CoreProviderMetadata)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// A client of `issuer` as `client_id`, returning to `redirect`.
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: Option<String>,
        redirect: String,
    ) -> anyhow::Result<Self> {
        RedirectUrl::new(redirect.clone())
            .map_err(|e| anyhow::anyhow!("console redirect URL `{redirect}`: {e}"))?;
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret,
            redirect,
            // The issuer's answers are followed by nobody: a redirect there is an error.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
            metadata: Mutex::new(None),
        })
    }

    /// The issuer's discovery document and keys, fetched at most once an hour.
    async fn metadata(&self) -> Result<CoreProviderMetadata, String> {
        let now = chrono::Utc::now().timestamp();
        let mut cached = self.metadata.lock().await;
        if let Some((at, m)) = cached.as_ref() {
            if now - at < METADATA_TTL_SECS {
                return Ok(m.clone());
            }
        }
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| e.to_string())?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                tracing::error!(issuer = %self.issuer, error = %e, "console: OIDC discovery failed");
                format!("the identity issuer `{}` cannot be reached", self.issuer)
            })?;
        *cached = Some((now, m.clone()));
        Ok(m)
    }

    /// Where to send the browser to sign in, and what the callback must find again.
    async fn begin(&self, next: String) -> Result<(String, LoginFlow), String> {
        let client = CoreClient::from_provider_metadata(
            self.metadata().await?,
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect.clone()).map_err(|e| e.to_string())?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let flow = LoginFlow {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next,
            exp: chrono::Utc::now().timestamp() + LOGIN_MINUTES * 60,
        };
        Ok((url.to_string(), flow))
    }

    /// The ID token the code is exchanged for, checked against the flow's nonce.
    async fn finish(&self, code: String, flow: &LoginFlow) -> Result<String, String> {
        let client = CoreClient::from_provider_metadata(
            self.metadata().await?,
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect.clone()).map_err(|e| e.to_string())?);
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "console login: {what}");
            format!("the sign-in could not be completed ({what}); try again")
        };
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| fail("the issuer has no token endpoint", &e))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| fail("the code was refused", &e))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| fail("no ID token", &"the issuer answered without one"))?;
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce.clone()))
            .map_err(|e| fail("the ID token does not verify", &e))?;
        Ok(id_token.to_string())
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// A console path to return to: relative, under `/console`, nothing else.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console")
                && !n.contains("//")
                && !n.contains('\\')
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/console/pending".into(),
    }
}

/// `GET /console/login`: off to the issuer.
pub async fn login(State(state): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Response {
    let Some(console) = state.console.as_deref() else {
        return super::not_configured();
    };
    let begun = console.oidc.begin(safe_next(q.next.as_deref())).await;
    match begun.map(|(url, flow)| (url, console.start_login(&flow))) {
        Ok((url, Some(cookie))) => (
            StatusCode::SEE_OTHER,
            [
                (
                    header::LOCATION,
                    url.parse().unwrap_or(header::HeaderValue::from_static("/")),
                ),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response(),
        Ok((_, None)) => page_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the sign-in could not be started; try again",
        ),
        Err(why) => page_error(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// `GET /console/callback`: the issuer's answer, checked, becomes a session.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    Query(q): Query<Callback>,
    headers: HeaderMap,
) -> Response {
    let Some(console) = state.console.as_deref() else {
        return super::not_configured();
    };
    match sign_in(&state, console, q, &headers).await {
        Ok((session, next)) => {
            tracing::info!(approver = %session.name, "console: signed in");
            let Some(cookie) = console.start_session(&session) else {
                return page_error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "your ID token names {} groups: too many to keep in a browser session; ask for a token with fewer groups",
                        session.groups.len()
                    ),
                );
            };
            let mut r = (
                StatusCode::SEE_OTHER,
                [(
                    header::LOCATION,
                    next.parse()
                        .unwrap_or(header::HeaderValue::from_static("/console")),
                )],
            )
                .into_response();
            r.headers_mut().append(header::SET_COOKIE, cookie);
            r.headers_mut()
                .append(header::SET_COOKIE, console.end_login());
            r
        }
        Err(why) => page_error(StatusCode::UNAUTHORIZED, &why),
    }
}

async fn sign_in(
    state: &AppState,
    console: &Console,
    q: Callback,
    headers: &HeaderMap,
) -> Result<(Session, String), String> {
    if let Some(e) = q.error {
        let e: String = e
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        return Err(format!("the identity issuer refused the sign-in (`{e}`)"));
    }
    let flow = console
        .login_flow(headers)
        .ok_or("this sign-in was not started here, or took too long; start again")?;
    let state_ok = q.state.as_deref().is_some_and(|s| {
        use subtle::ConstantTimeEq;
        s.len() == flow.state.len() && bool::from(s.as_bytes().ct_eq(flow.state.as_bytes()))
    });
    if !state_ok {
        tracing::warn!("console login: state mismatch");
        return Err("this sign-in was not started here; start again".into());
    }
    let code = q.code.ok_or("the issuer sent no code")?;
    let raw = console.oidc.finish(code, &flow).await?;
    let claims = state
        .verifier
        .verify(&p0_core::Token::new(raw))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "console login: the server's verifier refused the ID token");
            "the ID token is not one this server accepts".to_string()
        })?;
    // The session ends with the ID token (the issuer's word on how long this sign-in holds),
    // and after SESSION_HOURS at the latest.
    let exp = (chrono::Utc::now().timestamp() + SESSION_HOURS * 3600).min(claims.exp);
    Ok((
        Session {
            name: claims.principal().to_string(),
            groups: claims.groups.clone(),
            csrf: random_token(),
            exp,
        },
        flow.next,
    ))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn the_page_to_return_to_is_a_console_path_and_nothing_else() {
        assert_eq!(
            safe_next(Some("/console/leases?done=x")),
            "/console/leases?done=x"
        );
        for hostile in [
            None,
            Some("https://evil.example/console"),
            Some("//evil.example/console"),
            Some("/console//evil.example"),
            Some("/console\\evil"),
            Some("/v1/requests"),
            Some("/console/a b"),
            Some("/console/\u{202e}x"),
        ] {
            assert_eq!(safe_next(hostile), "/console/pending", "{hostile:?}");
        }
    }
}
