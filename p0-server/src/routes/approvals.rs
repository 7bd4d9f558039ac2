//! `POST /v1/requests/{id}/approve` and `/deny`.

use super::extract::{load, parse_body};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::lifecycle;
use crate::shown;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use chrono::Utc;
use p0_core::api::{ApproveBody, RequestView};
use std::sync::Arc;

pub async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let me = caller.me().to_string();
    let mut rec = load(&state, &caller, &id).await?;
    let body: ApproveBody = parse_body(&caller.body)?;
    let approved = lifecycle::approve(&mut rec, caller.actor(), &body.digest, Utc::now())?;
    if approved.complete() {
        state.webhook(shown::decided(&rec, &me, "approved"));
    }
    state.store.update(&mut rec).await?;
    let detail = serde_json::json!({
        "approvals": approved.valid,
        "needed": approved.needed,
        "digest": approved.digest,
    });
    state
        .store
        .audit(
            &me,
            "request.approved",
            Some(rec.id.as_str()),
            &detail.to_string(),
        )
        .await?;
    state.notify();
    Ok(Json(lifecycle::view(&rec, &me)))
}

pub async fn deny(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let me = caller.me().to_string();
    let mut rec = load(&state, &caller, &id).await?;
    lifecycle::deny(&mut rec, caller.actor())?;
    state.store.update(&mut rec).await?;
    state
        .store
        .audit(&me, "request.denied", Some(rec.id.as_str()), "")
        .await?;
    state.webhook(shown::decided(&rec, &me, "denied"));
    state.notify();
    Ok(Json(lifecycle::view(&rec, &me)))
}
