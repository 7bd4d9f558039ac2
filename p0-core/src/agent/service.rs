//! [`Agent`]: every check of a call, in order, then the provisioner and the sealed grant.

use super::checks::{check_plan, verify_requester};
use super::extraction::QueryExtractor;
use super::replay::ReplayGuard;
use super::reply::{bad, forbidden, replayed, unauthenticated, unavailable, Op, Refusal, Reply};
use super::settings::{AgentSettings, AgentSetupError, ConnectEndpoint};
use crate::api::{hmac_verify, ExplainCall, ProvisionCall, ProvisionResult, RevokeCall};
use crate::error::ProvisionError;
use crate::grant::{AgentKey, AgentSigningKey};
use crate::provision::{Access, DatabaseProvisioner, RevokeReport, SweepReport, Sweeper};
use crate::secret::SecretBytes;
use crate::types::{Engine, ResourceId};
use crate::verify::IdTokenVerifier;
use chrono::Utc;
use std::sync::Arc;

/// The agent, whatever carries its calls: the HTTP agent, the Lambda agent and a custom agent
/// around a provisioner of its own all authenticate the server with
/// [`Agent::authenticate_server`] (unless their transport authenticates the caller itself)
/// and run the call with [`Agent::handle`], which checks everything else.
pub struct Agent {
    resource: ResourceId,
    engine: Engine,
    hmac_secret: Option<SecretBytes>,
    verifier: Arc<dyn IdTokenVerifier>,
    provisioner: Arc<dyn DatabaseProvisioner>,
    extractor: QueryExtractor,
    replay: ReplayGuard,
    /// Where clients connect: sealed with every password.
    endpoint: ConnectEndpoint,
    /// Signs every sealed grant; CLIs pin its public half.
    signer: AgentSigningKey,
    /// Freshness window of a signed request or pickup proof, in seconds.
    max_age: i64,
    /// Removes expired users, backing off from the ones it cannot remove.
    sweeper: Sweeper,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent from its settings, refused if it could not serve safely (a short HMAC secret,
    /// no freshness window, an endpoint clients could misread).
    pub fn new(settings: AgentSettings) -> Result<Self, AgentSetupError> {
        settings.check()?;
        let AgentSettings {
            resource,
            engine,
            verifier,
            provisioner,
            endpoint,
            signing_key,
            hmac_secret,
            max_age,
            catalog_url,
            default_database,
        } = settings;
        tracing::info!(resource = %resource, agent_key = %signing_key.public().fingerprint(), host = %endpoint.host, port = endpoint.port, "sealing grants for this target");
        Ok(Self {
            extractor: QueryExtractor::new(engine, default_database, catalog_url),
            resource,
            engine,
            hmac_secret,
            verifier,
            provisioner,
            replay: ReplayGuard::default(),
            endpoint,
            signer: signing_key,
            max_age,
            sweeper: Sweeper::default(),
        })
    }

    /// The resource it serves.
    pub fn resource(&self) -> &ResourceId {
        &self.resource
    }

    /// The public half of the key that signs its grants.
    pub fn public_key(&self) -> AgentKey {
        self.signer.public()
    }

    /// The provisioner (for a sweeper of the transport's own).
    pub fn provisioner(&self) -> Arc<dyn DatabaseProvisioner> {
        self.provisioner.clone()
    }

    /// Checks the server's HMAC over `path`, the timestamp and the body, as the headers
    /// [`crate::api::HMAC_TIME_HEADER`] and [`crate::api::HMAC_SIG_HEADER`] carry them, at
    /// `now` (seconds since the epoch). The refusal (401) is the transport's answer. Without
    /// an HMAC secret every call is refused.
    pub fn authenticate_server(
        &self,
        path: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Reply> {
        let ts = timestamp.and_then(|v| v.parse::<i64>().ok());
        let ok = match (ts, signature, &self.hmac_secret) {
            (Some(ts), Some(sig), Some(secret)) => {
                hmac_verify(secret.expose_secret(), ts, path, body, sig, now)
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(unauthenticated("missing or invalid server signature").into())
        }
    }

    /// Runs `op` on a JSON `body`, once the transport has authenticated the caller (the HMAC
    /// over HTTP, IAM on Lambda). Everything else is checked here, whatever the transport.
    pub async fn handle(&self, op: Op, body: &[u8]) -> Reply {
        fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
            serde_json::from_slice(body).map_err(|e| bad(format!("invalid body: {e}")))
        }
        let result = match op {
            // The sweeper's gauge and counter: how many expired users it could not remove yet,
            // and how many attempts failed since start (no names: health is unauthenticated).
            Op::Health => Ok(Reply::ok(serde_json::json!({
                "ok": true,
                "sweep_failing": self.sweeper.failing(),
                "sweep_failures_total": self.sweeper.failures_total(),
            }))),
            Op::Provision => match parse(body) {
                Ok(call) => self.provision(&call).await.map(Reply::ok),
                Err(e) => Err(e),
            },
            Op::Revoke => match parse::<RevokeCall>(body) {
                Ok(call) => self.revoke(&call).await.map(Reply::ok),
                Err(e) => Err(e),
            },
            Op::Sweep => self.sweep().await.map(Reply::ok).map_err(unavailable),
            Op::Explain => match parse::<ExplainCall>(body) {
                Ok(call) => self.explain(call).await,
                Err(e) => Err(e),
            },
        };
        result.unwrap_or_else(Reply::from)
    }

    /// What a query needs, or whether a role would be handed out — each refused here, before
    /// anyone is asked to approve it, when the guard would refuse it at provisioning.
    async fn explain(&self, call: ExplainCall) -> Result<Reply, Refusal> {
        let access = match call.role {
            Some(role) => {
                let access = Access::Role(role);
                self.provisioner
                    .precheck(&access)
                    .map_err(|e| forbidden(e.to_string()))?;
                return Ok(Reply::ok(crate::extract::Extraction::default()));
            }
            None => self.extractor.extract(&call.sql).await?,
        };
        let needed = Access::Permissions(access.permissions.clone());
        self.provisioner
            .precheck(&needed)
            .map_err(|e| forbidden(e.to_string()))?;
        Ok(Reply::ok(access))
    }

    /// Provisions a verified call: every check of [`crate::agent`], in order.
    async fn provision(&self, call: &ProvisionCall) -> Result<ProvisionResult, Refusal> {
        let plan = &call.plan;
        let claims = verify_requester(call, &self.resource, &*self.verifier, self.max_age).await?;
        check_plan(call, &self.extractor).await?;
        // 5. A request id is used once.
        let until = plan.expires_at.timestamp().max(claims.exp);
        self.replay
            .claim(plan, until, Utc::now().timestamp(), &*self.provisioner)
            .await?;
        // 6. The provisioner runs the escalation guard itself.
        let creds = self
            .provisioner
            .provision(plan)
            .await
            .map_err(|e| match e {
                ProvisionError::Database(m) => unavailable(m),
                e @ ProvisionError::NoBackstop(_) => unavailable(e),
                ProvisionError::Replayed(_) => replayed(),
                other => forbidden(other.to_string()),
            })?;
        let target = self.endpoint.target(
            plan.request_id.clone(),
            self.resource.clone(),
            self.engine,
            creds.username.clone(),
            creds.expires_at,
        );
        let sealed = match crate::grant::seal(
            call.public_key.as_bytes(),
            &target,
            &creds.password,
            &self.signer,
        ) {
            Ok(s) => s,
            Err(e) => {
                let _ = self.provisioner.revoke(&creds.username).await;
                return Err(bad(e.to_string()));
            }
        };
        tracing::info!(request = %plan.request_id, requester = %plan.requester, user = %creds.username, "provisioned");
        Ok(ProvisionResult {
            username: creds.username,
            sealed_password: sealed,
            role: creds.role.to_string(),
            expires_at: creds.expires_at,
        })
    }

    async fn revoke(&self, call: &RevokeCall) -> Result<RevokeReport, Refusal> {
        self.provisioner
            .revoke(&call.username)
            .await
            .map_err(|e| match e {
                ProvisionError::Database(m) => unavailable(m),
                other => forbidden(other.to_string()),
            })
    }

    /// One sweep: removes every expired user it can, and reports (and logs) each one it
    /// could not remove, which later sweeps retry with backoff. The server records the
    /// `failed` entries of the answer to [`Op::Sweep`].
    pub async fn sweep(&self) -> Result<SweepReport, ProvisionError> {
        let report = self.sweeper.run(&*self.provisioner, Utc::now()).await?;
        if !report.removed.is_empty() {
            tracing::info!(
                count = report.removed.len(),
                "sweeper removed expired users"
            );
        }
        if !report.failed.is_empty() {
            tracing::error!(
                failed = report.failed.len(),
                failing = self.sweeper.failing(),
                failures_total = self.sweeper.failures_total(),
                users = %report.failed.iter().map(|f| f.user.as_str()).collect::<Vec<_>>().join(", "),
                "sweeper could not remove expired users"
            );
        }
        Ok(report)
    }
}
