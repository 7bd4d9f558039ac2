//! OIDC login: authorization code + PKCE on a loopback redirect, or the device authorization
//! grant when the issuer advertises it and `--device` is given. The ID token's nonce commits to
//! the CLI's fresh public key. Refresh before expiry.

use crate::session::Session;
use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p0_core::seal::key_fingerprint;
use p0_core::{Password, RequestId, Token};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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
    token_endpoint: String,
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
            .field("token_endpoint", &self.token_endpoint)
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
    fn negotiate(discovery: &serde_json::Value) -> anyhow::Result<Self> {
        let Some(methods) = discovery["token_endpoint_auth_methods_supported"].as_array() else {
            return Ok(Self::ClientSecretBasic);
        };
        let has = |m: &str| methods.iter().any(|v| v.as_str() == Some(m));
        if has("client_secret_basic") {
            Ok(Self::ClientSecretBasic)
        } else if has("client_secret_post") {
            Ok(Self::ClientSecretPost)
        } else {
            bail!("the issuer supports neither client_secret_basic nor client_secret_post for a client secret")
        }
    }
}

/// The client's credentials for token endpoint calls.
#[derive(Clone, Copy)]
struct ClientCreds<'a> {
    id: &'a str,
    secret: Option<&'a str>,
    auth: ClientAuth,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    refresh_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn discover(http: &reqwest::Client, issuer: &str) -> anyhow::Result<serde_json::Value> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    http.get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| anyhow!("cannot reach the identity issuer: {}", e.without_url()))?
        .json()
        .await
        .context("invalid discovery document")
}

fn endpoint<'a>(d: &'a serde_json::Value, name: &str) -> anyhow::Result<&'a str> {
    d[name]
        .as_str()
        .ok_or_else(|| anyhow!("the issuer does not advertise `{name}`"))
}

/// A token endpoint call, authenticated as `client` says. The response's error, if any, is
/// left to the caller: the device grant polls through `authorization_pending`.
async fn token_request(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    client: ClientCreds<'_>,
) -> anyhow::Result<TokenResponse> {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = http.post(url);
    match (client.secret, client.auth) {
        (None, _) => form.push(("client_id", client.id)),
        (Some(s), ClientAuth::ClientSecretPost) => {
            form.push(("client_id", client.id));
            form.push(("client_secret", s));
        }
        (Some(s), ClientAuth::ClientSecretBasic) => {
            // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(client.id), Some(enc(s)));
        }
    }
    let resp = req
        .form(&form)
        .send()
        .await
        .map_err(|e| anyhow!("token endpoint: {}", e.without_url()))?;
    resp.json().await.context("invalid token response")
}

fn refused(what: &str, t: &TokenResponse) -> anyhow::Error {
    let e = t.error.as_deref().unwrap_or("no error code");
    match t.error_description.as_deref() {
        Some(d) if !d.is_empty() => anyhow!("{what}: {e} ({d})"),
        _ => anyhow!("{what}: {e}"),
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let d = discover(&http, issuer).await?;
    let token_endpoint = endpoint(&d, "token_endpoint")?.to_string();
    let client = ClientCreds {
        id: client_id,
        secret: client_secret,
        auth: ClientAuth::negotiate(&d)?,
    };
    let kp = session.new_key()?;
    let nonce = key_fingerprint(kp.public_pem.as_bytes())?;
    let tokens = match (device, d["device_authorization_endpoint"].as_str()) {
        (true, Some(dev)) => device_flow(&http, dev, &token_endpoint, client, &nonce).await?,
        (true, None) => bail!("the issuer does not advertise the device authorization grant"),
        (false, _) => {
            let authorize = endpoint(&d, "authorization_endpoint")?;
            pkce_flow(&http, authorize, &token_endpoint, client, &nonce).await?
        }
    };
    let id_token = tokens
        .id_token
        .ok_or_else(|| anyhow!("the issuer returned no ID token"))?;
    match claim(&id_token, "nonce") {
        Some(n) if n == nonce => {}
        Some(_) => bail!("the ID token does not commit to this CLI's key (nonce mismatch)"),
        // RFC 8628 defines no nonce, and some issuers drop it from device-grant ID tokens:
        // without it the token cannot be bound to the key, so nothing is saved.
        None if device => bail!(
            "the issuer's device grant returned an ID token without the nonce, so it cannot \
             commit to this CLI's key: log in with the browser flow (without --device)"
        ),
        None => bail!("the issuer returned an ID token without the nonce, so it cannot commit to this CLI's key"),
    }
    let token = Token::new(id_token);
    session.save_login(server, &token, &kp)?;
    session.save_json(
        "oidc.json",
        &OidcState {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: client_secret.map(String::from),
            client_auth: client.auth,
            token_endpoint,
            refresh_token: tokens.refresh_token,
        },
    )?;
    Ok(token)
}

async fn pkce_flow(
    http: &reqwest::Client,
    authorize: &str,
    token_endpoint: &str,
    client: ClientCreds<'_>,
    nonce: &str,
) -> anyhow::Result<TokenResponse> {
    let verifier = Password::generate();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()));
    let state = RequestId::generate().to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let url = reqwest::Url::parse_with_params(
        authorize,
        &[
            ("response_type", "code"),
            ("client_id", client.id),
            ("redirect_uri", &redirect),
            ("scope", "openid email profile"),
            ("state", &state),
            ("nonce", nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )?;
    eprintln!("p0: to log in, open this URL in a browser:\n{url}");
    // The platform's own way of opening a page (xdg-open, open, start): the URL above stays
    // the way in when there is no browser here.
    if std::env::var_os("P0_NO_BROWSER").is_none() {
        let _ = webbrowser::open(url.as_str());
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<HashMap<String, String>>();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                        let _ = tx.send(q);
                    }
                    axum::response::Html("<p>p0: logged in. You can close this tab.</p>")
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
    if params.get("state") != Some(&state) {
        bail!("login callback with a wrong state");
    }
    let code = params
        .get("code")
        .ok_or_else(|| anyhow!("login callback without a code"))?;
    let t = token_request(
        http,
        token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", verifier.expose_secret()),
        ],
        client,
    )
    .await?;
    if t.error.is_some() {
        return Err(refused("the issuer refused the login", &t));
    }
    Ok(t)
}

