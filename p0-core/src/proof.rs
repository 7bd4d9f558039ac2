//! Proof of possession for every API call (in the manner of DPoP, RFC 9449): a bearer ID token
//! alone is never enough. The CLI signs each call — method, path with query, a digest of the
//! body, a digest of the token it sends, the time and a random id — with the key the token's
//! nonce commits to. Someone who saw the token (the agent, a log, the wire) cannot act with it.
//!
//! Wire form, in the [`PROOF_HEADER`] header:
//! `base64url(claims JSON) "." base64url(RSASSA-PKCS1-v1_5-SHA256 over the first part)`,
//! with the caller's public key (SPKI DER, base64url) in [`KEY_HEADER`].

use crate::error::SealError;
use crate::seal::{parse_public, sign_pkcs1_sha256};
use crate::secret::SecretBytes;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The header that carries a proof.
pub const PROOF_HEADER: &str = "x-p0-proof";
/// The header that carries the caller's public key (SPKI DER, base64url).
pub const KEY_HEADER: &str = "x-p0-key";
/// Largest clock difference accepted for a proof, in seconds.
pub const PROOF_MAX_SKEW_SECS: i64 = 60;

/// What a proof says. Every field is covered by the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofClaims {
    /// HTTP method, upper case.
    pub htm: String,
    /// Path and query, as sent (`/v1/requests/ID?wait=20`).
    pub htu: String,
    /// `base64url(SHA-256(token))`: the proof is for this token only.
    pub ath: String,
    /// `base64url(SHA-256(body))` (of the empty body for a GET).
    pub bh: String,
    /// Seconds since the epoch when it was made.
    pub iat: i64,
    /// A random id: a proof is accepted once.
    pub jti: String,
}

/// Why a proof was refused. Callers answer one generic message and log this.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// No proof, or not of the wire form.
    #[error("missing or malformed proof")]
    Malformed,
    /// The signature does not verify with the key.
    #[error("proof signature does not verify")]
    Signature,
    /// Signed for another method, path, body or token.
    #[error("proof is for another call")]
    Mismatch,
    /// Too old or from the future.
    #[error("proof is not fresh")]
    Stale,
}

/// `base64url(SHA-256(data))`.
pub fn digest(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(data))
}

/// A public key (PEM or DER) as it goes in [`KEY_HEADER`].
pub fn key_header(public_key: &[u8]) -> Result<String, SealError> {
    use rsa::pkcs8::EncodePublicKey;
    let der = parse_public(public_key)?
        .to_public_key_der()
        .map_err(|e| SealError::Key(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(der.as_bytes()))
}

/// The public key (SPKI DER) carried in a [`KEY_HEADER`] value.
pub fn parse_key_header(value: &str) -> Result<Vec<u8>, ProofError> {
    let der = URL_SAFE_NO_PAD
        .decode(value.trim())
        .map_err(|_| ProofError::Malformed)?;
    parse_public(&der).map_err(|_| ProofError::Malformed)?;
    Ok(der)
}

/// Signs a proof for one call at time `now`.
pub fn sign(
    private_key: &SecretBytes,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    token: &str,
    now: i64,
) -> Result<String, SealError> {
    let mut jti = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut jti);
    let claims = ProofClaims {
        htm: method.to_ascii_uppercase(),
        htu: path_and_query.to_string(),
        ath: digest(token.as_bytes()),
        bh: digest(body),
        iat: now,
        jti: URL_SAFE_NO_PAD.encode(jti),
    };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(|_| SealError::Seal)?);
    let sig = sign_pkcs1_sha256(private_key.expose_secret(), payload.as_bytes())?;
    Ok(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Verifies the signature of a proof with `public_key` and returns its claims, unchecked
/// against any call: see [`verify`] for the whole check.
pub fn open(public_key: &[u8], proof: &str) -> Result<ProofClaims, ProofError> {
    let (payload, sig) = proof.trim().split_once('.').ok_or(ProofError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| ProofError::Malformed)?;
    let sig = Signature::try_from(sig.as_slice()).map_err(|_| ProofError::Malformed)?;
    let key =
        VerifyingKey::<Sha256>::new(parse_public(public_key).map_err(|_| ProofError::Malformed)?);
    key.verify(payload.as_bytes(), &sig)
        .map_err(|_| ProofError::Signature)?;
    let raw = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| ProofError::Malformed)?;
    serde_json::from_slice(&raw).map_err(|_| ProofError::Malformed)
}

/// Checks a proof against the call it arrived with: signed by `public_key`, for this method,
/// path with query, body and token, and made within `max_skew` seconds of `now`. The caller
/// keeps the returned `jti` for the skew window to refuse a replay.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    public_key: &[u8],
    proof: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    token: &str,
    now: i64,
    max_skew: i64,
) -> Result<ProofClaims, ProofError> {
    let claims = open(public_key, proof)?;
    if !claims.htm.eq_ignore_ascii_case(method)
        || claims.htu != path_and_query
        || claims.bh != digest(body)
        || claims.ath != digest(token.as_bytes())
    {
        return Err(ProofError::Mismatch);
    }
    if (now - claims.iat).abs() > max_skew {
        return Err(ProofError::Stale);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::KeyPair;

    #[test]
    fn a_proof_binds_method_path_body_token_and_time() {
        let kp = KeyPair::generate().unwrap();
        let p = sign(
            &kp.private_pem,
            "post",
            "/v1/requests/x/approve",
            b"{}",
            "tok",
            1000,
        )
        .unwrap();
        let pk = kp.public_pem.as_bytes();
        let ok = |m, u, b: &[u8], t, now| verify(pk, &p, m, u, b, t, now, 60);
        assert!(ok("POST", "/v1/requests/x/approve", b"{}", "tok", 1030).is_ok());
        assert_eq!(
            ok("GET", "/v1/requests/x/approve", b"{}", "tok", 1000),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            ok("POST", "/v1/requests/y/approve", b"{}", "tok", 1000),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            ok("POST", "/v1/requests/x/approve", b"{ }", "tok", 1000),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            ok("POST", "/v1/requests/x/approve", b"{}", "other", 1000),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            ok("POST", "/v1/requests/x/approve", b"{}", "tok", 1100),
            Err(ProofError::Stale)
        );
        let other = KeyPair::generate().unwrap();
        assert_eq!(
            verify(
                other.public_pem.as_bytes(),
                &p,
                "POST",
                "/v1/requests/x/approve",
                b"{}",
                "tok",
                1000,
                60
            ),
            Err(ProofError::Signature)
        );
        assert_eq!(
            ok("POST", "x", b"", "", 0).err(),
            Some(ProofError::Mismatch)
        );
        assert_eq!(
            verify(pk, "garbage", "GET", "/", b"", "", 0, 60),
            Err(ProofError::Malformed)
        );
        let header = key_header(pk).unwrap();
        assert!(parse_key_header(&header).is_ok());
        assert_eq!(parse_key_header("!!"), Err(ProofError::Malformed));
    }
}
