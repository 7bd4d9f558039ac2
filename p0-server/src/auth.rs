//! Who is calling, and what they may see and end.
//!
//! Every `/v1` call carries the ID token as bearer **and** a proof of possession of the key the
//! token's nonce commits to ([`p0_core::proof`]): method, path with query, body and token,
//! signed moments ago, accepted once. A token seen elsewhere (by the agent, in a log, on the
//! wire) cannot act. Every refusal answers the same generic 401; the reason goes to the log.

use crate::error::{err, ApiResult, AppError};
use crate::state::AppState;
use crate::store::RequestRecord;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use p0_core::proof::{self, KEY_HEADER, PROOF_HEADER, PROOF_MAX_SKEW_SECS};
use p0_core::route::{Approver, Decision};
use p0_core::seal::key_fingerprint;
use p0_core::{IdClaims, Token};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

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

    /// Whether the caller is one of `list`.
    pub fn is_one_of(&self, list: &[Approver]) -> bool {
        list.iter()
            .any(|a| a.includes(self.claims.principal(), &self.claims.groups))
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
            .map_err(|e| refused(format_args!("token: {e}")))?;
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
        if !state
            .proofs
            .first_use(&format!("{fingerprint}.{}", claimed.jti), now)
        {
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

/// The proofs accepted in the last `2 × PROOF_MAX_SKEW_SECS` seconds, by key and `jti`: a
/// proof is accepted once. Past that window the freshness check refuses it anyway, so memory
/// stays bounded by the calls of one window. Per server process: see SECURITY.md.
#[derive(Debug, Default)]
pub struct SeenProofs {
    inner: Mutex<Seen>,
}

/// The ids, and when each may be forgotten, oldest first.
#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<String>,
    queue: VecDeque<(i64, String)>,
}

impl SeenProofs {
    /// Records `id` at `now`; false when it was seen within the window.
    pub fn first_use(&self, id: &str, now: i64) -> bool {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Seen { ids: set, queue } = &mut *guard;
        while let Some((until, old)) = queue.front() {
            if *until >= now {
                break;
            }
            set.remove(old);
            queue.pop_front();
        }
        if !set.insert(id.to_string()) {
            return false;
        }
        queue.push_back((now + 2 * PROOF_MAX_SKEW_SECS, id.to_string()));
        true
    }
}

/// Whether the caller approves requests on the resource of `rec`: an approver of a rule that
/// covers it, or one of the approvers its own decision names.
fn approves(state: &AppState, rec: &RequestRecord, caller: &Caller) -> bool {
    if caller.is_one_of(&state.router.approvers_of(&rec.signed.resource)) {
        return true;
    }
    match &rec.decision {
        Some(Decision::NeedsApproval { approvers, .. }) => caller.is_one_of(approvers),
        _ => false,
    }
}

/// Whether the caller oversees `rec`: an admin, or an approver of its resource. They see it
/// and may end its lease, whoever asked and however it was approved.
pub fn oversees(state: &AppState, rec: &RequestRecord, caller: &Caller) -> bool {
    caller.is_one_of(&state.admins) || approves(state, rec, caller)
}

/// Whether the caller may see `rec`: its requester, or someone who oversees it.
pub fn sees(state: &AppState, rec: &RequestRecord, caller: &Caller) -> bool {
    rec.requester == caller.me() || oversees(state, rec, caller)
}

/// Refuses a caller who is not an auditor.
pub fn auditor(state: &AppState, caller: &Caller) -> ApiResult<()> {
    if caller.is_one_of(&state.auditors) {
        return Ok(());
    }
    tracing::warn!(caller = caller.me(), "audit log refused: not an auditor");
    Err(err(
        StatusCode::FORBIDDEN,
        "forbidden",
        "the audit log is for auditors",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_id_is_accepted_once_within_the_window() {
        let seen = SeenProofs::default();
        assert!(seen.first_use("k.a", 1000));
        assert!(!seen.first_use("k.a", 1001));
        assert!(seen.first_use("k.b", 1001));
        // Past the window the entry is dropped (the freshness check refuses such a proof).
        assert!(seen.first_use("k.a", 1000 + 2 * PROOF_MAX_SKEW_SECS + 1));
        let guard = seen.inner.lock().unwrap();
        assert_eq!(guard.ids.len(), guard.queue.len());
    }
}
