//! `GET /v1/audit`: the audit log, for auditors.

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::lifecycle;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use p0_core::audit::AuditEntry;
use std::sync::Arc;

pub async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    lifecycle::auditor(caller.actor(), &state.auditors)?;
    Ok(Json(state.store.audit_log().await?))
}
