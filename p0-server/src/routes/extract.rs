//! What every handler reads from a call: the query string, the body the caller's proof
//! covered, and the request it names (if the caller may see it).

use crate::auth::Caller;
use crate::error::{bad_request, not_found, ApiResult, AppError};
use crate::lifecycle;
use crate::state::AppState;
use crate::store::RequestRecord;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use p0_core::RequestId;

/// A query string, refused in the API's own error shape (axum's answers in plain text).
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(ApiQuery(q)),
            Err(e) => Err(bad_request(format!(
                "invalid query string: {}",
                e.body_text()
            ))),
        }
    }
}

/// Parses a JSON body the caller's proof covered.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid request body: {e}")))
}

/// A request id from the path.
pub fn request_id(id: &str) -> ApiResult<RequestId> {
    RequestId::new(id).map_err(|e| bad_request(e.to_string()))
}

/// A request the caller may see. One that exists but is not theirs to see is answered as
/// missing, so nobody learns which ids exist.
pub async fn load(state: &AppState, caller: &Caller, id: &str) -> ApiResult<RequestRecord> {
    let id = request_id(id)?;
    let missing = || not_found("no such request");
    let rec = state.store.get(&id).await?.ok_or_else(missing)?;
    if !lifecycle::sees(&rec, caller.actor(), state.overseers()) {
        tracing::warn!(caller = caller.me(), request = %rec.id, "request hidden from a caller who may not see it");
        return Err(missing());
    }
    Ok(rec)
}
