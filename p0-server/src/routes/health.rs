//! `GET /v1/health` and `GET /metrics`: unauthenticated, counts only.

use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::fmt::Write;
use std::sync::Arc;

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"ok": true}))
}

/// Prometheus text format: requests by status, leases active and awaiting revocation retries,
/// audit entries. Counts only; no names, no secrets.
pub async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let counts = state.store.counts(chrono::Utc::now()).await?;
    let mut out =
        String::from("# HELP p0_requests Requests by status.\n# TYPE p0_requests gauge\n");
    for (status, n) in &counts.by_status {
        let _ = writeln!(out, "p0_requests{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP p0_revocations_retrying Leases more than a minute past their expiry, whose revocation is being retried.\n# TYPE p0_revocations_retrying gauge\np0_revocations_retrying {}", counts.retrying);
    let _ = writeln!(out, "# HELP p0_audit_entries Entries in the audit log.\n# TYPE p0_audit_entries gauge\np0_audit_entries {}", counts.audit_entries);
    Ok(([("content-type", "text/plain; version=0.0.4")], out).into_response())
}
