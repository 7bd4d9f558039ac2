//! The one mapping of errors to HTTP answers: a status and `{code, message}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use p0_core::api::ApiError;

/// An error as the client sees it.
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

/// An error with a status, a stable code and a one-line message.
pub fn err(status: StatusCode, code: &'static str, msg: impl Into<String>) -> AppError {
    AppError(status, code, msg.into())
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

/// A handler's result.
pub type ApiResult<T> = Result<T, AppError>;
