//! The agent's HTTP surface: `/v1/provision`, `/v1/revoke`, `/v1/sweep`, `/v1/explain`,
//! `/v1/health`. Everything but health is authenticated by the server's HMAC.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use p0_core::api::{
    hmac_verify, ApiError, ExplainCall, ProvisionCall, ProvisionResult, RevokeCall,
    HMAC_SIG_HEADER, HMAC_TIME_HEADER,
};
use p0_core::extract::Catalog;
use p0_core::grant::{AgentSigningKey, ConnectTarget, TlsExpectation};
use p0_core::provision::{MySqlProvisioner, PostgresProvisioner, SweepReport, Sweeper};
use p0_core::seal::key_fingerprint;
use p0_core::{
    Access, DatabaseProvisioner, Engine, IdTokenVerifier, Intent, MySqlExtractor,
    PermissionExtractor, PostgresExtractor, RequestId, ResourceId, Token,
};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Everything a handler needs.
pub struct AgentState {
    resource: ResourceId,
    hmac_secret: Option<Vec<u8>>,
    /// Where the live catalog is read for extraction (PostgreSQL); none for a custom
    /// provisioner, whose agent extracts from the SQL alone.
    catalog_url: Option<String>,
    engine: Engine,
    default_database: Option<String>,
    verifier: Arc<dyn IdTokenVerifier>,
    provisioner: Arc<dyn DatabaseProvisioner>,
    /// Request ids already used, with when they may be forgotten.
    seen: Mutex<HashMap<RequestId, i64>>,
    /// The last catalog snapshot and when it was read.
    catalog: Mutex<Option<(std::time::Instant, Arc<Catalog>)>>,
    /// Where clients connect: sealed with every password.
    target: Target,
    /// Signs every sealed grant; CLIs pin its public half.
    signer: AgentSigningKey,
    /// Freshness window of a signed request or pickup proof, in seconds.
    max_age: i64,
    /// Removes expired users, backing off from the ones it cannot remove.
    sweeper: Sweeper,
}

/// The agent's side of every [`ConnectTarget`]: from its own configuration only.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    database: String,
    tls: TlsExpectation,
}

/// Longest a request may wait for approval and still be picked up with a fresh proof.
const MAX_PENDING_SECS: i64 = 7 * 86_400;

