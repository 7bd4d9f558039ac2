//! [`JwksVerifier`]: ID tokens checked against the issuer's published keys (feature `jwks`,
//! which brings the HTTP client that fetches them).

use crate::error::VerifyError;
use crate::secret::Token;
use crate::verify::{IdClaims, IdTokenVerifier};
use async_trait::async_trait;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Algorithms accepted for ID tokens. Never `none`, never an HMAC algorithm (an HS256 token
/// "signed" with an RSA public key must not verify).
const ALLOWED: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];
/// Clock skew tolerated on exp / nbf / iat.
const LEEWAY_SECS: u64 = 30;
/// Oldest `iat` accepted.
const MAX_AGE_SECS: i64 = 12 * 3600;
/// Least time between two JWKS refreshes caused by unknown key ids.
const REFRESH_FLOOR: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    /// `false` (or `"false"`, as some issuers write it) means the issuer has not confirmed
    /// that the person controls the address.
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// The token's e-mail unless the issuer says it is not confirmed (`email_verified` false, or
/// `"false"` as some issuers write it): an unconfirmed address names nobody, and the subject
/// is used instead. Issuers that do not say are taken at their word.
fn confirmed_email(email: Option<String>, verified: Option<&serde_json::Value>) -> Option<String> {
    let unconfirmed = match verified {
        Some(serde_json::Value::Bool(b)) => !b,
        Some(serde_json::Value::String(v)) => v.eq_ignore_ascii_case("false"),
        _ => false,
    };
    email.filter(|_| !unconfirmed)
}

/// Verifies ID tokens with the issuer's JWKS (discovered, cached, refreshed on unknown `kid`).
#[derive(Debug)]
pub struct JwksVerifier {
    issuer: String,
    audience: String,
    jwks_uri: tokio::sync::OnceCell<String>,
    http: reqwest::Client,
    keys: RwLock<(JwkSet, Option<Instant>)>,
}

impl JwksVerifier {
    /// A verifier for `issuer`; discovery happens on first use (so an issuer that starts later,
    /// or is briefly down at start, is fine).
    pub fn new(issuer: &str, audience: &str) -> Result<Self, VerifyError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| VerifyError::Issuer(e.to_string()))?;
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.into(),
            jwks_uri: tokio::sync::OnceCell::new(),
            http,
            keys: RwLock::new((JwkSet { keys: Vec::new() }, None)),
        })
    }

    /// Discovers the issuer (`/.well-known/openid-configuration`) and fetches its keys now.
    pub async fn discover(issuer: &str, audience: &str) -> Result<Self, VerifyError> {
        let v = Self::new(issuer, audience)?;
        v.refresh(true).await?;
        Ok(v)
    }

    async fn jwks_uri(&self) -> Result<&str, VerifyError> {
        self.jwks_uri
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let d: Discovery = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| VerifyError::Issuer(e.without_url().to_string()))?
                    .json()
                    .await
                    .map_err(|e| VerifyError::Issuer(e.to_string()))?;
                if d.issuer.trim_end_matches('/') != self.issuer {
                    return Err(VerifyError::Issuer(format!(
                        "discovery names issuer `{}`",
                        d.issuer
                    )));
                }
                Ok(d.jwks_uri)
            })
            .await
            .map(String::as_str)
    }

    async fn refresh(&self, force: bool) -> Result<(), VerifyError> {
        if self
            .keys
            .read()
            .await
            .1
            .is_some_and(|t| !force && t.elapsed() < REFRESH_FLOOR)
        {
            return Ok(());
        }
        let mut keys = self.keys.write().await;
        if !force && keys.1.is_some_and(|t| t.elapsed() < REFRESH_FLOOR) {
            return Ok(());
        }
        let uri = self.jwks_uri().await?.to_string();
        let set: JwkSet = self
            .http
            .get(&uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| VerifyError::Issuer(e.to_string()))?
            .json()
            .await
            .map_err(|e| VerifyError::Issuer(e.to_string()))?;
        *keys = (set, Some(Instant::now()));
        Ok(())
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, VerifyError> {
        for attempt in 0..2 {
            {
                let keys = self.keys.read().await;
                let found = match kid {
                    Some(kid) => keys.0.find(kid).cloned(),
                    // Without a kid, only an unambiguous key set is acceptable (an empty one
                    // means the keys were not fetched yet).
                    None => match keys.0.keys.len() {
                        0 => None,
                        1 => keys.0.keys.first().cloned(),
                        _ => {
                            return Err(VerifyError::Invalid(
                                "token without `kid` and several issuer keys".into(),
                            ))
                        }
                    },
                };
                if let Some(k) = found {
                    return Ok(k);
                }
            }
            if attempt == 0 {
                let never_loaded = self.keys.read().await.1.is_none();
                self.refresh(never_loaded).await?;
            }
        }
        Err(VerifyError::Invalid("unknown signing key".into()))
    }
}

