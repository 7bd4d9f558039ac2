//! The one error type of the server and its one mapping to HTTP answers: a status and
//! `{code, message}`. Handlers return [`ApiResult`]; lifecycle refusals, agent errors and store
//! failures become an [`AppError`] here and nowhere else.

use crate::agent_client::AgentError;
use crate::lifecycle::Refusal;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use p0_core::api::ApiError;

/// An error as the client sees it: a status, a stable code and a one-line message.
#[derive(Debug)]
pub struct AppError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(ApiError {
                code: self.1.into(),
                message: self.2,
            }),
        )
            .into_response()
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<T, AppError>;

/// An error with a status, a stable code and a one-line message.
pub fn err(status: StatusCode, code: &'static str, msg: impl Into<String>) -> AppError {
    AppError(status, code, msg.into())
}

/// 400 `bad_request`.
pub fn bad_request(msg: impl Into<String>) -> AppError {
    err(StatusCode::BAD_REQUEST, "bad_request", msg)
}

/// 403 `forbidden`.
pub fn forbidden(msg: impl Into<String>) -> AppError {
    err(StatusCode::FORBIDDEN, "forbidden", msg)
}

/// 404 `not_found`.
pub fn not_found(msg: impl Into<String>) -> AppError {
    err(StatusCode::NOT_FOUND, "not_found", msg)
}

/// 409 `conflict`.
pub fn conflict(msg: impl Into<String>) -> AppError {
    err(StatusCode::CONFLICT, "conflict", msg)
}

/// 503 `unavailable`: an agent could not be reached or failed.
pub fn unavailable(msg: impl Into<String>) -> AppError {
    err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", msg)
}

/// An internal error: logged, and answered without detail.
pub fn internal(e: impl std::fmt::Display) -> AppError {
    tracing::error!(error = %e, "internal error");
    err(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        let msg = r.to_string();
        match r {
            Refusal::BadDuration => bad_request(msg),
            Refusal::NotAnApprover
            | Refusal::SelfApproval
            | Refusal::MayNotEnd
            | Refusal::NotAnAuditor => forbidden(msg),
            Refusal::NotApproved => err(StatusCode::FORBIDDEN, "denied", msg),
            Refusal::WrongStatus(_)
            | Refusal::NotAwaitingApproval
            | Refusal::DigestMismatch(_)
            | Refusal::AlreadyApproved => conflict(msg),
        }
    }
}

/// A store failure is internal, but for a record another request (or server replica) changed
/// first: 409, for the client to try again.
impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast_ref::<crate::store::Conflict>() {
            Some(c) => conflict(c.to_string()),
            None => internal(e),
        }
    }
}

/// The agent's answer to an explain: a refusal of the query is the requester's to fix (422),
/// anything else is the agent being unavailable (503).
impl From<AgentError> for AppError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Refused(_, m) => err(StatusCode::UNPROCESSABLE_ENTITY, "refused", m),
            AgentError::Unavailable(m) => unavailable(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p0_core::api::RequestStatus;

    #[test]
    fn refusals_keep_the_statuses_and_codes_clients_know() {
        let cases = [
            (Refusal::BadDuration, 400, "bad_request"),
            (Refusal::NotAnApprover, 403, "forbidden"),
            (Refusal::SelfApproval, 403, "forbidden"),
            (Refusal::MayNotEnd, 403, "forbidden"),
            (Refusal::NotAnAuditor, 403, "forbidden"),
            (Refusal::NotApproved, 403, "denied"),
            (Refusal::WrongStatus(RequestStatus::Active), 409, "conflict"),
            (Refusal::NotAwaitingApproval, 409, "conflict"),
            (Refusal::AlreadyApproved, 409, "conflict"),
        ];
        for (r, status, code) in cases {
            let msg = r.to_string();
            let AppError(s, c, m) = r.into();
            assert_eq!((s.as_u16(), c, m), (status, code, msg));
        }
    }
}