/// How long a catalog snapshot is reused. Extraction only decides which permissions a query
/// needs; the provisioner's guard re-checks every object against the live catalog when it
/// grants, so a few seconds of staleness cannot widen a grant.
const CATALOG_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl std::fmt::Debug for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentState")
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl AgentState {
    /// Builds the state for the HTTP transport: the admin URL from the config or
    /// `P0_AGENT_DATABASE_URL`, and the server's HMAC secret, which HTTP requires.
    pub async fn new(
        config: &crate::AgentConfig,
        verifier: Arc<dyn IdTokenVerifier>,
    ) -> anyhow::Result<Arc<Self>> {
        let database_url = config
            .database_url
            .clone()
            .or_else(|| std::env::var("P0_AGENT_DATABASE_URL").ok())
            .ok_or_else(|| {
                anyhow::anyhow!("no database_url in the config and no P0_AGENT_DATABASE_URL")
            })?;
        let hmac_secret = config
            .hmac_secret
            .clone()
            .or_else(|| std::env::var("P0_AGENT_HMAC_SECRET").ok())
            .ok_or_else(|| {
                anyhow::anyhow!("no hmac_secret in the config and no P0_AGENT_HMAC_SECRET")
            })?;
        Self::connect(config, verifier, database_url, Some(hmac_secret)).await
    }

    /// Builds the state from an admin URL, wherever it came from. Without an HMAC secret the
    /// HTTP router refuses every call but health: only a transport that authenticates the
    /// caller itself (IAM, for Lambda) may run without one.
    pub async fn connect(
        config: &crate::AgentConfig,
        verifier: Arc<dyn IdTokenVerifier>,
        database_url: String,
        hmac_secret: Option<String>,
    ) -> anyhow::Result<Arc<Self>> {
        let provisioner: Arc<dyn DatabaseProvisioner> = match config.engine {
            Engine::MySql => Arc::new(
                MySqlProvisioner::connect(
                    &database_url,
                    config.guard.clone(),
                    &config.account_host,
                )
                .await?,
            ),
            _ => Arc::new(PostgresProvisioner::connect(&database_url, config.guard.clone()).await?),
        };
        let mut state = Self::build(
            config,
            verifier,
            provisioner,
            hmac_secret,
            Some(&database_url),
        )?;
        if config.engine == Engine::Postgres {
            state.catalog_url = Some(database_url);
        }
        Ok(Arc::new(state))
    }

    /// The agent around a provisioner of your own (a database p0 does not ship): every check
    /// of the module's documentation runs as for the built-in ones; query requests are
    /// extracted in `config.engine`'s dialect without a live catalog.
    pub fn with_provisioner(
        config: &crate::AgentConfig,
        verifier: Arc<dyn IdTokenVerifier>,
        provisioner: Arc<dyn DatabaseProvisioner>,
        hmac_secret: Option<String>,
    ) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self::build(
            config,
            verifier,
            provisioner,
            hmac_secret,
            None,
        )?))
    }

    fn build(
        config: &crate::AgentConfig,
        verifier: Arc<dyn IdTokenVerifier>,
        provisioner: Arc<dyn DatabaseProvisioner>,
        hmac_secret: Option<String>,
        database_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        if hmac_secret.as_ref().is_some_and(|s| s.len() < 16) {
            anyhow::bail!("hmac_secret must be at least 16 characters");
        }
        if config.max_request_age_secs <= 0 {
            anyhow::bail!("max_request_age_secs must be positive");
        }
        let target = connect_target(config, database_url)?;
        let signer = signing_key(config)?;
        tracing::info!(resource = %config.resource, agent_key = %signer.public().fingerprint(), host = %target.host, port = target.port, "sealing grants for this target");
        Ok(Self {
            target,
            signer,
            max_age: config.max_request_age_secs,
            resource: config.resource.clone(),
            hmac_secret: hmac_secret.map(String::into_bytes),
            catalog_url: None,
            engine: config.engine,
            default_database: config.guard.databases.first().cloned(),
            verifier,
            provisioner,
            seen: Mutex::new(HashMap::new()),
            catalog: Mutex::new(None),
            sweeper: Sweeper::default(),
        })
    }

    /// The live catalog, reused for [`CATALOG_TTL`]; none without a catalog URL.
    async fn catalog(&self) -> Result<Option<Arc<Catalog>>, Refusal> {
        let Some(url) = &self.catalog_url else {
            return Ok(None);
        };
        let mut slot = self.catalog.lock().await;
        if let Some((at, c)) = slot.as_ref() {
            if at.elapsed() < CATALOG_TTL {
                return Ok(Some(c.clone()));
            }
        }
        let c = Arc::new(Catalog::load_postgres(url).await.map_err(|e| {
            Refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("cannot read the catalog: {e}"),
            )
        })?);
        *slot = Some((std::time::Instant::now(), c.clone()));
        Ok(Some(c))
    }

    /// What `sql` needs, in this agent's engine, against its live catalog where there is one.
    async fn extract(&self, sql: &str) -> Result<p0_core::extract::Extraction, Refusal> {
        let refused = |e: p0_core::ExtractError| {
            Refusal(StatusCode::UNPROCESSABLE_ENTITY, "refused", e.to_string())
        };
        match self.engine {
            Engine::MySql => MySqlExtractor::new(self.default_database.clone())
                .extract(sql)
                .map_err(refused),
            _ => {
                let x = PostgresExtractor::new();
                let x = match self.catalog().await? {
                    Some(c) => x.with_catalog(c),
                    None => x,
                };
                x.extract(sql).map_err(refused)
            }
        }
    }

    /// The provisioner (for the sweeper).
    pub fn provisioner(&self) -> Arc<dyn DatabaseProvisioner> {
        self.provisioner.clone()
    }

    /// One sweep: removes every expired user it can, and reports (and logs) each one it
    /// could not remove, which later sweeps retry with backoff. The server records the
    /// `failed` entries of the answer to `/v1/sweep`.
    pub async fn sweep(&self) -> Result<SweepReport, p0_core::ProvisionError> {
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

    /// Sweeps every `every` forever (the HTTP agent's background sweeper).
    pub async fn sweep_forever(self: Arc<Self>, every: std::time::Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "sweep failed; will retry");
            }
        }
    }
}

