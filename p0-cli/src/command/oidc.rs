//! OIDC login with `openidconnect`: authorization code + PKCE on a loopback redirect, or the
//! device authorization grant (RFC 8628) when the issuer advertises it and `--device` is given.
//! The ID token is verified here as well as by the server (signature against the issuer's
//! keys, issuer, audience, expiry), and its nonce must commit to the CLI's fresh public key.
//! Refresh before expiry, with the same checks and the same subject.

use crate::session::Session;
use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreGrantType, CoreIdToken,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, ProviderMetadata, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardErrorResponse, TokenResponse,
};
use p0_core::api::printable_line;
use p0_core::seal::key_fingerprint;
use p0_core::Token;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// What the CLI keeps to refresh its token (file `oidc.json`, mode 0600).
#[derive(Serialize, Deserialize)]
pub struct OidcState {
    issuer: String,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_auth: ClientAuth,
    refresh_token: Option<String>,
}

impl std::fmt::Debug for OidcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "[redacted]");
        f.debug_struct("OidcState")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("client_auth", &self.client_auth)
            .field("refresh_token", &redacted(&self.refresh_token))
            .finish()
    }
}

/// How a confidential client authenticates at the token endpoint (RFC 6749 §2.3.1). A public
/// client (no secret, the usual CLI) sends its `client_id` and relies on PKCE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic: the default of OIDC Discovery when the issuer lists no methods.
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

impl ClientAuth {
    /// The method the issuer advertises, preferring Basic as the specifications do.
    fn negotiate(methods: Option<&Vec<CoreClientAuthMethod>>) -> anyhow::Result<Self> {
        let Some(methods) = methods else {
            return Ok(Self::ClientSecretBasic);
        };
        if methods.contains(&CoreClientAuthMethod::ClientSecretBasic) {
            Ok(Self::ClientSecretBasic)
        } else if methods.contains(&CoreClientAuthMethod::ClientSecretPost) {
            Ok(Self::ClientSecretPost)
        } else {
            bail!("the issuer supports neither client_secret_basic nor client_secret_post for a client secret")
        }
    }

    fn auth_type(self) -> AuthType {
        match self {
            Self::ClientSecretBasic => AuthType::BasicAuth,
            Self::ClientSecretPost => AuthType::RequestBody,
        }
    }
}

/// The one field of the discovery document that `openidconnect`'s core metadata leaves out.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    #[serde(default)]
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The issuer as this CLI's client, as discovery describes it.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// An HTTP client for the issuer. Its answers are followed by nobody: a redirect is an error.
fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// The issuer's discovery document and keys.
async fn discover(http: &reqwest::Client, issuer: &str) -> anyhow::Result<Metadata> {
    let url = IssuerUrl::new(issuer.to_string())
        .map_err(|e| anyhow!("issuer `{issuer}` is not a URL: {e}"))?;
    Metadata::discover_async(url, http)
        .await
        .map_err(|e| anyhow!("cannot use the identity issuer `{issuer}`: {}", chain(&e)))
}

/// The client the discovery document describes, authenticated as `auth` says.
fn client(m: Metadata, id: &str, secret: Option<&str>, auth: ClientAuth) -> Client {
    CoreClient::from_provider_metadata(
        m,
        ClientId::new(id.into()),
        secret.map(|s| ClientSecret::new(s.into())),
    )
    .set_auth_type(auth.auth_type())
}

/// A token endpoint's refusal or failure, in one line naming the issuer's error code.
fn refused<RE, T>(what: &str, e: RequestTokenError<RE, StandardErrorResponse<T>>) -> anyhow::Error
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponseType + std::fmt::Display + 'static,
{
    match e {
        RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) if !d.is_empty() => anyhow!("{what}: {} ({d})", r.error()),
            _ => anyhow!("{what}: {}", r.error()),
        },
        other => anyhow!("{what}: {}", chain(&other)),
    }
}

