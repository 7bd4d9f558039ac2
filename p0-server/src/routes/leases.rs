//! `POST /v1/requests/{id}/revoke`: ending a lease early.

use super::extract::load;
use crate::auth::Caller;
use crate::error::{internal, unavailable, ApiResult};
use crate::lifecycle;
use crate::reaper::revoked_detail;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use p0_core::api::{RequestView, RevokeCall};
use p0_core::provision::RevokeReport;
use std::sync::Arc;

/// Ends a lease early: its requester, an approver of its resource (whether or not the lease
/// needed approval) or an admin.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RequestView>> {
    let me = caller.me().to_string();
    let mut rec = load(&state, &caller, &id).await?;
    let oversees = lifecycle::oversees(&rec, caller.actor(), state.overseers());
    lifecycle::may_end(&rec, caller.actor(), oversees)?;
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
        .map_err(|e| unavailable(e.to_string()))?;
    lifecycle::revoked(&mut rec)?;
    state.store.update(&mut rec).await?;
    let detail = format!("by {me}: {}", revoked_detail(&grant.username, &report));
    state
        .store
        .audit(&me, "lease.revoked", Some(rec.id.as_str()), &detail)
        .await?;
    state.notify();
    Ok(Json(lifecycle::view(&rec, &me)))
}
