//! Shared server state.

use crate::agent_client::AgentClient;
use crate::config::{ResourceConfig, ServerConfig};
use crate::lifecycle::Overseers;
use crate::store::Store;
use p0_core::route::Approver;
use p0_core::{DangerousDevIssuer, IdTokenVerifier, ResourceId, Router};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{watch, Mutex};

/// Everything a handler needs.
pub struct AppState {
    /// Requests, leases, audit.
    pub store: Arc<dyn Store>,
    /// Routing rules.
    pub router: Arc<dyn Router>,
    /// ID token verification.
    pub verifier: Arc<dyn IdTokenVerifier>,
    /// Resources and their agents.
    pub resources: HashMap<ResourceId, (ResourceConfig, AgentClient)>,
    /// The development issuer, when enabled.
    pub dev_issuer: Option<Arc<DangerousDevIssuer>>,
    /// The audience tokens are issued for.
    pub audience: String,
    /// Bumped on every change, for long polls.
    pub changed: watch::Sender<u64>,
    /// Set once the server is stopping: long polls answer at once, the reaper claims no more.
    pub stopping: watch::Sender<bool>,
    /// Requests being provisioned right now.
    pub provisioning: Mutex<HashSet<p0_core::RequestId>>,
    /// Slack-compatible webhook.
    pub webhook: Option<String>,
    /// The Slack app pending requests are posted through, with Approve and Deny.
    pub slack: Option<Arc<crate::slack::Slack>>,
    /// The web console, when configured.
    pub console: Option<Arc<crate::console::Console>>,
    /// Who sees every request and may end every lease.
    pub admins: Vec<Approver>,
    /// Who may read the audit log.
    pub auditors: Vec<Approver>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("resources", &self.resources.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state from a config.
    pub fn new(
        config: &ServerConfig,
        store: Arc<dyn Store>,
        router: Arc<dyn Router>,
        verifier: Arc<dyn IdTokenVerifier>,
        dev_issuer: Option<Arc<DangerousDevIssuer>>,
    ) -> anyhow::Result<Arc<Self>> {
        let mut resources = HashMap::new();
        for r in &config.resources {
            let client = match r.agent_target()? {
                crate::config::AgentTarget::Http { url, ca, platform } => {
                    let secret = match r.agent_secret.clone() {
                        Some(s) => Some(s),
                        None => p0_core::secret::from_env("P0_AGENT_HMAC_SECRET")?,
                    }
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "resource `{}`: no agent_secret and no P0_AGENT_HMAC_SECRET",
                            r.name
                        )
                    })?;
                    AgentClient::new(&url, &secret, ca.as_deref())?.with_platform_auth(platform)?
                }
                crate::config::AgentTarget::Lambda {
                    function,
                    endpoint,
                    max_attempts,
                } => AgentClient::lambda(&r.name, function, endpoint, max_attempts)?,
            };
            resources.insert(r.name.clone(), (r.clone(), client));
        }
        let parse = |what: &str, list: &[String]| {
            list.iter()
                .map(|a| Approver::parse(a).map_err(|e| anyhow::anyhow!("{what}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()
        };
        let admins = parse("admins", &config.admins)?;
        let auditors = parse("auditors", &config.auditors)?;
        Ok(Arc::new(Self {
            store,
            router,
            verifier,
            resources,
            dev_issuer,
            audience: config.audience.clone(),
            changed: watch::channel(0).0,
            stopping: watch::channel(false).0,
            provisioning: Mutex::new(HashSet::new()),
            webhook: config.webhook_url.clone(),
            slack: match &config.slack {
                Some(c) => Some(Arc::new(crate::slack::Slack::new(c)?)),
                None => None,
            },
            console: match &config.console {
                Some(c) => Some(Arc::new(crate::console::Console::new(
                    c,
                    &config.issuer,
                    &config.audience,
                )?)),
                None => None,
            },
            admins,
            auditors,
        }))
    }

    /// Who oversees requests besides their requesters.
    pub(crate) fn overseers(&self) -> Overseers<'_> {
        Overseers {
            admins: &self.admins,
            router: &*self.router,
        }
    }

    /// Wakes long polls.
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Starts stopping: long polls answer with what they have, the reaper claims no more.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether the server is stopping.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Announces a request that waits for approval: the webhook, and Slack's interactive
    /// message.
    pub fn announce_pending(&self, rec: &crate::store::RequestRecord) {
        self.webhook(crate::shown::pending(rec));
        if let Some(slack) = &self.slack {
            slack.post_pending(rec);
        }
    }

    /// Posts a Slack-compatible message (a JSON object with `text`, and structured fields
    /// beside it), without waiting and without failing the caller.
    pub fn webhook(&self, payload: serde_json::Value) {
        if let Some(url) = self.webhook.clone() {
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                if let Err(e) = client.post(&url).json(&payload).send().await {
                    tracing::warn!(error = %e.without_url(), "webhook failed");
                }
            });
        }
    }
}
