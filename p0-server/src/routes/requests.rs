//! `POST /v1/requests`, `GET /v1/requests` and `GET /v1/requests/{id}` (with its long poll,
//! which is also where the requester picks up an approved request).

use super::extract::{load, parse_body, request_id, ApiQuery};
use super::provision::provision;
use crate::auth::Caller;
use crate::error::{bad_request, conflict, forbidden, not_found, ApiResult};
use crate::lifecycle;
use crate::shown;
use crate::state::AppState;
use crate::store::RequestRecord;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use p0_core::api::{CreateRequest, ExplainCall, RequestStatus, RequestView};
use p0_core::extract::Extraction;
use p0_core::seal::key_fingerprint;
use p0_core::{AccessRequest, Intent};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub async fn create(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let claims = &caller.claims;
    let req: CreateRequest = parse_body(&caller.body)?;
    let fp = key_fingerprint(req.public_key.as_bytes()).map_err(|e| bad_request(e.to_string()))?;
    if claims.nonce.as_deref() != Some(fp.as_str()) {
        return Err(forbidden(
            "the public key is not the one your login token commits to; run `p0 login` again",
        ));
    }
    req.signed
        .verify(req.public_key.as_bytes(), &req.signature)
        .map_err(|_| forbidden("the request signature does not verify"))?;
    let s = &req.signed;
    let Some((_, agent)) = state.resources.get(&s.resource) else {
        return Err(not_found(format!("unknown resource `{}`", s.resource)));
    };
    lifecycle::check_duration(s.duration_secs)?;
    if state.store.get(&s.request_id).await?.is_some() {
        return Err(conflict("request id already used"));
    }
    // The grant's permissions, and what routing decides on (locking reads count as writes).
    let (permissions, routing_set) = match &s.intent {
        Intent::Query(sql) => {
            let x: Extraction = agent
                .call("/v1/explain", &ExplainCall { sql: sql.clone() })
                .await?;
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
    let (status, message) = lifecycle::initial(&decision);
    let mut rec = RequestRecord {
        id: s.request_id.clone(),
        requester: access.requester.clone(),
        groups: claims.groups.clone(),
        signed: req.signed.clone(),
        signature: req.signature,
        public_key: req.public_key,
        status,
        permissions,
        decision: Some(decision),
        rule: routed.rule,
        approvals: Vec::new(),
        grant: None,
        message,
        created_at: Utc::now(),
        revoke_attempts: 0,
        next_attempt_at: None,
        claimed_until: None,
        version: 0,
    };
    state.store.insert(&mut rec).await?;
    let detail = shown::created_detail(&rec);
    state
        .store
        .audit(
            &rec.requester,
            "request.created",
            Some(rec.id.as_str()),
            &detail,
        )
        .await?;
    match status {
        RequestStatus::Provisioning => provision(&state, &mut rec, &caller.token, None).await?,
        RequestStatus::PendingApproval => state.webhook(shown::pending(&rec)),
        _ => {}
    }
    state.notify();
    Ok((
        StatusCode::CREATED,
        Json(lifecycle::view(&rec, claims.principal())),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    #[serde(default)]
    wait: Option<u64>,
}

/// One request; with `wait=N`, waits up to N (at most 60) seconds for it to be decided. The
/// requester's poll of an approved request provisions it.
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let me = caller.me().to_string();
    let id = request_id(&id)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(0).min(60));
    let mut rx = state.changed.subscribe();
    let mut stopping = state.stopping.subscribe();
    loop {
        let mut rec = load(&state, &caller, id.as_str()).await?;
        if rec.status == RequestStatus::Provisioning && rec.requester == me {
            provision(&state, &mut rec, &caller.token, Some(&caller.proof)).await?;
            rec = state.store.get(&id).await?.unwrap_or(rec);
        }
        let waiting = rec.status == RequestStatus::PendingApproval
            || rec.status == RequestStatus::Provisioning;
        // A stopping server answers at once: the client polls again, another replica or this
        // one restarted answers.
        if !waiting || tokio::time::Instant::now() >= deadline || state.is_stopping() {
            return Ok(Json(lifecycle::view(&rec, &me)));
        }
        tokio::select! {
            _ = tokio::time::timeout_at(deadline, rx.changed()) => {}
            _ = stopping.changed() => {}
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    mine: bool,
    /// At most this many records are read (default [`PAGE`], at most [`MAX_PAGE`]).
    #[serde(default)]
    limit: Option<usize>,
    /// Only records made before this time (the previous page's `x-p0-next-before`).
    #[serde(default)]
    before: Option<chrono::DateTime<Utc>>,
}

/// Records read per page by default, and at most.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

/// The header that carries the next page's `before`, when there may be one.
pub const NEXT_PAGE: &str = "x-p0-next-before";

/// The requests the caller may see (their own only with `mine=true`), newest first, one page
/// at a time: a page reads `limit` records through an index, whatever the history's length,
/// and says where the next one starts (`x-p0-next-before`) when it was full.
pub async fn list(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<ListQuery>,
    caller: Caller,
) -> ApiResult<Response> {
    let me = caller.me().to_string();
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let recs = state
        .store
        .list(q.mine.then_some(me.as_str()), q.before, limit)
        .await?;
    let next = (recs.len() == limit)
        .then(|| recs.last().map(|r| r.created_at.to_rfc3339()))
        .flatten();
    let overseers = state.overseers();
    let views: Vec<RequestView> = recs
        .iter()
        .filter(|r| lifecycle::sees(r, caller.actor(), overseers))
        .map(|r| lifecycle::view(r, &me))
        .collect();
    let mut response = Json(views).into_response();
    if let Some(next) = next.and_then(|n| n.parse().ok()) {
        response.headers_mut().insert(NEXT_PAGE, next);
    }
    Ok(response)
}
