//! `GET /v1/resources`: the resources requests may name, for any authenticated caller.

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;

pub async fn resources(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    let list: Vec<_> = state
        .resources
        .values()
        .map(|(r, _)| serde_json::json!({"name": r.name, "engine": r.engine, "host": r.host, "port": r.port, "database": r.database}))
        .collect();
    Ok(Json(serde_json::json!(list)))
}
