//! `POST /v1/requests?reuse=true`: a query that a live lease of the same requester, resource
//! and key already covers is answered with that lease instead of a new request, user and
//! approval. The agent's extraction decides what the query needs; the lease's own privileges
//! decide whether they cover it ([`lifecycle::covers`]); each reuse is audited with its SQL,
//! so every statement stays attributable to the person who ran it.

use crate::error::ApiResult;
use crate::lifecycle;
use crate::state::AppState;
use crate::store::RequestRecord;
use chrono::Utc;
use p0_core::{AccessRequest, Intent, PermissionSet};

/// How many of the requester's newest requests are looked at for a lease to reuse.
const LOOK_BACK: usize = 100;

/// The requester's live lease that covers `access` needing `needed`, audited as reused.
pub async fn covering_lease(
    state: &AppState,
    access: &AccessRequest,
    needed: &PermissionSet,
    needs_approval: bool,
) -> ApiResult<Option<RequestRecord>> {
    let now = Utc::now();
    let recs = state
        .store
        .list(Some(&access.requester), None, LOOK_BACK)
        .await?;
    let Some(lease) = recs.into_iter().find(|r| {
        lifecycle::covers(
            r,
            &access.requester,
            &access.resource,
            &access.public_key,
            needed,
            needs_approval,
            access.duration_secs,
            now,
        )
    }) else {
        return Ok(None);
    };
    let sql = match &access.intent {
        Intent::Query(q) => Some(q.as_str()),
        Intent::Role(_) => None,
    };
    let detail = serde_json::json!({
        "request": access.id,
        "sql": sql,
        "reason": access.reason,
        "privileges": needed.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    });
    state
        .store
        .audit(
            &access.requester,
            "lease.reused",
            Some(lease.id.as_str()),
            &detail.to_string(),
        )
        .await?;
    Ok(Some(lease))
}
