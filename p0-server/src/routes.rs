//! The `/v1` API, and the development issuer's routes when enabled. Callers are authenticated
//! in `auth` (token and proof of possession); errors are mapped to HTTP once, in `error`.

use crate::auth::{auditor, oversees, sees, Caller};
use crate::error::{err, internal, ApiResult, AppError};
use crate::shown;
use crate::state::AppState;
use crate::store::{Approval, RequestRecord};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use p0_core::api::{
    ApproveBody, CreateRequest, GrantView, ProvisionCall, ProvisionResult, RequestStatus,
    RequestView, RevokeCall,
};
use p0_core::provision::{Access, ProvisionPlan, RevokeReport};
use p0_core::route::Decision;
use p0_core::seal::key_fingerprint;
use p0_core::{AccessRequest, Intent, RequestId};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// A query string, refused in the API's own error shape (axum's answers in plain text).
struct ApiQuery<T>(T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(ApiQuery(q)),
            Err(e) => Err(err(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("invalid query string: {}", e.body_text()),
            )),
        }
    }
}

/// The server's router.
pub fn build_router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route(
            "/v1/health",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .route("/v1/requests", post(create).get(list))
        .route("/v1/requests/{id}", get(get_one))
        .route("/v1/requests/{id}/approve", post(approve))
        .route("/v1/requests/{id}/deny", post(deny))
        .route("/v1/requests/{id}/revoke", post(revoke))
        .route("/v1/audit", get(audit))
        .route("/v1/resources", get(resources))
        .route("/metrics", get(metrics));
    if state.dev_issuer.is_some() {
        r = r
            .route("/dev/.well-known/openid-configuration", get(dev_discovery))
            .route("/dev/jwks", get(dev_jwks))
            .route("/dev/token", post(dev_token));
    }
    r.fallback(|| async { err(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            err(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .with_state(state)
}

/// Parses a JSON body the caller's proof covered.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid request body: {e}"),
        )
    })
}

fn view(rec: &RequestRecord, caller: &str) -> RequestView {
    RequestView {
        id: rec.id.clone(),
        requester: rec.requester.clone(),
        signed: rec.signed.clone(),
        status: rec.status,
        permissions: rec.permissions.clone(),
        decision: rec.decision.clone(),
        approvals: rec.valid_approvals(),
        grant: if caller == rec.requester {
            rec.grant.clone()
        } else {
            None
        },
        message: rec.message.clone(),
        created_at: rec.created_at,
        rule: rec.rule.clone(),
        digest: rec.digest(),
    }
}

