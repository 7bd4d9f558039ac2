//! The access log: one line per call at info (method, path without its query, status,
//! milliseconds), in a span that carries the call's request id. The id is the caller's
//! `x-request-id` when it is a plain token (letters, digits, `-`, `_`, `.`; at most 64), else
//! one made here; it is echoed in the answer, so a user's error and the server's log meet.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header that carries the request id.
pub const REQUEST_ID: &str = "x-request-id";

fn plain(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The middleware.
pub async fn access_log(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| plain(v))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let span = tracing::info_span!("call", request_id = %id);
    let started = std::time::Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            %method,
            path = %path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "access"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn only_a_plain_token_is_taken_as_the_request_id() {
        assert!(plain("3f2a-9c_1.x"));
        for bad in ["", "a b", "a\nb", "x\u{1b}[2J", &"a".repeat(65)] {
            assert!(!plain(bad), "{bad:?}");
        }
    }
}
