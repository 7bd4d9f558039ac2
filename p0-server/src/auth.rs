//! Who is calling. (What they may see and do is the lifecycle's: `lifecycle::visibility`.)
//!
//! Every `/v1` call carries the ID token as bearer **and** a proof of possession of the key the
//! token's nonce commits to ([`p0_core::proof`]): method, path with query, body and token,
//! signed moments ago, accepted once. A token seen elsewhere (by the agent, in a log, on the
//! wire) cannot act. Every refusal answers the same generic 401; the reason goes to the log.

use crate::error::{err, AppError};
use crate::lifecycle::Actor;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use p0_core::proof::{self, KEY_HEADER, PROOF_HEADER, PROOF_MAX_SKEW_SECS};
use p0_core::seal::key_fingerprint;
use p0_core::{IdClaims, Token};
use std::sync::Arc;

/// An authenticated call: who, with what token and proof, and the body the proof covers.
#[derive(Debug)]
pub struct Caller {
    /// The verified claims of the ID token.
    pub claims: IdClaims,
    /// The ID token, forwarded to the agent only on the caller's own behalf.
    pub token: String,
    /// The proof header as received, forwarded to the agent with a pickup.
    pub proof: String,
    /// The request body (empty for a GET).
    pub body: Bytes,
}

impl Caller {
    /// The name actions are attributed to.
    pub fn me(&self) -> &str {
        self.claims.principal()
    }

    /// The caller as the lifecycle sees them: their name and groups.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            name: self.claims.principal(),
            groups: &self.claims.groups,
        }
    }
}

/// The one answer to every authentication failure.
fn refused(detail: impl std::fmt::Display) -> AppError {
    tracing::warn!(detail = %detail, "call refused: not authenticated");
    err(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "not authenticated: a valid login token and a fresh proof of its key are needed (run `p0 login` if this persists)",
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl FromRequest<Arc<AppState>> for Caller {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, AppError> {
        let (parts, body) = req.into_parts();
        let token = header(&parts.headers, "authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| refused("no bearer token"))?
            .to_string();
        let claims = state
            .verifier
            .verify(&Token::new(token.clone()))
            .await
            .map_err(|e| {
                if e.is_for_caller() {
                    // A cause the caller can fix (log in against the right issuer, again),
                    // which gives nothing away.
                    tracing::warn!(detail = %e, "call refused: not authenticated");
                    err(
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        format!("not authenticated: {e} (run `p0 login`)"),
                    )
                } else {
                    refused(format_args!("token: {e}"))
                }
            })?;
        let key = header(&parts.headers, KEY_HEADER)
            .ok_or_else(|| refused("no key header"))
            .and_then(|k| {
                proof::parse_key_header(k).map_err(|e| refused(format_args!("key header: {e}")))
            })?;
        let fingerprint =
            key_fingerprint(&key).map_err(|e| refused(format_args!("key header: {e}")))?;
        if claims.nonce.as_deref() != Some(fingerprint.as_str()) {
            return Err(refused(format_args!(
                "the token of `{}` does not commit to the key of the proof",
                claims.principal()
            )));
        }
        let proof = header(&parts.headers, PROOF_HEADER)
            .ok_or_else(|| refused("no proof header"))?
            .to_string();
        let method = parts.method.clone();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        // The token is checked before the body is read: an unauthenticated caller cannot
        // make the server read a body.
        let body = match Bytes::from_request(Request::from_parts(parts, body), state).await {
            Ok(b) => b,
            Err(e) => {
                let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "too_large"
                } else {
                    "bad_request"
                };
                return Err(err(e.status(), code, e.body_text()));
            }
        };
        let now = chrono::Utc::now().timestamp();
        let claimed = proof::verify(
            &key,
            &proof,
            method.as_str(),
            &path,
            &body,
            &token,
            now,
            PROOF_MAX_SKEW_SECS,
        )
        .map_err(|e| refused(format_args!("proof of `{}`: {e}", claims.principal())))?;
        // A replica whose clock is right refuses the proof as stale once `iat` is more than
        // the skew behind; it is remembered a skew longer than that, counted from the later
        // of `iat` and this replica's clock (a proof made ahead of it stays fresh longer), so
        // replicas whose clocks differ by up to the skew still refuse its replay.
        let id = format!("{fingerprint}.{}", claimed.jti);
        let first = state
            .store
            .first_use(&id, now, now.max(claimed.iat) + 2 * PROOF_MAX_SKEW_SECS)
            .await
            .map_err(crate::error::internal)?;
        if !first {
            return Err(refused(format_args!(
                "proof of `{}`: replayed",
                claims.principal()
            )));
        }
        Ok(Caller {
            claims,
            token,
            proof,
            body,
        })
    }
}
