//! The requester's signature over what they asked for (RSASSA-PKCS1-v1_5, SHA-256), so that
//! the agent can tell the server did not change the request on the way.

use crate::error::SealError;
use crate::seal::{parse_public, sign_pkcs1_sha256};
use crate::secret::SecretBytes;
use crate::types::{Intent, RequestId, ResourceId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Exactly what the requester signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    /// Unique per request; the agent accepts it once.
    pub request_id: RequestId,
    /// The target.
    pub resource: ResourceId,
    /// The query or the role asked for.
    pub intent: Intent,
    /// Why.
    pub reason: String,
    /// The longest the requester wants the access for.
    pub duration_secs: u64,
    /// Seconds since the epoch when it was signed.
    pub issued_at: i64,
}

impl SignedRequest {
    fn canonical(&self) -> Vec<u8> {
        // Field order is fixed by the struct; serde_json of these types cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Signs with the requester's private key (PKCS#8). Returns base64url.
    pub fn sign(&self, private_key: &SecretBytes) -> Result<String, SealError> {
        let sig = sign_pkcs1_sha256(private_key.expose_secret(), &self.canonical())?;
        Ok(URL_SAFE_NO_PAD.encode(sig))
    }

    /// Verifies a signature with the requester's public key (SPKI).
    pub fn verify(&self, public_key: &[u8], signature: &str) -> Result<(), SealError> {
        let key = VerifyingKey::<Sha256>::new(parse_public(public_key)?);
        let raw = URL_SAFE_NO_PAD
            .decode(signature.trim())
            .map_err(|_| SealError::Malformed)?;
        let sig = Signature::try_from(raw.as_slice()).map_err(|_| SealError::Malformed)?;
        key.verify(&self.canonical(), &sig)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::KeyPair;

    fn req() -> SignedRequest {
        SignedRequest {
            request_id: RequestId::generate(),
            resource: ResourceId::new("pg/app").unwrap(),
            intent: Intent::Query("SELECT 1".into()),
            reason: "r".into(),
            duration_secs: 60,
            issued_at: 1,
        }
    }

    #[test]
    fn signature_binds_every_field() {
        let kp = KeyPair::generate().unwrap();
        let r = req();
        let sig = r.sign(&kp.private_pem).unwrap();
        r.verify(kp.public_pem.as_bytes(), &sig).unwrap();
        let mut changed = r.clone();
        changed.intent = Intent::Query("SELECT * FROM secrets".into());
        assert!(changed.verify(kp.public_pem.as_bytes(), &sig).is_err());
        let other = KeyPair::generate().unwrap();
        assert!(r.verify(other.public_pem.as_bytes(), &sig).is_err());
        assert!(r.verify(kp.public_pem.as_bytes(), "garbage!").is_err());
    }
}