async fn create(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let claims = &caller.claims;
    let req: CreateRequest = parse_body(&caller.body)?;
    let fp = key_fingerprint(req.public_key.as_bytes())
        .map_err(|e| err(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    if claims.nonce.as_deref() != Some(fp.as_str()) {
        return Err(err(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the public key is not the one your login token commits to; run `p0 login` again",
        ));
    }
    req.signed
        .verify(req.public_key.as_bytes(), &req.signature)
        .map_err(|_| {
            err(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the request signature does not verify",
            )
        })?;
    let s = &req.signed;
    let Some((_, agent)) = state.resources.get(&s.resource) else {
        return Err(err(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("unknown resource `{}`", s.resource),
        ));
    };
    if s.duration_secs == 0 || s.duration_secs > 86_400 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "duration must be between 1 second and 24 hours",
        ));
    }
    if state
        .store
        .get(&s.request_id)
        .await
        .map_err(internal)?
        .is_some()
    {
        return Err(err(
            StatusCode::CONFLICT,
            "conflict",
            "request id already used",
        ));
    }
    // The grant's permissions, and what routing decides on (locking reads count as writes).
    let (permissions, routing_set) = match &s.intent {
        Intent::Query(sql) => {
            let x: p0_core::extract::Extraction = agent
                .call(
                    "/v1/explain",
                    &p0_core::api::ExplainCall { sql: sql.clone() },
                )
                .await
                .map_err(|e| match e {
                    crate::AgentError::Refused(_, m) => {
                        err(StatusCode::UNPROCESSABLE_ENTITY, "refused", m)
                    }
                    crate::AgentError::Unavailable(m) => {
                        err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
                    }
                })?;
            let routing_set = x.routing_set();
            (Some(x.permissions), routing_set)
        }
        Intent::Role(_) => (None, Default::default()),
    };
    let access = AccessRequest {
        id: s.request_id.clone(),
        requester: claims.principal().to_string(),
        resource: s.resource.clone(),
        intent: s.intent.clone(),
        reason: s.reason.clone(),
        duration_secs: s.duration_secs,
        public_key: req.public_key.clone(),
    };
    let routed = state
        .router
        .route_explained(&access, &routing_set, &claims.groups);
    let decision = routed.decision;
    let (status, message) = match &decision {
        Decision::Approve { .. } => (RequestStatus::Provisioning, None),
        Decision::NeedsApproval { .. } => (RequestStatus::PendingApproval, None),
        Decision::Deny { reason } => (RequestStatus::Denied, Some(reason.clone())),
    };
    let mut rec = RequestRecord {
        id: s.request_id.clone(),
        requester: access.requester.clone(),
        groups: claims.groups.clone(),
        signed: req.signed.clone(),
        signature: req.signature,
        public_key: req.public_key,
        status,
        permissions,
        decision: Some(decision.clone()),
        rule: routed.rule,
        approvals: Vec::new(),
        grant: None,
        message,
        created_at: Utc::now(),
        revoke_attempts: 0,
        next_attempt_at: None,
    };
    state.store.insert(&rec).await.map_err(internal)?;
    let detail = shown::created_detail(&rec);
    state
        .store
        .audit(
            &rec.requester,
            "request.created",
            Some(rec.id.as_str()),
            &detail,
        )
        .await
        .map_err(internal)?;
    match status {
        RequestStatus::Provisioning => provision(&state, &mut rec, &caller.token, None).await?,
        RequestStatus::PendingApproval => state.webhook(shown::pending(&rec)),
        _ => {}
    }
    state.notify();
    Ok((StatusCode::CREATED, Json(view(&rec, claims.principal()))).into_response())
}

/// Asks the agent for the user, with the requester's own token. Called only on the
/// requester's behalf (creation or their poll), never with stored credentials. `pickup_proof`
/// is the requester's proof of the poll that picks up an approved request: the agent takes it
/// as their fresh act.
async fn provision(
    state: &AppState,
    rec: &mut RequestRecord,
    token: &str,
    pickup_proof: Option<&str>,
) -> ApiResult<()> {
    {
        let mut busy = state.provisioning.lock().await;
        if !busy.insert(rec.id.clone()) {
            return Ok(());
        }
    }
    let result = provision_locked(state, rec, token, pickup_proof).await;
    state.provisioning.lock().await.remove(&rec.id);
    result
}

