//! The checks of a provision call that need nothing but the call, the agent's settings and
//! the clock: who the requester is, that the key and the request are theirs, that the
//! request is fresh, and that the plan is no wider than what they signed.

use super::extraction::QueryExtractor;
use super::reply::{bad, forbidden, unauthenticated, Refusal};
use crate::api::ProvisionCall;
use crate::provision::Access;
use crate::seal::key_fingerprint;
use crate::secret::Token;
use crate::types::{Intent, ResourceId};
use crate::verify::{IdClaims, IdTokenVerifier};
use chrono::Utc;

/// Longest a request may wait for approval and still be picked up with a fresh proof.
pub(crate) const MAX_PENDING_SECS: i64 = 7 * 86_400;

/// The requester's side of a call, in order: the resource is this agent's; the ID token
/// verifies with this agent's own issuer configuration and names the plan's requester; the
/// token commits to the key the password will be sealed to; the requester signed exactly
/// this request; it is fresh (or freshly picked up); the plan's expiry is in the window they
/// asked for. Returns the token's claims.
pub(crate) async fn verify_requester(
    call: &ProvisionCall,
    resource: &ResourceId,
    verifier: &dyn IdTokenVerifier,
    max_age: i64,
) -> Result<IdClaims, Refusal> {
    let plan = &call.plan;
    if plan.resource != *resource || call.signed.resource != *resource {
        return Err(forbidden(format!(
            "resource `{}` is not served by this agent",
            plan.resource
        )));
    }
    // 1. The requester's identity, with this agent's own issuer configuration.
    let claims = verifier
        .verify(&Token::new(call.id_token.clone()))
        .await
        .map_err(|e| {
            tracing::warn!(detail = %e, "token refused");
            unauthenticated("invalid identity token")
        })?;
    if claims.principal() != plan.requester {
        return Err(forbidden("the plan names another requester than the token"));
    }
    // 2. The token commits to the key the password will be sealed to.
    let fingerprint =
        key_fingerprint(call.public_key.as_bytes()).map_err(|e| bad(e.to_string()))?;
    if claims.nonce.as_deref() != Some(fingerprint.as_str()) {
        return Err(forbidden(
            "the public key is not the one the identity token commits to",
        ));
    }
    // 3. The requester signed exactly this request.
    call.signed
        .verify(call.public_key.as_bytes(), &call.signature)
        .map_err(|_| forbidden("the request signature does not verify"))?;
    if call.signed.request_id != plan.request_id {
        return Err(forbidden(
            "the plan is for another request than the signed one",
        ));
    }
    // Freshness: the signed request, or the requester's pickup of it after approval.
    let now = Utc::now();
    let signed_fresh = (now.timestamp() - call.signed.issued_at).abs() <= max_age;
    if !signed_fresh && !pickup_is_fresh(call, max_age, now.timestamp()) {
        return Err(forbidden(format!(
            "the signed request is not fresh (issued_at more than {max_age} s from now) and no fresh pickup proof comes with it"
        )));
    }
    if plan.expires_at <= now {
        return Err(forbidden("the plan's expiry has passed"));
    }
    let latest = now
        + chrono::TimeDelta::seconds(
            call.signed.duration_secs.min(i64::MAX as u64 / 2) as i64 + 60,
        );
    if plan.expires_at > latest {
        return Err(forbidden(
            "the expiry is later than the requester asked for",
        ));
    }
    Ok(claims)
}

/// Check 4: the plan is no wider than what the signed request needs — for a query, a subset
/// of what the agent's own extraction of the signed SQL finds; for a role, that very role.
pub(crate) async fn check_plan(
    call: &ProvisionCall,
    extractor: &QueryExtractor,
) -> Result<(), Refusal> {
    match (&call.signed.intent, &call.plan.access) {
        (Intent::Query(sql), Access::Permissions(set)) => {
            let needed = extractor.extract(sql).await.map_err(|e| {
                forbidden(format!("the signed query is not grantable: {}", e.message))
            })?;
            if !set.is_subset_of(&needed.permissions) {
                return Err(forbidden(
                    "the plan grants more than the signed query needs",
                ));
            }
            Ok(())
        }
        (Intent::Role(asked), Access::Role(planned)) if asked == planned => Ok(()),
        _ => Err(forbidden("the plan does not match the signed intent")),
    }
}

/// Whether the call carries the requester's fresh proof of their poll of this very request
/// (`GET /v1/requests/ID`), made with the key the token commits to and for the token that came
/// with the call: the requester's own act, which the server cannot make.
pub(crate) fn pickup_is_fresh(call: &ProvisionCall, max_age: i64, now: i64) -> bool {
    let Some(proof) = call.pickup_proof.as_deref() else {
        return false;
    };
    if now - call.signed.issued_at > MAX_PENDING_SECS || call.signed.issued_at - now > max_age {
        return false;
    }
    let Ok(claims) = crate::proof::open(call.public_key.as_bytes(), proof) else {
        return false;
    };
    let path = claims.htu.split('?').next().unwrap_or_default();
    claims.htm == "GET"
        && path == format!("/v1/requests/{}", call.signed.request_id)
        && claims.ath == crate::proof::digest(call.id_token.as_bytes())
        && (now - claims.iat).abs() <= max_age
}
