//! `POST /v1/requests/{id}/revoke`: ending a lease early.

use super::extract::load;
use crate::auth::Caller;
use crate::error::{internal, unavailable, ApiResult};
use crate::lifecycle::{self, Actor};
use crate::reaper::revoked_detail;
use crate::state::AppState;
use crate::store::RequestRecord;
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
    let mut rec = load(&state, &caller, &id).await?;
    end_lease(&state, &mut rec, caller.actor(), "api").await?;
    Ok(Json(lifecycle::view(&rec, caller.me())))
}

/// `who` ends the lease of `rec` through `via` (`api`, `console`): the lifecycle's check, the
/// agent's revocation, the store, the audit log.
pub(crate) async fn end_lease(
    state: &AppState,
    rec: &mut RequestRecord,
    who: Actor<'_>,
    via: &str,
) -> ApiResult<()> {
    let oversees = lifecycle::oversees(rec, who, state.overseers());
    lifecycle::may_end(rec, who, oversees)?;
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
    lifecycle::revoked(rec)?;
    state.store.update(rec).await?;
    let by = if via == "api" {
        format!("by {}", who.name)
    } else {
        format!("by {} via {via}", who.name)
    };
    let detail = format!("{by}: {}", revoked_detail(&grant.username, &report));
    state
        .store
        .audit(who.name, "lease.revoked", Some(rec.id.as_str()), &detail)
        .await?;
    state.notify();
    Ok(())
}
