//! Approvals from Slack. A request that waits for approval is posted to a channel as an
//! interactive message — who asks, for what, why, for how long, the SQL or role, every
//! privilege and the rule that matched — with Approve and Deny buttons that carry the
//! request's digest, so a click approves exactly what the message showed. Slack posts the
//! click to `/slack/interactions`, which checks Slack's signature (signing secret, five-minute
//! window), maps the clicking user to an approver by their confirmed e-mail (`users.info`),
//! applies the same rules as the API (visibility, no self-approval, the approvers of the
//! rule) and updates the message with the outcome.

mod interactions;
mod message;

pub use interactions::interactions;

use crate::store::RequestRecord;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::collections::HashMap;
use std::time::Duration;

/// How far Slack's request timestamp may be from now, in seconds (Slack's own advice).
const WINDOW_SECS: i64 = 300;

/// The server's `[slack]` section. Its `Debug` leaves the secrets out.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The Slack app's signing secret. Falls back to `P0_SLACK_SIGNING_SECRET`.
    #[serde(default)]
    pub signing_secret: Option<String>,
    /// The app's bot token (`xoxb-…`; scopes `chat:write`, `users:read`,
    /// `users:read.email`). Falls back to `P0_SLACK_BOT_TOKEN`.
    #[serde(default)]
    pub bot_token: Option<String>,
    /// The channel pending requests are posted to (its id, `C…`).
    pub channel: String,
    /// Slack's Web API.
    #[serde(default = "default_api")]
    pub api_url: String,
    /// p0 groups of Slack approvers by e-mail, for rules that name `group:…` approvers
    /// (Slack knows no p0 groups): `dba = ["bob@example.com"]`.
    #[serde(default)]
    pub groups: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("SlackConfig")
            .field("signing_secret", &redacted(&self.signing_secret))
            .field("bot_token", &redacted(&self.bot_token))
            .field("channel", &self.channel)
            .field("api_url", &self.api_url)
            .field("groups", &self.groups)
            .finish()
    }
}

fn default_api() -> String {
    "https://slack.com/api".into()
}

/// The Slack app the server talks to.
pub struct Slack {
    signing_secret: Vec<u8>,
    bot_token: String,
    channel: String,
    api_url: String,
    groups: HashMap<String, Vec<String>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack")
            .field("channel", &self.channel)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Slack {
    /// From the configuration; the secrets from it or the environment.
    pub fn new(c: &SlackConfig) -> anyhow::Result<Self> {
        let from = |v: &Option<String>, key: &str, var: &str| {
            v.clone()
                .or_else(|| std::env::var(var).ok())
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| anyhow::anyhow!("[slack]: no {key} and no {var}"))
        };
        let signing_secret = from(
            &c.signing_secret,
            "signing_secret",
            "P0_SLACK_SIGNING_SECRET",
        )?;
        let bot_token = from(&c.bot_token, "bot_token", "P0_SLACK_BOT_TOKEN")?;
        reqwest::Url::parse(&c.api_url)
            .map_err(|e| anyhow::anyhow!("[slack]: api_url `{}`: {e}", c.api_url))?;
        Ok(Self {
            signing_secret: signing_secret.into_bytes(),
            bot_token,
            channel: c.channel.clone(),
            api_url: c.api_url.trim_end_matches('/').to_string(),
            groups: c.groups.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    /// Whether `body` is Slack's, signed `v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))` within
    /// the window around `now` (compared in constant time).
    pub fn verify(&self, ts: Option<&str>, signature: Option<&str>, body: &[u8], now: i64) -> bool {
        let (Some(ts), Some(signature)) = (ts, signature) else {
            return false;
        };
        let Ok(at) = ts.parse::<i64>() else {
            return false;
        };
        if (now - at).abs() > WINDOW_SECS {
            return false;
        }
        let Some(given) = signature
            .strip_prefix("v0=")
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.signing_secret) else {
            return false;
        };
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    }

    /// The p0 groups `email` is in, by the configuration.
    fn groups_of(&self, email: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, members)| members.iter().any(|m| m.eq_ignore_ascii_case(email)))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Posts the message of a request that waits for approval, without waiting.
    pub fn post_pending(&self, rec: &RequestRecord) {
        let body = serde_json::json!({
            "channel": self.channel,
            "text": crate::shown::pending(rec)["text"],
            "blocks": message::pending(rec),
            "unfurl_links": false,
        });
        self.call_later("chat.postMessage", body);
    }

    fn call_later(&self, method: &'static str, body: serde_json::Value) {
        let req = self
            .http
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(&self.bot_token)
            .json(&body);
        tokio::spawn(async move {
            match req.send().await {
                Ok(r) => match r.json::<serde_json::Value>().await {
                    Ok(v) if v["ok"] == true => {}
                    Ok(v) => tracing::warn!(method, error = %v["error"], "Slack refused a call"),
                    Err(e) => {
                        tracing::warn!(method, error = %e.without_url(), "Slack's answer is unreadable")
                    }
                },
                Err(e) => tracing::warn!(method, error = %e.without_url(), "Slack unreachable"),
            }
        });
    }

    /// The confirmed e-mail of Slack user `user` (`users.info`), or why not.
    async fn email_of(&self, user: &str) -> Result<String, String> {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/users.info", self.api_url))
            .query(&[("user", user)])
            .bearer_auth(&self.bot_token)
            .send()
            .await
            .map_err(|e| format!("Slack unreachable: {}", e.without_url()))?
            .json()
            .await
            .map_err(|e| format!("Slack's answer is unreadable: {}", e.without_url()))?;
        if v["ok"] != true {
            return Err(format!("Slack refused users.info: {}", v["error"]));
        }
        let u = &v["user"];
        if u["deleted"] == true || u["is_bot"] == true {
            return Err("a deactivated or bot user cannot approve".into());
        }
        // Only an address Slack confirmed names a person: anyone can type one into a profile
        // of a workspace that does not confirm them.
        if u["is_email_confirmed"] != true {
            return Err("your Slack e-mail address is not confirmed".into());
        }
        u["profile"]["email"]
            .as_str()
            .filter(|e| !e.is_empty())
            .map(str::to_lowercase)
            .ok_or_else(|| {
                "no e-mail in your Slack profile (the app needs users:read.email)".into()
            })
    }

    /// Answers a click through its `response_url`: only Slack's own hooks (or, for a stand-in,
    /// the configured API's host) are called, so a forged URL cannot make the server post
    /// elsewhere.
    fn respond(&self, response_url: &str, body: serde_json::Value) {
        let allowed = reqwest::Url::parse(response_url).is_ok_and(|u| {
            let api = reqwest::Url::parse(&self.api_url).ok();
            (u.scheme() == "https" && u.host_str() == Some("hooks.slack.com"))
                || api.is_some_and(|a| a.origin() == u.origin())
        });
        if !allowed {
            tracing::warn!(
                "Slack interaction with a response_url that is not Slack's: not answered"
            );
            return;
        }
        let req = self.http.post(response_url).json(&body);
        tokio::spawn(async move {
            if let Err(e) = req.send().await {
                tracing::warn!(error = %e.without_url(), "Slack response_url failed");
            }
        });
    }
}