async fn provision_locked(
    state: &AppState,
    rec: &mut RequestRecord,
    token: &str,
    pickup_proof: Option<&str>,
) -> ApiResult<()> {
    let Some((_, agent)) = state.resources.get(&rec.signed.resource) else {
        return Err(err(StatusCode::NOT_FOUND, "not_found", "unknown resource"));
    };
    if let Some(Decision::NeedsApproval { count, .. }) = &rec.decision {
        // Approvals count only for what the approvers saw: if the request changed since,
        // it waits for approval again.
        if (rec.valid_approvals().len() as u32) < *count {
            rec.status = RequestStatus::PendingApproval;
            rec.message =
                Some("the request changed after it was approved; it needs approval again".into());
            state.store.update(rec).await.map_err(internal)?;
            state
                .store
                .audit(
                    "system",
                    "request.approvals_void",
                    Some(rec.id.as_str()),
                    &rec.digest(),
                )
                .await
                .map_err(internal)?;
            state.webhook(shown::pending(rec));
            state.notify();
            return Ok(());
        }
    }
    let max = match &rec.decision {
        Some(Decision::Approve { max_duration } | Decision::NeedsApproval { max_duration, .. }) => {
            max_duration.as_secs()
        }
        _ => {
            return Err(err(
                StatusCode::FORBIDDEN,
                "denied",
                "request is not approved",
            ))
        }
    };
    let secs = rec.signed.duration_secs.min(max);
    let access = match (&rec.signed.intent, &rec.permissions) {
        (Intent::Query(_), Some(set)) => Access::Permissions(set.clone()),
        (Intent::Role(r), _) => Access::Role(r.clone()),
        _ => return Err(internal("query request without permissions")),
    };
    let call = ProvisionCall {
        plan: ProvisionPlan {
            request_id: rec.id.clone(),
            requester: rec.requester.clone(),
            resource: rec.signed.resource.clone(),
            access,
            expires_at: Utc::now() + chrono::TimeDelta::seconds(secs as i64),
        },
        id_token: token.to_string(),
        public_key: rec.public_key.clone(),
        signed: rec.signed.clone(),
        signature: rec.signature.clone(),
        pickup_proof: pickup_proof.map(str::to_string),
    };
    match agent
        .call::<_, ProvisionResult>("/v1/provision", &call)
        .await
    {
        Ok(r) => {
            rec.status = RequestStatus::Active;
            rec.grant = Some(GrantView {
                username: r.username.clone(),
                sealed_password: r.sealed_password,
                role: r.role,
                expires_at: r.expires_at,
            });
            state.store.update(rec).await.map_err(internal)?;
            let detail = format!("user {} until {}", r.username, r.expires_at.to_rfc3339());
            state
                .store
                .audit("system", "lease.created", Some(rec.id.as_str()), &detail)
                .await
                .map_err(internal)?;
        }
        Err(e) => {
            rec.status = RequestStatus::Failed;
            rec.message = Some(e.to_string());
            state.store.update(rec).await.map_err(internal)?;
            state
                .store
                .audit(
                    "system",
                    "lease.failed",
                    Some(rec.id.as_str()),
                    &e.to_string(),
                )
                .await
                .map_err(internal)?;
        }
    }
    state.notify();
    Ok(())
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    #[serde(default)]
    wait: Option<u64>,
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let me = caller.me().to_string();
    let id = RequestId::new(id)
        .map_err(|e| err(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(0).min(60));
    let mut rx = state.changed.subscribe();
    loop {
        let mut rec = load(&state, &caller, id.as_str()).await?;
        if rec.status == RequestStatus::Provisioning && rec.requester == me {
            provision(&state, &mut rec, &caller.token, Some(&caller.proof)).await?;
            rec = state.store.get(&id).await.map_err(internal)?.unwrap_or(rec);
        }
        let waiting = rec.status == RequestStatus::PendingApproval
            || rec.status == RequestStatus::Provisioning;
        if !waiting || tokio::time::Instant::now() >= deadline {
            return Ok(Json(view(&rec, &me)));
        }
        let _ = tokio::time::timeout_at(deadline, rx.changed()).await;
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    mine: bool,
}

/// The requests the caller may see (their own only with `mine=true`).
async fn list(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<ListQuery>,
    caller: Caller,
) -> ApiResult<Json<Vec<RequestView>>> {
    let me = caller.me().to_string();
    let recs = state
        .store
        .list(q.mine.then_some(me.as_str()))
        .await
        .map_err(internal)?;
    Ok(Json(
        recs.iter()
            .filter(|r| sees(&state, r, &caller))
            .map(|r| view(r, &me))
            .collect(),
    ))
}

/// Checks that the caller may approve `rec`; returns how many approvals it needs.
fn may_approve(rec: &RequestRecord, caller: &Caller) -> ApiResult<u32> {
    match &rec.decision {
        Some(Decision::NeedsApproval {
            approvers,
            count,
            allow_self_approval,
            ..
        }) => {
            let me = caller.me();
            if !caller.is_one_of(approvers) {
                return Err(err(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "you are not an approver of this request",
                ));
            }
            if me == rec.requester && !allow_self_approval {
                return Err(err(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "you cannot approve your own request",
                ));
            }
            Ok(*count)
        }
        _ => Err(err(
            StatusCode::CONFLICT,
            "conflict",
            "this request does not wait for approval",
        )),
    }
}

/// A request the caller may see. One that exists but is not theirs to see is answered as
/// missing, so nobody learns which ids exist.
async fn load(state: &AppState, caller: &Caller, id: &str) -> ApiResult<RequestRecord> {
    let id = RequestId::new(id)
        .map_err(|e| err(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let missing = || err(StatusCode::NOT_FOUND, "not_found", "no such request");
    let rec = state
        .store
        .get(&id)
        .await
        .map_err(internal)?
        .ok_or_else(missing)?;
    if !sees(state, &rec, caller) {
        tracing::warn!(caller = caller.me(), request = %rec.id, "request hidden from a caller who may not see it");
        return Err(missing());
    }
    Ok(rec)
}

/// Refuses with `conflict` unless the request is in `status`.
fn expect_status(rec: &RequestRecord, status: RequestStatus) -> ApiResult<()> {
    if rec.status != status {
        return Err(err(
            StatusCode::CONFLICT,
            "conflict",
            format!("request is {}", rec.status.as_str()),
        ));
    }
    Ok(())
}

async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let me = caller.me().to_string();
    let mut rec = load(&state, &caller, &id).await?;
    let body: ApproveBody = parse_body(&caller.body)?;
    expect_status(&rec, RequestStatus::PendingApproval)?;
    let count = may_approve(&rec, &caller)?;
    let digest = rec.digest();
    if body.digest != digest {
        tracing::warn!(caller = %me, request = %rec.id, "approval refused: it is for other content than the request's");
        return Err(err(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "the request is not what you approved (digest mismatch); look again with `p0 show {}`",
                rec.id
            ),
        ));
    }
    if rec
        .approvals
        .iter()
        .any(|a| a.by == me && a.digest == digest)
    {
        return Err(err(
            StatusCode::CONFLICT,
            "conflict",
            "you approved this request already",
        ));
    }
    // An approval of earlier content is replaced by this one.
    rec.approvals.retain(|a| a.by != me);
    rec.approvals.push(Approval {
        by: me.clone(),
        digest: digest.clone(),
        at: Utc::now(),
    });
    let valid = rec.valid_approvals().len() as u32;
    if valid >= count {
        rec.status = RequestStatus::Provisioning;
        state.webhook(shown::decided(&rec, &me, "approved"));
    }
    state.store.update(&rec).await.map_err(internal)?;
    state
        .store
        .audit(
            &me,
            "request.approved",
            Some(rec.id.as_str()),
            &serde_json::json!({"approvals": valid, "needed": count, "digest": digest}).to_string(),
        )
        .await
        .map_err(internal)?;
    state.notify();
    Ok(Json(view(&rec, &me)))
}

async fn deny(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let me = caller.me().to_string();
    let mut rec = load(&state, &caller, &id).await?;
    expect_status(&rec, RequestStatus::PendingApproval)?;
    if me != rec.requester {
        may_approve(&rec, &caller)?;
    }
    rec.status = RequestStatus::Denied;
    rec.message = Some(format!("denied by {me}"));
    state.store.update(&rec).await.map_err(internal)?;
    state
        .store
        .audit(&me, "request.denied", Some(rec.id.as_str()), "")
        .await
        .map_err(internal)?;
    state.webhook(shown::decided(&rec, &me, "denied"));
    state.notify();
    Ok(Json(view(&rec, &me)))
}

/// Ends a lease early: its requester, an approver of its resource (whether or not the lease
/// needed approval) or an admin.
async fn revoke(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let me = caller.me().to_string();
    let mut rec = load(&state, &caller, &id).await?;
    if me != rec.requester && !oversees(&state, &rec, &caller) {
        return Err(err(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the requester, an approver of the resource or an admin can end this lease",
        ));
    }
    expect_status(&rec, RequestStatus::Active)?;
    let Some(grant) = rec.grant.clone() else {
        return Err(internal("active request without grant"));
    };
    let Some((_, agent)) = state.resources.get(&rec.signed.resource) else {
        return Err(internal("resource gone"));
    };
    let report = agent
        .call::<_, RevokeReport>(
            "/v1/revoke",
            &RevokeCall {
                username: grant.username.clone(),
            },
        )
        .await
        .map_err(|e| {
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        })?;
    rec.status = RequestStatus::Revoked;
    if let Some(g) = rec.grant.as_mut() {
        g.sealed_password.clear();
    }
    state.store.update(&rec).await.map_err(internal)?;
    state
        .store
        .audit(
            &me,
            "lease.revoked",
            Some(rec.id.as_str()),
            &format!(
                "by {me}: {}",
                crate::reaper::revoked_detail(&grant.username, &report)
            ),
        )
        .await
        .map_err(internal)?;
    state.notify();
    Ok(Json(view(&rec, &me)))
}

async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<p0_core::audit::AuditEntry>>> {
    auditor(&state, &caller)?;
    Ok(Json(state.store.audit_log().await.map_err(internal)?))
}

async fn resources(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    let list: Vec<_> = state
        .resources
        .values()
        .map(|(r, _)| serde_json::json!({"name": r.name, "engine": r.engine, "host": r.host, "port": r.port, "database": r.database}))
        .collect();
    Ok(Json(serde_json::json!(list)))
}

/// Prometheus text format: requests by status, leases active and awaiting revocation retries,
/// audit entries. Counts only; no names, no secrets.
async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    use std::fmt::Write;
    let recs = state.store.list(None).await.map_err(internal)?;
    let mut by_status: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    let mut retrying = 0u64;
    for r in &recs {
        *by_status.entry(r.status.as_str()).or_default() += 1;
        if r.revoke_attempts > 0 && r.status == RequestStatus::Active {
            retrying += 1;
        }
    }
    let audit = state.store.audit_log().await.map_err(internal)?.len();
    let mut out =
        String::from("# HELP p0_requests Requests by status.\n# TYPE p0_requests gauge\n");
    for (status, n) in by_status {
        let _ = writeln!(out, "p0_requests{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP p0_revocations_retrying Expired leases whose revocation is being retried.\n# TYPE p0_revocations_retrying gauge\np0_revocations_retrying {retrying}");
    let _ = writeln!(out, "# HELP p0_audit_entries Entries in the audit log.\n# TYPE p0_audit_entries gauge\np0_audit_entries {audit}");
    Ok(([("content-type", "text/plain; version=0.0.4")], out).into_response())
}

fn dev_issuer(state: &AppState) -> ApiResult<&p0_core::DangerousDevIssuer> {
    state
        .dev_issuer
        .as_deref()
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "not_found", "no dev issuer"))
}

async fn dev_discovery(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    let dev = dev_issuer(&state)?;
    Ok(Json(dev.discovery()))
}

async fn dev_jwks(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    let dev = dev_issuer(&state)?;
    Ok(Json(dev.jwks().clone()))
}

#[derive(Debug, Deserialize)]
struct DevTokenRequest {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    nonce: String,
}

async fn dev_token(
    State(state): State<Arc<AppState>>,
    Json(req): Json<DevTokenRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let dev = dev_issuer(&state)?;
    if req.user.is_empty() || req.user.len() > 200 {
        return Err(err(StatusCode::BAD_REQUEST, "bad_request", "invalid user"));
    }
    let token = dev
        .issue(&req.user, &req.groups, &req.nonce, &state.audience)
        .map_err(internal)?;
    Ok(Json(
        serde_json::json!({ "id_token": token.expose_secret() }),
    ))
}
