//! [`DangerousDevIssuer`]: mints ID tokens for `p0 demo` and `--dev` setups.

use crate::error::SealError;
use crate::secret::Token;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;

/// A development identity issuer that signs whatever it is asked to. Only for `p0 demo` and
/// `--dangerous-dev-issuer` setups: anyone who can reach it can be anyone.
pub struct DangerousDevIssuer {
    issuer: String,
    kid: String,
    encoding: EncodingKey,
    jwks: serde_json::Value,
}

impl std::fmt::Debug for DangerousDevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DangerousDevIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl DangerousDevIssuer {
    /// A fresh issuer with a new RSA key, published at `issuer`.
    pub fn new(issuer: impl Into<String>) -> Result<Self, SealError> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .map_err(|e| SealError::Key(e.to_string()))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| SealError::Key(e.to_string()))?;
        let encoding =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| SealError::Key(e.to_string()))?;
        let kid = crate::types::RequestId::generate().to_string()[..16].to_string();
        let public = key.to_public_key();
        let jwks = serde_json::json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }]});
        Ok(Self {
            issuer: issuer.into(),
            kid,
            encoding,
            jwks,
        })
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS document.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// The discovery document.
    pub fn discovery(&self) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/jwks", self.issuer),
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// A token with exactly these claims, signed with this issuer's key (tests build expired,
    /// mis-addressed or otherwise broken tokens with it).
    pub fn issue_claims(&self, claims: &serde_json::Value) -> Result<Token, SealError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map(Token::new)
            .map_err(|e| SealError::Key(e.to_string()))
    }

    /// An ID token for `user` (an email), valid for an hour, committing to `nonce`.
    pub fn issue(
        &self,
        user: &str,
        groups: &[String],
        nonce: &str,
        audience: &str,
    ) -> Result<Token, SealError> {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": self.issuer, "sub": user, "aud": audience, "email": user, "groups": groups,
            "nonce": nonce, "iat": now, "exp": now + 3600,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map(Token::new)
            .map_err(|e| SealError::Key(e.to_string()))
    }
}
