//! `POST /v1/requests`, `GET /v1/requests` and `GET /v1/requests/{id}` (with its long poll,
//! which is also where the requester picks up an approved request).

use super::extract::{load, parse_body, request_id, ApiQuery};
use super::provision::provision;
use crate::auth::Caller;
use crate::error::{bad_request, conflict, forbidden, not_found, ApiResult};
use crate::lifecycle;
use crate::shown;
use crate::state::AppState;
use crate::store::{Cursor, RequestRecord};
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

#[derive(Debug, Deserialize)]
pub struct CreateQuery {
    /// Answer with a live lease that already covers the query, if there is one.
    #[serde(default)]
    reuse: bool,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<CreateQuery>,
    caller: Caller,
) -> ApiResult<Response> {
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
    if s.reason.chars().count() > MAX_REASON_CHARS {
        return Err(bad_request(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    if state.store.get(&s.request_id).await?.is_some() {
        return Err(conflict("request id already used"));
    }
    // The grant's permissions, and what routing decides on (locking reads count as writes).
    let (permissions, routing_set) = match &s.intent {
        Intent::Query(sql) => {
            let x: Extraction = agent
                .call(
                    "/v1/explain",
                    &ExplainCall {
                        sql: sql.clone(),
                        role: None,
                    },
                )
                .await?;
            let routing_set = x.routing_set();
            (Some(x.permissions), routing_set)
        }
        // The agent says now whether it would hand the role out: nobody is asked to approve
        // what it would refuse.
        Intent::Role(role) => {
            let _: Extraction = agent
                .call(
                    "/v1/explain",
                    &ExplainCall {
                        sql: String::new(),
                        role: Some(role.clone()),
                    },
                )
                .await?;
            (None, Default::default())
        }
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
    if let (true, Some(needed)) = (q.reuse, &permissions) {
        let denied = matches!(decision, p0_core::Decision::Deny { .. });
        let needs_approval = matches!(decision, p0_core::Decision::NeedsApproval { .. });
        if !denied {
            let lease = super::reuse::covering_lease(&state, &access, needed, needs_approval);
            if let Some(lease) = lease.await? {
                let mut r = Json(lifecycle::view(&lease, claims.principal())).into_response();
                r.headers_mut()
                    .insert(REUSED, axum::http::HeaderValue::from_static("true"));
                return Ok(r);
            }
        }
    }
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
        RequestStatus::PendingApproval => state.announce_pending(&rec),
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
    /// At most this many records are shown (default [`PAGE`], at most [`MAX_PAGE`]).
    #[serde(default)]
    limit: Option<usize>,
    /// Where the page starts: the previous page's `x-p0-next-before`, or an RFC 3339 time
    /// (the records made before it).
    #[serde(default)]
    before: Option<String>,
}

/// Records shown per page by default, and at most.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;
/// Store pages an overseer's page may read to find records they may see.
const SCAN_PAGES: usize = 10;

/// The longest reason a request may give (it is shown to approvers, in chat and the console).
pub const MAX_REASON_CHARS: usize = 1000;

/// The header that says a create was answered with a live lease that covers it.
pub const REUSED: &str = "x-p0-reused";

/// The header that carries the next page's `before`, when there may be one.
pub const NEXT_PAGE: &str = "x-p0-next-before";

/// The requests the caller may see (their own only with `mine=true`), newest first, one page
/// at a time: a page reads its records through an index, whatever the history's length, and
/// says where the next one starts (`x-p0-next-before`) when there may be one. The cursor
/// names a record the caller was shown, never one they may not see: someone who oversees no
/// resource has the store read only their own requests; an overseer's page reads on until it
/// is full (at most [`SCAN_PAGES`] store pages, past which the cursor says where reading
/// stopped, as a time and an id, and nothing of what was there).
pub async fn list(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<ListQuery>,
    caller: Caller,
) -> ApiResult<Response> {
    let me = caller.me().to_string();
    let who = caller.actor();
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let mut cursor = match q.before.as_deref() {
        None => None,
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            bad_request(
                "`before` is neither a page cursor (`x-p0-next-before`) nor an RFC 3339 time",
            )
        })?),
    };
    let overseers = state.overseers();
    let oversees_any = who.is_one_of(&state.admins)
        || state
            .resources
            .keys()
            .any(|r| who.is_one_of(&state.router.approvers_of(r)));
    let requester = (q.mine || !oversees_any).then_some(me.as_str());
    let mut views: Vec<RequestView> = Vec::new();
    let mut next = None;
    for scanned in 1..=SCAN_PAGES {
        // One more than a page: whether another follows is known, not guessed.
        let mut recs = state
            .store
            .list(requester, cursor.as_ref(), limit + 1)
            .await?;
        let more = recs.len() > limit;
        recs.truncate(limit);
        cursor = recs.last().map(Cursor::after);
        for (i, r) in recs.iter().enumerate() {
            if !lifecycle::sees(r, who, overseers) {
                continue;
            }
            views.push(lifecycle::view(r, &me));
            if views.len() == limit {
                if more || i + 1 < recs.len() {
                    next = Some(Cursor::after(r));
                }
                break;
            }
        }
        if views.len() == limit || !more {
            break;
        }
        if scanned == SCAN_PAGES {
            next = cursor.take();
        }
    }
    let mut response = Json(views).into_response();
    if let Some(next) = next.and_then(|c| c.render().parse().ok()) {
        response.headers_mut().insert(NEXT_PAGE, next);
    }
    Ok(response)
}
