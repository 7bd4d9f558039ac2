//! A stand-in for Slack's Web API on loopback: `chat.postMessage` (the bot token checked,
//! messages kept), `users.info` (a fixed directory of users), and `response_url`s that keep
//! what they are sent. [`sign`] signs an interaction as Slack does.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// One user of the stand-in's workspace: id, e-mail, whether Slack confirmed it.
pub type SlackUser = (&'static str, &'static str, bool);

/// The stand-in.
pub struct SlackApi {
    /// The Web API's base (`http://127.0.0.1:PORT/api`), the server's `slack.api_url`.
    pub url: String,
    base: String,
    messages: Arc<Mutex<Vec<Value>>>,
    responses: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

struct Api {
    token: String,
    users: Vec<SlackUser>,
    messages: Arc<Mutex<Vec<Value>>>,
    responses: Arc<Mutex<Vec<Value>>>,
}

impl SlackApi {
    /// Starts it, accepting `token` as the bot token, with `users` in its directory.
    pub async fn start(token: &str, users: &[SlackUser]) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let responses = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Api {
            token: token.to_string(),
            users: users.to_vec(),
            messages: messages.clone(),
            responses: responses.clone(),
        });
        let app = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/users.info", get(users_info))
            .route("/response/{n}", post(response))
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("{base}/api"),
            base,
            messages,
            responses,
            task,
        })
    }

    /// The messages posted, in order.
    pub fn messages(&self) -> Vec<Value> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// What the response URLs were sent, in order.
    pub fn responses(&self) -> Vec<Value> {
        self.responses.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// A response URL of the stand-in, as Slack puts one in an interaction.
    pub fn response_url(&self, n: u32) -> String {
        format!("{}/response/{n}", self.base)
    }
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for SlackApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn authorized(api: &Api, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(api.token.as_str())
}

async fn post_message(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    if !authorized(&api, &headers) {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let channel = body["channel"].clone();
    if let Ok(mut m) = api.messages.lock() {
        m.push(body);
    }
    Json(json!({"ok": true, "channel": channel, "ts": "1700000000.000100"}))
}

async fn users_info(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    if !authorized(&api, &headers) {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let id = q.get("user").cloned().unwrap_or_default();
    match api.users.iter().find(|u| u.0 == id) {
        Some((id, email, confirmed)) => Json(json!({"ok": true, "user": {
            "id": id, "deleted": false, "is_bot": false, "is_email_confirmed": confirmed,
            "profile": { "email": email },
        }})),
        None => Json(json!({"ok": false, "error": "user_not_found"})),
    }
}

async fn response(
    State(api): State<Arc<Api>>,
    Path(_n): Path<u32>,
    Json(body): Json<Value>,
) -> Json<Value> {
    if let Ok(mut r) = api.responses.lock() {
        r.push(body);
    }
    Json(json!({"ok": true}))
}

/// Slack's signature of `body` sent at `ts` (`x-slack-signature`).
pub fn sign(secret: &str, ts: i64, body: &str) -> String {
    // HMAC takes a key of any length: the error cannot happen.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}
