//! The agent's HTTP surface: `/v1/provision`, `/v1/revoke`, `/v1/sweep`, `/v1/explain`,
//! `/v1/health`. Everything but health is authenticated by the server's HMAC; everything is
//! checked by [`p0_core::agent::Agent`].

use crate::AgentState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use p0_core::agent::{Op, Reply};
use p0_core::api::{HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use std::sync::Arc;

/// One router for the HTTP transport: the server's HMAC on everything but health
/// ([`p0_core::agent::Agent::authenticate_server`]), then
/// [`p0_core::agent::Agent::handle`].
pub fn build_router(state: Arc<AgentState>) -> Router {
    let mut router = Router::new();
    for op in Op::ALL {
        let method = if op == Op::Health { get } else { post };
        router = router.route(
            op.path(),
            method(
                move |State(state): State<Arc<AgentState>>,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    if op.needs_server_auth() {
                        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
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
                    response(state.handle(op, &body).await)
                },
            ),
        );
    }
    router.with_state(state)
}

/// A [`Reply`] as an HTTP response: its status, its body as JSON.
fn response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(reply.body)).into_response()
}
