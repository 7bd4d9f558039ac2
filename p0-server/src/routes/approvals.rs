//! `POST /v1/requests/{id}/approve` and `/deny`, and the decisions themselves, which Slack's
//! buttons record the same way (`crate::slack`).

use super::extract::{load, parse_body};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::lifecycle::{self, Actor, Approved};
use crate::shown;
use crate::state::AppState;
use crate::store::RequestRecord;
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
    let mut rec = load(&state, &caller, &id).await?;
    let body: ApproveBody = parse_body(&caller.body)?;
    record_approval(&state, &mut rec, caller.actor(), &body.digest, "api").await?;
    Ok(Json(lifecycle::view(&rec, caller.me())))
}

pub async fn deny(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let mut rec = load(&state, &caller, &id).await?;
    record_denial(&state, &mut rec, caller.actor(), "api").await?;
    Ok(Json(lifecycle::view(&rec, caller.me())))
}

/// `who`'s approval of the content whose digest is `seen`, through `via` (`api`, `slack`):
/// the lifecycle's checks, the store (a conflicting update fails), the audit log, and the
/// webhook once the count is complete.
pub(crate) async fn record_approval(
    state: &AppState,
    rec: &mut RequestRecord,
    who: Actor<'_>,
    seen: &str,
    via: &str,
) -> ApiResult<Approved> {
    let approved = lifecycle::approve(rec, who, seen, Utc::now())?;
    // Announced only once the store has it: an approval that loses a race is not announced.
    state.store.update(rec).await?;
    if approved.complete() {
        state.webhook(shown::decided(rec, who.name, "approved"));
    }
    let detail = serde_json::json!({
        "approvals": approved.valid,
        "needed": approved.needed,
        "digest": approved.digest,
        "via": via,
    });
    state
        .store
        .audit(
            who.name,
            "request.approved",
            Some(rec.id.as_str()),
            &detail.to_string(),
        )
        .await?;
    state.notify();
    Ok(approved)
}

/// `who`'s denial, through `via`, recorded as an approval is.
pub(crate) async fn record_denial(
    state: &AppState,
    rec: &mut RequestRecord,
    who: Actor<'_>,
    via: &str,
) -> ApiResult<()> {
    lifecycle::deny(rec, who)?;
    state.store.update(rec).await?;
    let detail = serde_json::json!({ "via": via });
    state
        .store
        .audit(
            who.name,
            "request.denied",
            Some(rec.id.as_str()),
            &detail.to_string(),
        )
        .await?;
    state.webhook(shown::decided(rec, who.name, "denied"));
    state.notify();
    Ok(())
}