#[async_trait]
impl IdTokenVerifier for JwksVerifier {
    async fn verify(&self, token: &Token) -> Result<IdClaims, VerifyError> {
        let header = jsonwebtoken::decode_header(token.expose_secret())
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(VerifyError::Invalid(format!(
                "algorithm {:?} is not allowed",
                header.alg
            )));
        }
        // The token's own, unverified word on who issued it and for whom: only to name the
        // cause of a refusal (a login against another issuer fails here with that issuer's
        // name, not as an unknown key).
        let peek = unverified(token.expose_secret());
        if let Some(iss) = peek.as_ref().and_then(|p| p["iss"].as_str()) {
            if iss.trim_end_matches('/') != self.issuer {
                return Err(VerifyError::WrongIssuer {
                    token: shown(iss),
                    trusted: self.issuer.clone(),
                });
            }
        }
        let jwk = self.key_for(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        // Issuers write their identifier with or without a final slash; discovery says which,
        // and both name the same issuer.
        v.set_issuer(&[self.issuer.clone(), format!("{}/", self.issuer)]);
        v.set_audience(&[&self.audience]);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<RawClaims>(token.expose_secret(), &key, &v).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::InvalidAudience => VerifyError::WrongAudience {
                    token: match peek.as_ref().map(|p| &p["aud"]) {
                        Some(serde_json::Value::String(a)) => format!("`{}`", shown(a)),
                        Some(serde_json::Value::Array(all)) => all
                            .iter()
                            .take(5)
                            .map(|a| format!("`{}`", shown(a.as_str().unwrap_or("?"))))
                            .collect::<Vec<_>>()
                            .join(", "),
                        _ => "(none)".into(),
                    },
                    expected: self.audience.clone(),
                },
                _ => VerifyError::Invalid(e.to_string()),
            },
        )?;
        let c = data.claims;
        let now = chrono::Utc::now().timestamp();
        if let Some(iat) = c.iat {
            if iat > now + LEEWAY_SECS as i64 || now - iat > MAX_AGE_SECS {
                return Err(VerifyError::Invalid(
                    "token issued too long ago or in the future".into(),
                ));
            }
        }
        Ok(IdClaims {
            iss: c.iss,
            sub: c.sub,
            email: confirmed_email(c.email, c.email_verified.as_ref()),
            groups: c.groups,
            nonce: c.nonce,
            exp: c.exp,
        })
    }
}

/// The payload of a JWT, unverified: for naming a refusal's cause, never for a decision.
fn unverified(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A value from an unverified token, made safe to print and short.
fn shown(s: &str) -> String {
    let s: String = s.chars().take(200).collect();
    crate::api::printable(&s).replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::confirmed_email;
    use serde_json::json;

    #[test]
    fn an_address_the_issuer_has_not_confirmed_names_nobody() {
        let e = || Some("bob@example.com".to_string());
        assert_eq!(confirmed_email(e(), None), e());
        assert_eq!(confirmed_email(e(), Some(&json!(true))), e());
        assert_eq!(confirmed_email(e(), Some(&json!("true"))), e());
        assert_eq!(confirmed_email(e(), Some(&json!(false))), None);
        assert_eq!(confirmed_email(e(), Some(&json!("FALSE"))), None);
        assert_eq!(confirmed_email(None, Some(&json!(true))), None);
    }
}