/// One of the agent's operations, whatever carries it: an HTTP path or a Lambda event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Provision,
    Revoke,
    Sweep,
    Explain,
    Health,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 5] = [
        Op::Provision,
        Op::Revoke,
        Op::Sweep,
        Op::Explain,
        Op::Health,
    ];

    /// Its HTTP path.
    pub fn path(self) -> &'static str {
        match self {
            Op::Provision => "/v1/provision",
            Op::Revoke => "/v1/revoke",
            Op::Sweep => "/v1/sweep",
            Op::Explain => "/v1/explain",
            Op::Health => "/v1/health",
        }
    }

    /// The operation served at `path`.
    pub fn from_path(path: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.path() == path)
    }
}

/// The answer to one call: an HTTP status and a JSON body — the result, or an [`ApiError`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Reply {
    fn ok<T: serde::Serialize>(value: T) -> Self {
        match serde_json::to_value(value) {
            Ok(body) => Self { status: 200, body },
            Err(e) => Refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).into(),
        }
    }
}

impl From<Refusal> for Reply {
    fn from(r: Refusal) -> Self {
        tracing::warn!(code = r.1, reason = %r.2, "agent refused a call");
        let body = serde_json::json!(ApiError {
            code: r.1.into(),
            message: r.2,
        });
        Self {
            status: r.0.as_u16(),
            body,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body)).into_response()
    }
}

impl AgentState {
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
                Ok(call) => provision(self, &call).await.map(Reply::ok),
                Err(e) => Err(e),
            },
            Op::Revoke => match parse::<RevokeCall>(body) {
                Ok(call) => revoke(self, &call).await.map(Reply::ok),
                Err(e) => Err(e),
            },
            Op::Sweep => self.sweep().await.map(Reply::ok).map_err(unavailable),
            Op::Explain => match parse::<ExplainCall>(body) {
                Ok(call) => self.extract(&call.sql).await.map(Reply::ok),
                Err(e) => Err(e),
            },
        };
        result.unwrap_or_else(Reply::from)
    }
}

/// One router for the HTTP transport: the server's HMAC on everything but health, then
/// [`AgentState::handle`].
pub fn build_router(state: Arc<AgentState>) -> Router {
    let mut router = Router::new();
    for op in Op::ALL {
        let method = if op == Op::Health { get } else { post };
        router = router.route(
            op.path(),
            method(
                move |State(state): State<Arc<AgentState>>,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    if op != Op::Health {
                        if let Err(e) = authenticated(&state, &uri, &headers, &body) {
                            return Reply::from(e);
                        }
                    }
                    state.handle(op, &body).await
                },
            ),
        );
    }
    router.with_state(state)
}

/// A refusal: logged with its detail, answered with a stable code.
pub(crate) struct Refusal(StatusCode, &'static str, String);

fn bad(msg: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, "bad_request", msg.into())
}

fn forbidden(msg: impl Into<String>) -> Refusal {
    Refusal(StatusCode::FORBIDDEN, "forbidden", msg.into())
}

