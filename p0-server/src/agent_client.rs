//! Calls to an agent over HTTP, authenticated with the shared HMAC.

use p0_core::api::{hmac_sign, ApiError, HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// Why a call to the agent failed.
#[derive(Debug)]
pub enum AgentError {
    /// The agent refused (its code and reason).
    Refused(String, String),
    /// The agent could not be reached or failed.
    Unavailable(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::Refused(code, m) => write!(f, "agent refused ({code}): {m}"),
            AgentError::Unavailable(m) => write!(f, "agent unavailable: {m}"),
        }
    }
}

/// One agent.
pub struct AgentClient {
    base: String,
    secret: Vec<u8>,
    http: reqwest::Client,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// A client for the agent at `base`.
    pub fn new(base: &str, secret: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            secret: secret.as_bytes().to_vec(),
            http,
        })
    }

    /// POSTs `body` to `path`.
    pub async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, AgentError> {
        let bytes = serde_json::to_vec(body).map_err(|e| AgentError::Unavailable(e.to_string()))?;
        let ts = chrono::Utc::now().timestamp();
        let sig = hmac_sign(&self.secret, ts, path, &bytes);
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(HMAC_TIME_HEADER, ts.to_string())
            .header(HMAC_SIG_HEADER, sig)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .map_err(|e| AgentError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .map_err(|e| AgentError::Unavailable(e.to_string()));
        }
        let err: ApiError = resp.json().await.unwrap_or(ApiError {
            code: "internal".into(),
            message: format!("status {status}"),
        });
        if status.is_server_error() {
            Err(AgentError::Unavailable(err.message))
        } else {
            Err(AgentError::Refused(err.code, err.message))
        }
    }
}