/// Logs in; saves key, token, server and refresh state in `session`.
pub async fn login(
    session: &Session,
    server: &str,
    issuer: &str,
    client_id: &str,
    client_secret: Option<&str>,
    device: bool,
) -> anyhow::Result<Token> {
    let http = http()?;
    let m = discover(&http, issuer).await?;
    let auth = ClientAuth::negotiate(m.token_endpoint_auth_methods_supported())?;
    let device_endpoint = m
        .additional_metadata()
        .device_authorization_endpoint
        .clone();
    let client = client(m, client_id, client_secret, auth);
    let kp = session.new_key()?;
    let nonce = key_fingerprint(kp.public_pem.as_bytes())?;
    let tokens = match (device, device_endpoint) {
        (true, Some(dev)) => device_flow(&http, &client, dev, &nonce).await?,
        (true, None) => bail!("the issuer does not advertise the device authorization grant"),
        (false, _) => pkce_flow(&http, &client, &nonce).await?,
    };
    let id_token = tokens
        .id_token()
        .ok_or_else(|| anyhow!("the issuer returned no ID token"))?;
    verify(&client, id_token, |found| {
        match found {
        Some(n) if n.secret() == &nonce => Ok(()),
        Some(_) => Err("the ID token does not commit to this CLI's key (nonce mismatch)".into()),
        // RFC 8628 defines no nonce, and some issuers drop it from device-grant ID tokens:
        // without it the token cannot be bound to the key, so nothing is saved.
        None if device => Err(
            "the issuer's device grant returned an ID token without the nonce, so it cannot \
             commit to this CLI's key: log in with the browser flow (without --device)"
                .into(),
        ),
        None => Err("the issuer returned an ID token without the nonce, so it cannot commit to this CLI's key".into()),
    }
    })?;
    let token = Token::new(id_token.to_string());
    session.save_login(server, &token, &kp)?;
    session.save_json(
        "oidc.json",
        &OidcState {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: client_secret.map(String::from),
            client_auth: auth,
            refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        },
    )?;
    Ok(token)
}

/// Checks an ID token as `openidconnect` does (signature, issuer, audience, expiry) and its
/// nonce as `nonce` says; the nonce's own message comes through as it is.
fn verify(
    client: &Client,
    id_token: &CoreIdToken,
    nonce: impl FnOnce(Option<&Nonce>) -> Result<(), String>,
) -> anyhow::Result<()> {
    match id_token.claims(&client.id_token_verifier(), nonce) {
        Ok(_) => Ok(()),
        Err(openidconnect::ClaimsVerificationError::InvalidNonce(why)) => Err(anyhow!(why)),
        Err(e) => Err(anyhow!(
            "the issuer's ID token does not verify: {}",
            chain(&e)
        )),
    }
}

type Tokens = openidconnect::core::CoreTokenResponse;

async fn pkce_flow(http: &reqwest::Client, client: &Client, nonce: &str) -> anyhow::Result<Tokens> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let client = client
        .clone()
        .set_redirect_uri(RedirectUrl::new(redirect).context("the loopback redirect")?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = Nonce::new(nonce.to_string());
    let (url, state, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            move || nonce,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    eprintln!("p0: to log in, open this URL in a browser:\n{url}");
    // The platform's own way of opening a page (xdg-open, open, start): the URL above stays
    // the way in when there is no browser here.
    if std::env::var_os("P0_NO_BROWSER").is_none() {
        let _ = webbrowser::open(url.as_str());
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<HashMap<String, String>>();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    // Only a callback with this login's state ends the wait: another local process or page
    // that calls the port first is answered 400 and cannot abort the login.
    let expected = state.secret().clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let (tx, expected) = (tx.clone(), expected.clone());
                async move {
                    use axum::response::IntoResponse;
                    if q.get("state") != Some(&expected) {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            "p0: not the login this CLI started",
                        )
                            .into_response();
                    }
                    if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                        let _ = tx.send(q);
                    }
                    axum::response::Html("<p>p0: logged in. You can close this tab.</p>")
                        .into_response()
                }
            },
        ),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let params = tokio::time::timeout(Duration::from_secs(300), rx)
        .await
        .map_err(|_| anyhow!("login timed out"))??;
    server.abort();
    if let Some(e) = params.get("error") {
        bail!("the issuer refused the login: {e}");
    }
    if params.get("state") != Some(state.secret()) {
        bail!("login callback with a wrong state");
    }
    let code = params
        .get("code")
        .ok_or_else(|| anyhow!("login callback without a code"))?;
    client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(|_| anyhow!("the issuer does not advertise `token_endpoint`"))?
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .map_err(|e| refused("the issuer refused the login", e))
}

