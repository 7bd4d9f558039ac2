//! What a call asks for ([`Op`]) and what it gets back ([`Reply`]), whatever carries them, and
//! the refusals the checks answer with.

use crate::api::ApiError;

/// One of the agent's operations, whatever carries it: an HTTP path or a Lambda event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Creates an ephemeral user for an approved, verified request.
    Provision,
    /// Removes a user p0 created.
    Revoke,
    /// Removes every expired user it can.
    Sweep,
    /// What a query needs, as this agent extracts it.
    Explain,
    /// Liveness and the sweeper's counters; the only unauthenticated operation.
    Health,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 5] = [
        Op::Provision,
        Op::Revoke,
        Op::Sweep,
        Op::Explain,
        Op::Health,
    ];

    /// Its HTTP path.
    pub fn path(self) -> &'static str {
        match self {
            Op::Provision => "/v1/provision",
            Op::Revoke => "/v1/revoke",
            Op::Sweep => "/v1/sweep",
            Op::Explain => "/v1/explain",
            Op::Health => "/v1/health",
        }
    }

    /// The operation served at `path`.
    pub fn from_path(path: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.path() == path)
    }

    /// Whether a transport that authenticates the server by its HMAC must check it before
    /// running this operation (everything but health).
    pub fn needs_server_auth(self) -> bool {
        self != Op::Health
    }
}

/// The answer to one call: an HTTP status and a JSON body — the result, or an [`ApiError`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    /// The HTTP status (also carried by the Lambda transport).
    pub status: u16,
    /// The result, or an [`ApiError`] when `status` is not 200.
    pub body: serde_json::Value,
}

impl Reply {
    /// A refusal of the transport's own (a platform's authentication, say): logged, and
    /// answered as the core's refusals are, with a stable `code` and a one-line `message`.
    pub fn refusal(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Refusal::new(status, code, message).into()
    }

    /// A 200 with `value` as its body.
    pub(crate) fn ok<T: serde::Serialize>(value: T) -> Self {
        match serde_json::to_value(value) {
            Ok(body) => Self { status: 200, body },
            Err(e) => Refusal::new(500, "internal", e.to_string()).into(),
        }
    }
}

/// A refusal: logged with its detail, answered with a stable code.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<Refusal> for Reply {
    fn from(r: Refusal) -> Self {
        tracing::warn!(code = r.code, reason = %r.message, "agent refused a call");
        let body = serde_json::json!(ApiError {
            code: r.code.into(),
            message: r.message,
        });
        Self {
            status: r.status,
            body,
        }
    }
}

/// 400: the call is malformed.
pub(crate) fn bad(msg: impl Into<String>) -> Refusal {
    Refusal::new(400, "bad_request", msg)
}

/// 401: the caller is not who it must be.
pub(crate) fn unauthenticated(msg: impl Into<String>) -> Refusal {
    Refusal::new(401, "unauthenticated", msg)
}

/// 403: a check refused the call.
pub(crate) fn forbidden(msg: impl Into<String>) -> Refusal {
    Refusal::new(403, "forbidden", msg)
}

/// 409: the request id was used before.
pub(crate) fn replayed() -> Refusal {
    Refusal::new(409, "conflict", "request id already used")
}

/// 422: the query cannot be extracted.
pub(crate) fn unprocessable(msg: impl Into<String>) -> Refusal {
    Refusal::new(422, "refused", msg)
}

/// 503: the database (or the catalog) cannot be reached.
pub(crate) fn unavailable(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(503, "unavailable", e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_round_trip_and_only_health_is_open() {
        for op in Op::ALL {
            assert_eq!(Op::from_path(op.path()), Some(op));
            assert_eq!(op.needs_server_auth(), op != Op::Health);
        }
        assert_eq!(Op::from_path("/v1/provision/"), None);
        let op: Op = serde_json::from_str(r#""explain""#).unwrap();
        assert_eq!(op, Op::Explain);
    }

    #[test]
    fn refusals_become_api_errors() {
        let r = Reply::from(forbidden("no"));
        assert_eq!(r.status, 403);
        assert_eq!(
            r.body,
            serde_json::json!({"code": "forbidden", "message": "no"})
        );
        assert_eq!(Reply::from(replayed()).status, 409);
        assert_eq!(Reply::from(unprocessable("x")).body["code"], "refused");
    }
}