async fn device_flow(
    http: &reqwest::Client,
    device_endpoint: &str,
    token_endpoint: &str,
    client: ClientCreds<'_>,
    nonce: &str,
) -> anyhow::Result<TokenResponse> {
    let start: serde_json::Value = http
        .post(device_endpoint)
        .form(&[
            ("client_id", client.id),
            ("scope", "openid email profile"),
            ("nonce", nonce),
        ])
        .send()
        .await
        .map_err(|e| anyhow!("device authorization: {}", e.without_url()))?
        .json()
        .await?;
    let device_code = start["device_code"]
        .as_str()
        .ok_or_else(|| anyhow!("no device_code"))?;
    let uri = start["verification_uri_complete"]
        .as_str()
        .or(start["verification_uri"].as_str())
        .unwrap_or("");
    eprintln!(
        "p0: open {uri} and enter the code {}",
        start["user_code"].as_str().unwrap_or("")
    );
    let mut interval = start["interval"].as_u64().unwrap_or(5);
    let deadline = std::time::Instant::now()
        + Duration::from_secs(start["expires_in"].as_u64().unwrap_or(600));
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let t = token_request(
            http,
            token_endpoint,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code),
            ],
            client,
        )
        .await?;
        match t.error.as_deref() {
            None => return Ok(t),
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            Some(_) => return Err(refused("the issuer refused the device login", &t)),
        }
    }
    bail!("device login timed out")
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
/// refreshed token must come from the same issuer, for the same subject, and still commit to
/// this CLI's key; otherwise the user logs in again.
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
    let Some(refresh) = state.refresh_token.as_deref() else {
        return Ok(());
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let client = ClientCreds {
        id: &state.client_id,
        secret: state.client_secret.as_deref(),
        auth: state.client_auth,
    };
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let t = token_request(&http, &state.token_endpoint, &form, client).await?;
    if t.error.is_some() {
        let e = refused("your login expired and the issuer refused to renew it", &t);
        return Err(e.context("run `p0 login` again"));
    }
    // The refresh token may have rotated: keep the new one whatever follows.
    let state = OidcState {
        refresh_token: t.refresh_token.or(state.refresh_token),
        ..state
    };
    session.save_json("oidc.json", &state)?;
    let Some(id_token) = t.id_token else {
        bail!("your login expired and the issuer's refresh returned no new ID token: run `p0 login` again");
    };
    for c in ["iss", "sub"] {
        if claim(&id_token, c) != claim(old, c) {
            bail!("the refreshed token names another {c}: run `p0 login` again");
        }
    }
    if claim(&id_token, "nonce") != Some(key_fingerprint(public.as_bytes())?) {
        bail!("the refreshed token does not commit to this CLI's key: run `p0 login` again");
    }
    session.save_token(&server, &Token::new(id_token))?;
    Ok(())
}
