//! The development issuer's routes (`/dev/…`), present only when it is enabled.

use crate::error::{bad_request, internal, not_found, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use p0_core::DangerousDevIssuer;
use serde::Deserialize;
use std::sync::Arc;

fn dev_issuer(state: &AppState) -> ApiResult<&DangerousDevIssuer> {
    state
        .dev_issuer
        .as_deref()
        .ok_or_else(|| not_found("no dev issuer"))
}

pub async fn discovery(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    let dev = dev_issuer(&state)?;
    Ok(Json(dev.discovery()))
}

pub async fn jwks(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    let dev = dev_issuer(&state)?;
    Ok(Json(dev.jwks().clone()))
}

#[derive(Debug, Deserialize)]
pub struct DevTokenRequest {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    nonce: String,
}

pub async fn token(
    State(state): State<Arc<AppState>>,
    Json(req): Json<DevTokenRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let dev = dev_issuer(&state)?;
    if req.user.is_empty() || req.user.len() > 200 {
        return Err(bad_request("invalid user"));
    }
    let token = dev
        .issue(&req.user, &req.groups, &req.nonce, &state.audience)
        .map_err(internal)?;
    Ok(Json(
        serde_json::json!({ "id_token": token.expose_secret() }),
    ))
}