async fn device_flow(
    http: &reqwest::Client,
    client: &Client,
    endpoint: DeviceAuthorizationUrl,
    nonce: &str,
) -> anyhow::Result<Tokens> {
    let client = client.clone().set_device_authorization_url(endpoint);
    let start: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_extra_param("nonce", nonce)
        .request_async(http)
        .await
        .map_err(|e| refused("the issuer refused the device login", e))?;
    let uri = match start.verification_uri_complete() {
        Some(complete) => complete.secret().clone(),
        None => start.verification_uri().to_string(),
    };
    // The issuer's text, shown and not obeyed.
    eprintln!(
        "p0: open {} and enter the code {}",
        printable_line(&uri),
        printable_line(start.user_code().secret())
    );
    client
        .exchange_device_access_token(&start)
        .map_err(|_| anyhow!("the issuer does not advertise `token_endpoint`"))?
        .request_async(http, tokio::time::sleep, None)
        .await
        .map_err(|e| refused("the issuer refused the device login", e))
}

/// An unverified claim of a JWT (the CLI reads its own token; the server verifies).
pub fn claim(token: &str, name: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let v: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    match &v[name] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Refreshes the ID token when it expires within a minute and a refresh token is kept. The
/// refreshed token must verify, come from the same issuer, name the same subject, and still
/// commit to this CLI's key; otherwise the user logs in again.
pub async fn refresh_if_needed(session: &Session) -> anyhow::Result<()> {
    let Ok((server, token, _, public)) = session.load() else {
        return Ok(());
    };
    let old = token.expose_secret();
    let exp: i64 = claim(old, "exp")
        .and_then(|e| e.parse().ok())
        .unwrap_or(i64::MAX);
    if exp - chrono::Utc::now().timestamp() > 60 {
        return Ok(());
    }
    let Ok(state) = session.load_json::<OidcState>("oidc.json") else {
        return Ok(());
    };
    let Some(refresh) = state.refresh_token.clone().map(RefreshToken::new) else {
        return Ok(());
    };
    let http = http()?;
    let m = discover(&http, &state.issuer).await?;
    let client = client(
        m,
        &state.client_id,
        state.client_secret.as_deref(),
        state.client_auth,
    );
    let t = client
        .exchange_refresh_token(&refresh)
        .map_err(|_| anyhow!("the issuer does not advertise `token_endpoint`"))?
        .request_async(&http)
        .await
        .map_err(|e| {
            refused("your login expired and the issuer refused to renew it", e)
                .context("run `p0 login` again")
        })?;
    // The refresh token may have rotated: keep the new one whatever follows.
    let state = OidcState {
        refresh_token: t
            .refresh_token()
            .map(|r| r.secret().clone())
            .or(state.refresh_token),
        ..state
    };
    session.save_json("oidc.json", &state)?;
    let Some(id_token) = t.id_token() else {
        bail!("your login expired and the issuer's refresh returned no new ID token: run `p0 login` again");
    };
    let key = key_fingerprint(public.as_bytes())?;
    verify(&client, id_token, |found| match found {
        Some(n) if n.secret() == &key => Ok(()),
        _ => Err(
            "the refreshed token does not commit to this CLI's key: run `p0 login` again".into(),
        ),
    })?;
    let id_token = id_token.to_string();
    for c in ["iss", "sub"] {
        if claim(&id_token, c) != claim(old, c) {
            bail!("the refreshed token names another {c}: run `p0 login` again");
        }
    }
    session.save_token(&server, &Token::new(id_token))?;
    Ok(())
}
