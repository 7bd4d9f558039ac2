//! `GET /v1/health` and `GET /metrics`: unauthenticated, counts only.

use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::fmt::Write;
use std::sync::Arc;

/// Liveness: the process answers.
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"ok": true}))
}

/// Readiness: the store answers, and so does every resource's agent (each within 3 s). 503
/// names what is not ready; the reason goes to the log.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let within = std::time::Duration::from_secs(3);
    let store = match tokio::time::timeout(within, state.store.counts(chrono::Utc::now())).await {
        Ok(Ok(_)) => "ok".to_string(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "readiness: the store is unavailable");
            "unavailable".into()
        }
        Err(_) => "no answer in time".into(),
    };
    let mut agents = serde_json::Map::new();
    for (name, (config, agent)) in &state.resources {
        let said = match agent.health(within).await {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                let at = config
                    .agent_url
                    .as_deref()
                    .or(config.agent_function.as_deref());
                tracing::error!(resource = %name, agent = at.unwrap_or_default(), error = %e, "readiness: agent unreachable");
                "unreachable".into()
            }
        };
        agents.insert(name.to_string(), serde_json::Value::String(said));
    }
    let ready = store == "ok" && agents.values().all(|v| v == "ok");
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({"ready": ready, "store": store, "agents": agents})),
    )
        .into_response()
}

/// The API's OpenAPI 3.1 description.
pub async fn openapi() -> Response {
    (
        [("content-type", "application/json")],
        include_str!("../../api/openapi.json"),
    )
        .into_response()
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
