//! The agent's HTTP surface: `/v1/provision`, `/v1/revoke`, `/v1/sweep`, `/v1/explain`,
//! `/v1/health`. Everything but health is authenticated by the server's HMAC; everything is
//! checked by [`p0_core::agent::Agent`]. A platform may add its own check of the caller
//! ([`Gates`]): on Cloud Run, a Google-signed ID token of a listed account.

use crate::google::{GoogleCall, GoogleCaller};
use crate::AgentState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use p0_core::agent::{Op, Reply};
use p0_core::api::{HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use std::sync::Arc;

/// What a platform checks of a caller besides the server's HMAC.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    /// Cloud Run: every call but health carries a Google ID token of one of these accounts;
    /// with one, the sweep needs no HMAC (Cloud Scheduler cannot sign it).
    pub google: Option<Arc<GoogleCaller>>,
}

/// One router for the HTTP transport: the server's HMAC on everything but health
/// ([`p0_core::agent::Agent::authenticate_server`]), then
/// [`p0_core::agent::Agent::handle`].
pub fn build_router(state: Arc<AgentState>) -> Router {
    build_router_with(state, Gates::default())
}

/// [`build_router`] with a platform's [`Gates`] in front of the HMAC.
pub fn build_router_with(state: Arc<AgentState>, gates: Gates) -> Router {
    let mut router = Router::new();
    for op in Op::ALL {
        let method = if op == Op::Health { get } else { post };
        let gates = gates.clone();
        router = router.route(
            op.path(),
            method(
                move |State(state): State<Arc<AgentState>>,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
                    let mut platform_says_sweep = false;
                    if let (true, Some(google)) = (op.needs_server_auth(), &gates.google) {
                        let checked = google
                            .check(
                                header(header::AUTHORIZATION.as_str()),
                                header(crate::google::SERVERLESS_AUTHORIZATION).is_some(),
                            )
                            .await;
                        match checked {
                            Ok(_) if op == Op::Sweep => platform_says_sweep = true,
                            Ok(GoogleCall::Verified(_)) => {}
                            Ok(GoogleCall::CheckedByCloudRun(_)) => {
                                return response(Reply::refusal(
                                    401,
                                    "unauthenticated",
                                    "a Google ID token without its signature is enough for the sweep only: send a signed one in Authorization (and Cloud Run's in X-Serverless-Authorization)",
                                ))
                            }
                            Err(refused) => return response(refused),
                        }
                    }
                    if op.needs_server_auth() && !platform_says_sweep {
                        if let Err(refused) = state.authenticate_server(
                            uri.path(),
                            header(HMAC_TIME_HEADER),
                            header(HMAC_SIG_HEADER),
                            &body,
                            Utc::now().timestamp(),
                        ) {
                            return response(refused);
                        }
                    }
                    let reply = state.handle(op, &body).await;
                    response(if platform_says_sweep {
                        counts_only(reply)
                    } else {
                        reply
                    })
                },
            ),
        );
    }
    router.route("/metrics", get(metrics)).with_state(state)
}

/// `GET /metrics`: the agent's gauges in Prometheus text, counts only (no names), as health:
/// expired users the sweeper could not remove yet, and failed attempts since start.
async fn metrics(State(state): State<Arc<AgentState>>) -> Response {
    let health = state.handle(Op::Health, b"").await.body;
    let n = |k: &str| health[k].as_u64().unwrap_or(0);
    let text = format!(
        "# HELP p0_agent_up The agent answers.\n# TYPE p0_agent_up gauge\np0_agent_up 1\n\
         # HELP p0_agent_sweep_failing Expired users the sweeper could not remove yet.\n# TYPE p0_agent_sweep_failing gauge\np0_agent_sweep_failing {}\n\
         # HELP p0_agent_sweep_failures_total Failed removals since the agent started.\n# TYPE p0_agent_sweep_failures_total counter\np0_agent_sweep_failures_total {}\n",
        n("sweep_failing"),
        n("sweep_failures_total"),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A sweep's reply to a caller the server's HMAC did not authenticate (Cloud Scheduler, the
/// Functions host's timer): how many users were removed, failed and deferred — not their
/// names, nor the database's messages, which the agent logs.
pub(crate) fn counts_only(reply: Reply) -> Reply {
    if reply.status != 200 {
        return Reply::refusal(
            reply.status,
            "sweep_failed",
            "the sweep failed: see the agent's log",
        );
    }
    let count = |k: &str| reply.body[k].as_array().map_or(0, Vec::len);
    Reply {
        status: 200,
        body: serde_json::json!({
            "removed": count("removed"),
            "failed": count("failed"),
            "deferred": count("deferred"),
        }),
    }
}

/// A [`Reply`] as an HTTP response: its status, its body as JSON.
pub(crate) fn response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(reply.body)).into_response()
}
