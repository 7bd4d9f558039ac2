//! The server API as the CLI uses it, and the request flow shared by `request`, `psql`,
//! `exec` and `demo`.

use anyhow::{anyhow, bail};
use p0_core::api::{ApiError, CreateRequest, GrantView, RequestStatus, RequestView};
use p0_core::{proof, Intent, RequestId, ResourceId, SecretBytes, SignedRequest, Token};
use reqwest::header::HeaderValue;
use serde::de::DeserializeOwned;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// A logged-in client. Every call carries the ID token and a fresh proof of possession of the
/// key the token commits to ([`p0_core::proof`]): the token alone is not enough at the server.
pub struct Client {
    base: String,
    token: Token,
    key: SecretBytes,
    key_header: String,
    http: reqwest::Client,
}

/// How a request ended, as far as the CLI waited.
#[derive(Debug)]
pub enum Outcome {
    /// Credentials exist.
    Granted(RequestView, GrantView),
    /// Refused.
    Denied(RequestView),
    /// Still waiting (with `--no-wait`, or after the timeout).
    Waiting(RequestView),
    /// Provisioning failed, or the request ended otherwise.
    Failed(RequestView),
}

impl Client {
    /// The server's URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A client for `base` with `token`, proving each call with `key` (PKCS#8) whose public
    /// half `public_key` (PEM) the token's nonce commits to.
    pub fn new(
        base: &str,
        token: Token,
        key: &SecretBytes,
        public_key: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').into(),
            token,
            key: SecretBytes::new(key.expose_secret().to_vec()),
            key_header: proof::key_header(public_key.as_bytes())?,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
        })
    }

    /// Sends a call with the token, the key and a proof over exactly what is sent: method,
    /// path and query as they go on the wire, body and token.
    async fn send<T: DeserializeOwned>(&self, rb: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let token = self.token.expose_secret();
        let mut req = rb.bearer_auth(token).build()?;
        let url = req.url();
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let body = req.body().and_then(|b| b.as_bytes()).unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        let signed = proof::sign(&self.key, req.method().as_str(), &path, body, token, now)?;
        let headers = req.headers_mut();
        headers.insert(proof::KEY_HEADER, HeaderValue::from_str(&self.key_header)?);
        headers.insert(proof::PROOF_HEADER, HeaderValue::from_str(&signed)?);
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| anyhow!(Unreachable(e.without_url().to_string())))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp.json().await?);
        }
        // A proxy's answer while the server restarts: try again later.
        if matches!(status.as_u16(), 502..=504)
            && !resp
                .headers()
                .get("content-type")
                .is_some_and(|v| v.to_str().is_ok_and(|t| t.starts_with("application/json")))
        {
            return Err(anyhow!(Unreachable(format!("HTTP {status}"))));
        }
        let id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut e: ApiError = resp.json().await.unwrap_or(ApiError {
            code: "internal".into(),
            message: format!("HTTP {status}"),
        });
        // Where the server keeps the reason to itself, its log has it under this call's id.
        if let (Some(id), "unauthenticated" | "internal" | "unavailable") = (id, e.code.as_str()) {
            e.message = format!(
                "{}; the server's log has the reason under request id {id}",
                e.message
            );
        }
        Err(anyhow!(ApiFailure(e)))
    }

    /// GET a path.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// POST JSON to a path.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// Signs and sends request `request_id`, then waits (up to `timeout`, when `wait`) for its
    /// outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn request(
        &self,
        request_id: RequestId,
        reuse: bool,
        key: &SecretBytes,
        public_key: &str,
        resource: &ResourceId,
        intent: Intent,
        reason: &str,
        duration: Duration,
        wait: bool,
        timeout: Duration,
    ) -> anyhow::Result<Outcome> {
        let signed = SignedRequest {
            request_id,
            resource: resource.clone(),
            intent,
            reason: reason.into(),
            duration_secs: duration.as_secs(),
            issued_at: chrono::Utc::now().timestamp(),
        };
        let signature = signed.sign(key)?;
        let body = serde_json::to_value(CreateRequest {
            signed,
            signature,
            public_key: public_key.into(),
        })?;
        // With `reuse`, the server may answer with a live lease of ours that covers the query.
        let path = if reuse {
            "/v1/requests?reuse=true"
        } else {
            "/v1/requests"
        };
        let view: RequestView = self.post(path, &body).await?;
        self.follow(view, wait, timeout).await
    }

    /// Picks up an existing request (after `--no-wait`): waits for it like a new one. Polling
    /// as the requester is also what lets the server provision an approved request.
    pub async fn resume(&self, id: &str, wait: bool, timeout: Duration) -> anyhow::Result<Outcome> {
        let id = RequestId::new(id.to_string())?;
        let view: RequestView = self.get(&format!("/v1/requests/{id}")).await?;
        self.follow(view, wait, timeout).await
    }

    async fn follow(
        &self,
        mut view: RequestView,
        wait: bool,
        timeout: Duration,
    ) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        if view.status == RequestStatus::PendingApproval {
            crate::note!(
                "p0: request {} waits for approval (`p0 approve {}`)",
                view.id,
                view.id
            );
        }
        // The spinner only on a terminal, and not under -q; elsewhere a line every 30 s.
        let tty = std::io::stderr().is_terminal() && crate::command::noisy();
        let spinner = if tty && wait && !view.status.is_final() {
            let s = indicatif::ProgressBar::new_spinner().with_message(waiting_for(&view));
            s.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            s.enable_steady_tick(Duration::from_millis(100));
            s
        } else {
            indicatif::ProgressBar::hidden()
        };
        // A note while the spinner turns: the spinner steps aside for it.
        let say = |line: String| spinner.suspend(|| crate::note!("{line}"));
        let id = view.id.clone();
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        let mut outage: Option<Duration> = None;
        let mut said = Instant::now();
        while wait && !view.status.is_final() && started.elapsed() < timeout {
            if !tty && said.elapsed() >= Duration::from_secs(30) {
                crate::note!(
                    "p0: request {id} still {} ({}s)",
                    waiting_for(&view),
                    started.elapsed().as_secs()
                );
                said = Instant::now();
            }
            spinner.set_message(waiting_for(&view));
            // The server holds the call until the request moves, at most 20 s, never past
            // the timeout.
            let left = timeout
                .saturating_sub(started.elapsed())
                .as_secs()
                .clamp(1, 20);
            let path = format!("/v1/requests/{id}?wait={left}");
            let poll = self.get::<RequestView>(&path);
            let polled = tokio::select! {
                p = poll => p,
                _ = &mut stop => {
                    spinner.finish_and_clear();
                    bail!("stopped waiting for request {id}: pick it up later with `--resume {id}` (p0 request, psql, mysql or exec)");
                }
            };
            match polled {
                Ok(v) => {
                    if outage.take().is_some() {
                        say("p0: the server answers again".into());
                    }
                    view = v;
                }
                // A server restarting (or a replica going away) is waited for, with backoff,
                // until the timeout.
                Err(e) if e.downcast_ref::<Unreachable>().is_some() => {
                    let pause = match outage {
                        None => {
                            say(format!("p0: {e}; trying again until the timeout (Ctrl-C stops; `--resume {id}` picks it up later)"));
                            Duration::from_secs(1)
                        }
                        Some(p) => (p * 2).min(Duration::from_secs(10)),
                    };
                    outage = Some(pause);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = &mut stop => {
                            spinner.finish_and_clear();
                            bail!("stopped waiting for request {id}: pick it up later with `--resume {id}` (p0 request, psql, mysql or exec)");
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        spinner.finish_and_clear();
        Ok(match view.status {
            RequestStatus::Active => match view.grant.clone() {
                Some(g) => Outcome::Granted(view, g),
                None => Outcome::Failed(view),
            },
            RequestStatus::Denied => Outcome::Denied(view),
            RequestStatus::PendingApproval | RequestStatus::Provisioning => Outcome::Waiting(view),
            _ => Outcome::Failed(view),
        })
    }
}

/// The server could not be reached (or a proxy in front of it answered for it): a wait may
/// try again.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reach the p0 server: {}", self.0)
    }
}

