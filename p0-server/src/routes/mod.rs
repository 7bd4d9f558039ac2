//! The `/v1` API, and the development issuer's routes when enabled, one family per module.
//! Handlers only translate HTTP: callers are authenticated in `auth` (token and proof of
//! possession), what may happen to a request is the `lifecycle`'s, and errors are mapped to
//! HTTP once, in `error`.

pub(crate) mod approvals;
mod audit;
mod dev;
mod extract;
mod health;
pub(crate) mod leases;
mod provision;
mod requests;
mod resources;
mod reuse;

use crate::error::err;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// The server's router.
pub fn build_router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/v1/health", get(health::health))
        .route("/v1/health/ready", get(health::ready))
        .route("/v1/openapi.json", get(health::openapi))
        .route("/v1/requests", post(requests::create).get(requests::list))
        .route("/v1/requests/{id}", get(requests::get_one))
        .route("/v1/requests/{id}/approve", post(approvals::approve))
        .route("/v1/requests/{id}/deny", post(approvals::deny))
        .route("/v1/requests/{id}/revoke", post(leases::revoke))
        .route("/v1/audit", get(audit::audit))
        .route("/v1/resources", get(resources::resources))
        .route("/metrics", get(health::metrics))
        .route("/slack/interactions", post(crate::slack::interactions))
        .merge(crate::console::routes());
    if state.dev_issuer.is_some() {
        r = r
            .route("/dev/.well-known/openid-configuration", get(dev::discovery))
            .route("/dev/jwks", get(dev::jwks))
            .route("/dev/token", post(dev::token));
    }
    r.fallback(|| async { err(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            err(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(crate::access_log::access_log))
        .with_state(state)
}