fn unavailable(e: impl std::fmt::Display) -> Refusal {
    Refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

/// Checks the server's HMAC over the path, timestamp and body.
fn authenticated(
    state: &AgentState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), Refusal> {
    let ts = headers
        .get(HMAC_TIME_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let sig = headers.get(HMAC_SIG_HEADER).and_then(|v| v.to_str().ok());
    let ok = match (ts, sig, &state.hmac_secret) {
        (Some(ts), Some(sig), Some(secret)) => {
            hmac_verify(secret, ts, uri.path(), body, sig, Utc::now().timestamp())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "missing or invalid server signature".into(),
        ))
    }
}

/// Provisions a verified call: every check of the module's documentation, in order.
async fn provision(state: &AgentState, call: &ProvisionCall) -> Result<ProvisionResult, Refusal> {
    let plan = &call.plan;
    if plan.resource != state.resource || call.signed.resource != state.resource {
        return Err(forbidden(format!(
            "resource `{}` is not served by this agent",
            plan.resource
        )));
    }
    // 1. The requester's identity, with this agent's own issuer configuration.
    let claims = state
        .verifier
        .verify(&Token::new(call.id_token.clone()))
        .await
        .map_err(|e| {
            tracing::warn!(detail = %e, "token refused");
            Refusal(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "invalid identity token".into(),
            )
        })?;
    if claims.principal() != plan.requester {
        return Err(forbidden("the plan names another requester than the token"));
    }
    // 2. The token commits to the key the password will be sealed to.
    let fingerprint =
        key_fingerprint(call.public_key.as_bytes()).map_err(|e| bad(e.to_string()))?;
    if claims.nonce.as_deref() != Some(fingerprint.as_str()) {
        return Err(forbidden(
            "the public key is not the one the identity token commits to",
        ));
    }
    // 3. The requester signed exactly this request.
    call.signed
        .verify(call.public_key.as_bytes(), &call.signature)
        .map_err(|_| forbidden("the request signature does not verify"))?;
    if call.signed.request_id != plan.request_id {
        return Err(forbidden(
            "the plan is for another request than the signed one",
        ));
    }
    // Freshness: the signed request, or the requester's pickup of it after approval.
    let now = Utc::now();
    let signed_fresh = (now.timestamp() - call.signed.issued_at).abs() <= state.max_age;
    if !signed_fresh && !pickup_is_fresh(state, call, now.timestamp()) {
        return Err(forbidden(format!(
            "the signed request is not fresh (issued_at more than {} s from now) and no fresh pickup proof comes with it",
            state.max_age
        )));
    }
    if plan.expires_at <= now {
        return Err(forbidden("the plan's expiry has passed"));
    }
    let latest = now
        + chrono::TimeDelta::seconds(
            call.signed.duration_secs.min(i64::MAX as u64 / 2) as i64 + 60,
        );
    if plan.expires_at > latest {
        return Err(forbidden(
            "the expiry is later than the requester asked for",
        ));
    }
    // 4. The plan is no wider than what the signed request needs.
    match (&call.signed.intent, &plan.access) {
        (Intent::Query(sql), Access::Permissions(set)) => {
            let needed = state
                .extract(sql)
                .await
                .map_err(|e| forbidden(format!("the signed query is not grantable: {}", e.2)))?;
            if !set.is_subset_of(&needed.permissions) {
                return Err(forbidden(
                    "the plan grants more than the signed query needs",
                ));
            }
        }
        (Intent::Role(asked), Access::Role(planned)) if asked == planned => {}
        _ => return Err(forbidden("the plan does not match the signed intent")),
    }
    // 5. A request id is used once.
    {
        let mut seen = state.seen.lock().await;
        let now = Utc::now().timestamp();
        seen.retain(|_, until| *until > now);
        if seen.contains_key(&plan.request_id) {
            return Err(Refusal(
                StatusCode::CONFLICT,
                "conflict",
                "request id already used".into(),
            ));
        }
        seen.insert(
            plan.request_id.clone(),
            plan.expires_at.timestamp().max(claims.exp),
        );
    }
    // ... and durably: what the database holds survives restarts and other instances.
    let managed = state
        .provisioner
        .list_managed()
        .await
        .map_err(unavailable)?;
    if managed
        .iter()
        .any(|a| a.request_id.as_deref() == Some(plan.request_id.as_str()))
    {
        return Err(Refusal(
            StatusCode::CONFLICT,
            "conflict",
            "request id already used".into(),
        ));
    }
    // 6. The provisioner runs the escalation guard itself.
    let creds = state
        .provisioner
        .provision(plan)
        .await
        .map_err(|e| match e {
            p0_core::ProvisionError::Database(m) => unavailable(m),
            e @ p0_core::ProvisionError::NoBackstop(_) => unavailable(e),
            other => forbidden(other.to_string()),
        })?;
    let target = ConnectTarget {
        request_id: plan.request_id.clone(),
        resource: state.resource.clone(),
        engine: state.engine,
        host: state.target.host.clone(),
        port: state.target.port,
        database: state.target.database.clone(),
        username: creds.username.clone(),
        expires_at: creds.expires_at,
        tls: state.target.tls.clone(),
    };
    let sealed = match p0_core::grant::seal(
        call.public_key.as_bytes(),
        &target,
        &creds.password,
        &state.signer,
    ) {
        Ok(s) => s,
        Err(e) => {
            let _ = state.provisioner.revoke(&creds.username).await;
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

async fn revoke(
    state: &AgentState,
    call: &RevokeCall,
) -> Result<p0_core::provision::RevokeReport, Refusal> {
    state
        .provisioner
        .revoke(&call.username)
        .await
        .map_err(|e| match e {
            p0_core::ProvisionError::Database(m) => unavailable(m),
            other => forbidden(other.to_string()),
        })
}

/// Runs a sweeper forever around any provisioner: removes managed users past their expiry
/// even if the server is gone, goes on past the ones it cannot remove (logged, retried with
/// backoff).
pub async fn run_sweeper(provisioner: Arc<dyn DatabaseProvisioner>, every: std::time::Duration) {
    let sweeper = Sweeper::default();
    loop {
        tokio::time::sleep(every).await;
        match sweeper.run(&*provisioner, Utc::now()).await {
            Ok(r) if !r.removed.is_empty() => {
                tracing::info!(count = r.removed.len(), "sweeper removed expired users")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep failed; will retry"),
        }
    }
}

/// The connection target of [`crate::ConnectConfig`], with defaults from the admin URL.
fn connect_target(
    config: &crate::AgentConfig,
    database_url: Option<&str>,
) -> anyhow::Result<Target> {
    let c = &config.connect;
    let url = database_url
        .map(url::Url::parse)
        .transpose()
        .map_err(|_| anyhow::anyhow!("database_url is not a URL"))?;
    let host = c
        .host
        .clone()
        .or_else(|| url.as_ref().and_then(|u| u.host_str().map(str::to_string)))
        .ok_or_else(|| anyhow::anyhow!("no [connect] host and no host in database_url"))?;
    let default_port = match config.engine {
        Engine::MySql => 3306,
        _ => 5432,
    };
    let port = c
        .port
        .or_else(|| url.as_ref().map(|u| u.port().unwrap_or(default_port)))
        .ok_or_else(|| anyhow::anyhow!("no [connect] port and no database_url"))?;
    let database = c
        .database
        .clone()
        .or_else(|| config.guard.databases.first().cloned())
        .ok_or_else(|| anyhow::anyhow!("no [connect] database and no guard.databases"))?;
    let tls = match &c.ca_file {
        Some(path) => TlsExpectation::VerifyFull {
            ca_pem: Some(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading connect.ca_file `{}`: {e}", path.display())
            })?),
        },
        None => TlsExpectation::Off,
    };
    let target = Target {
        host,
        port,
        database,
        tls,
    };
    // The same check the CLI makes: a misconfigured target fails at start, not per grant.
    ConnectTarget {
        request_id: RequestId::generate(),
        resource: config.resource.clone(),
        engine: config.engine,
        host: target.host.clone(),
        port: target.port,
        database: target.database.clone(),
        username: p0_core::Username::new("p0_check")?,
        expires_at: Utc::now(),
        tls: target.tls.clone(),
    }
    .check()?;
    Ok(target)
}

/// The agent's signing key: `signing_key_file`, else `P0_AGENT_SIGNING_KEY`, else a new one.
fn signing_key(config: &crate::AgentConfig) -> anyhow::Result<AgentSigningKey> {
    let pem =
        match &config.signing_key_file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading signing_key_file `{}`: {e}", path.display())
            })?),
            None => std::env::var("P0_AGENT_SIGNING_KEY").ok(),
        };
    match pem {
        Some(pem) => Ok(AgentSigningKey::from_pkcs8_pem(&pem)?),
        None => {
            let key = AgentSigningKey::generate();
            tracing::warn!(agent_key = %key.public().fingerprint(), "no signing_key_file or P0_AGENT_SIGNING_KEY: using a key generated now; CLIs that pinned another key of this resource will refuse its grants");
            Ok(key)
        }
    }
}

