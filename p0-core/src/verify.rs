//! Identity: verifying the requester's OIDC ID token.

use crate::error::VerifyError;
use crate::secret::Token;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The claims p0 uses from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Email, when the issuer provides one.
    #[serde(default)]
    pub email: Option<String>,
    /// Group claims.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The nonce: `base64url(SHA-256(public key DER))` of the requester's CLI key.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

impl IdClaims {
    /// The name p0 attributes actions to: the email, or the subject.
    pub fn principal(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.sub)
    }
}

/// Verifies an ID token against the issuer's keys.
#[async_trait]
pub trait IdTokenVerifier: Send + Sync {
    /// Checks signature, issuer, audience, expiry and algorithm; returns the claims.
    async fn verify(&self, token: &Token) -> Result<IdClaims, VerifyError>;
}