impl std::error::Error for Unreachable {}

/// An error answered by the server, with its code.
#[derive(Debug)]
pub struct ApiFailure(pub ApiError);

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0.message, self.0.code)
    }
}

impl std::error::Error for ApiFailure {}

/// The exit code for an outcome that is not a grant.
pub fn not_granted(outcome: &Outcome) -> anyhow::Result<std::process::ExitCode> {
    match outcome {
        Outcome::Granted(..) => Ok(std::process::ExitCode::SUCCESS),
        Outcome::Denied(v) => {
            eprintln!(
                "p0: denied: {}",
                p0_core::api::printable_line(v.message.as_deref().unwrap_or("no reason given"))
            );
            Ok(std::process::ExitCode::from(2))
        }
        Outcome::Waiting(v) => {
            eprintln!(
                "p0: request {} still {}: pick it up later with `--resume {}`",
                v.id,
                waiting_for(v),
                v.id
            );
            Ok(std::process::ExitCode::from(4))
        }
        Outcome::Failed(v) => bail!(
            "request {} {}: {}",
            v.id,
            v.status.as_str(),
            v.message.as_deref().unwrap_or("")
        ),
    }
}

/// What a request that is not final waits for, in words.
fn waiting_for(v: &RequestView) -> &'static str {
    match v.status {
        RequestStatus::Provisioning => "waits for its database user (the agent may be unreachable)",
        _ => "waits for approval",
    }
}