/// Whether the call carries the requester's fresh proof of their poll of this very request
/// (`GET /v1/requests/ID`), made with the key the token commits to and for the token that came
/// with the call: the requester's own act, which the server cannot make.
fn pickup_is_fresh(state: &AgentState, call: &ProvisionCall, now: i64) -> bool {
    let Some(proof) = call.pickup_proof.as_deref() else {
        return false;
    };
    if now - call.signed.issued_at > MAX_PENDING_SECS || call.signed.issued_at - now > state.max_age
    {
        return false;
    }
    let Ok(claims) = p0_core::proof::open(call.public_key.as_bytes(), proof) else {
        return false;
    };
    let path = claims.htu.split('?').next().unwrap_or_default();
    claims.htm == "GET"
        && path == format!("/v1/requests/{}", call.signed.request_id)
        && claims.ath == p0_core::proof::digest(call.id_token.as_bytes())
        && (now - claims.iat).abs() <= state.max_age
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use p0_core::provision::{AccountKind, ManagedAccount, RevokeReport};
    use p0_core::{Credentials, ProvisionError, ProvisionPlan, Username};

    /// Two expired users; `p0_stuck_1` cannot be removed.
    struct Stuck(std::sync::Mutex<Vec<ManagedAccount>>);

    #[async_trait::async_trait]
    impl DatabaseProvisioner for Stuck {
        fn supports_valid_until(&self) -> bool {
            true
        }
        fn max_username_len(&self) -> usize {
            63
        }
        async fn provision(&self, _: &ProvisionPlan) -> Result<Credentials, ProvisionError> {
            Err(ProvisionError::Database("unused".into()))
        }
        async fn revoke(&self, user: &Username) -> Result<RevokeReport, ProvisionError> {
            if user.as_str() == "p0_stuck_1" {
                return Err(ProvisionError::Database(
                    "`p0_stuck_1` owns objects in database `frozen`".into(),
                ));
            }
            self.0.lock().unwrap().retain(|a| a.name != user.as_str());
            Ok(RevokeReport::default())
        }
        async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    #[tokio::test]
    async fn sweep_answers_with_what_it_could_not_remove_and_health_counts_it() {
        let config = crate::AgentConfig::from_toml(
            r#"
            resource = "pg/app"
            issuer = "https://issuer.invalid"
            audience = "p0"
            [connect]
            host = "db.internal"
            port = 5432
            [guard]
            databases = ["app"]
            service_user = "postgres"
            allow_definer_functions = ["public.current_tenant()"]
            "#,
        )
        .unwrap();
        assert_eq!(
            config.guard.allow_definer_functions,
            ["public.current_tenant()"]
        );
        let expired = |name: &str| ManagedAccount {
            name: name.into(),
            kind: AccountKind::User,
            expires_at: Some(Utc::now() - chrono::TimeDelta::seconds(1)),
            request_id: None,
        };
        let provisioner = Arc::new(Stuck(std::sync::Mutex::new(vec![
            expired("p0_stuck_1"),
            expired("p0_gone_1"),
        ])));
        let verifier =
            Arc::new(p0_core::JwksVerifier::new("https://issuer.invalid", "p0").unwrap());
        let state = AgentState::with_provisioner(&config, verifier, provisioner, None).unwrap();
        let reply = state.handle(Op::Sweep, b"{}").await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["removed"], serde_json::json!(["p0_gone_1"]));
        let failed = &reply.body["failed"][0];
        assert_eq!(failed["user"], "p0_stuck_1");
        assert!(failed["error"].as_str().unwrap().contains("`frozen`"));
        assert_eq!(failed["attempts"], 1);
        assert!(failed["retry_at"].is_string());
        let health = state.handle(Op::Health, b"").await;
        assert_eq!(health.body["sweep_failing"], 1);
        assert_eq!(health.body["sweep_failures_total"], 1);
        assert!(
            !health.body.to_string().contains("stuck"),
            "no names in health"
        );
    }
}
