//! The agent's own check of Google-signed ID tokens, on Cloud Run.
//!
//! Cloud Run admits only callers whose ID token names an identity allowed to invoke the
//! service, then passes that token on with its signature replaced by
//! `SIGNATURE_REMOVED_BY_GOOGLE`. So that the agent can check the server whatever the
//! platform says, the server sends its token twice: in `X-Serverless-Authorization`, which
//! Cloud Run checks (and strips), and in `Authorization`, which Cloud Run then passes on
//! untouched and the agent verifies itself — Google's signature, issuer, audience (the
//! service's URL), expiry, and an e-mail among the accounts the configuration names.
//!
//! Cloud Scheduler cannot send a second token: its call to the sweep arrives with the token
//! Cloud Run checked, signature removed. The agent accepts such a token for the sweep only
//! (same audience, expiry and accounts): the sweep removes nothing but users past their
//! expiry, and every other operation needs a token the agent verified and the server's HMAC.

use crate::config::GoogleCallerConfig;
use base64::Engine as _;
use p0_core::agent::Reply;
use p0_core::{IdTokenVerifier, JwksVerifier, Token};

/// What Cloud Run puts in place of the signature of a token it checked.
pub const SIGNATURE_REMOVED: &str = "SIGNATURE_REMOVED_BY_GOOGLE";

/// The header Cloud Run checks in preference to `Authorization`: when it is present, Cloud
/// Run passes `Authorization` on untouched, so a token there without its signature was never
/// checked by anyone.
pub const SERVERLESS_AUTHORIZATION: &str = "x-serverless-authorization";

/// The Google identities allowed to call this agent.
#[derive(Debug)]
pub struct GoogleCaller {
    verifier: JwksVerifier,
    audience: String,
    accounts: Vec<String>,
}

/// A caller that passed [`GoogleCaller::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoogleCall {
    /// Its token verified here (signature, issuer, audience, expiry, account).
    Verified(String),
    /// Its token as Cloud Run passes on one it checked: signature removed; audience, expiry
    /// and account checked here. Enough for the sweep, for nothing else.
    CheckedByCloudRun(String),
}

#[derive(serde::Deserialize)]
struct Claims {
    aud: String,
    exp: i64,
    #[serde(default)]
    email: Option<String>,
}

impl GoogleCaller {
    /// From the agent's configuration; an empty list of accounts is refused.
    pub fn new(config: &GoogleCallerConfig) -> anyhow::Result<Self> {
        if config.accounts.is_empty() {
            anyhow::bail!("google_caller.accounts is empty: name the server's service account");
        }
        Ok(Self {
            verifier: JwksVerifier::new(&config.issuer, &config.audience)?,
            audience: config.audience.clone(),
            accounts: config.accounts.clone(),
        })
    }

    /// The caller, from an `Authorization: Bearer <ID token>` header, or the 401 to answer.
    /// `serverless` says whether the call came with `X-Serverless-Authorization`, in which
    /// case Cloud Run checked that header, not this one.
    pub async fn check(
        &self,
        authorization: Option<&str>,
        serverless: bool,
    ) -> Result<GoogleCall, Reply> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refused("no Google ID token (Authorization: Bearer)"))?;
        if let Some(unsigned) = token.strip_suffix(SIGNATURE_REMOVED) {
            if serverless {
                return Err(refused(
                    "a Google ID token without its signature in Authorization next to X-Serverless-Authorization: Cloud Run checked only the latter",
                ));
            }
            let claims =
                payload(unsigned).ok_or_else(|| refused("Google ID token: unreadable claims"))?;
            if claims.aud != self.audience {
                return Err(refused("Google ID token: wrong audience"));
            }
            if claims.exp < chrono::Utc::now().timestamp() {
                return Err(refused("Google ID token: expired"));
            }
            return self
                .account(claims.email)
                .map(GoogleCall::CheckedByCloudRun);
        }
        let claims = self
            .verifier
            .verify(&Token::new(token.to_string()))
            .await
            .map_err(|e| refused(&format!("Google ID token: {e}")))?;
        self.account(claims.email).map(GoogleCall::Verified)
    }

    fn account(&self, email: Option<String>) -> Result<String, Reply> {
        match email {
            Some(email) if self.accounts.iter().any(|a| a.eq_ignore_ascii_case(&email)) => {
                Ok(email)
            }
            Some(email) => Err(refused(&format!(
                "Google ID token of `{email}`, which is not in google_caller.accounts"
            ))),
            None => Err(refused(
                "Google ID token without an e-mail (ask for it with format=full)",
            )),
        }
    }
}

fn refused(why: &str) -> Reply {
    Reply::refusal(401, "unauthenticated", why)
}

/// The claims of `header.payload.` (the signature already taken off).
fn payload(unsigned: &str) -> Option<Claims> {
    let mut parts = unsigned.split('.');
    let (_header, body, rest) = (parts.next()?, parts.next()?, parts.next()?);
    if !rest.is_empty() || parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(accounts: &[&str]) -> anyhow::Result<GoogleCaller> {
        GoogleCaller::new(&GoogleCallerConfig {
            audience: "https://a.run.app".into(),
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
            issuer: "https://accounts.google.com".into(),
        })
    }

    fn stripped(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "Bearer {}.{}.{SIGNATURE_REMOVED}",
            b64(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        )
    }

    #[tokio::test]
    async fn a_token_cloud_run_checked_is_read_for_its_audience_expiry_and_account() {
        assert!(
            caller(&[]).is_err(),
            "an empty list lets nobody in: refused"
        );
        let c = caller(&["sweeper@p.iam.gserviceaccount.com"]).unwrap();
        let exp = chrono::Utc::now().timestamp() + 600;
        let ok = stripped(serde_json::json!({
            "aud": "https://a.run.app", "exp": exp, "email": "SWEEPER@p.iam.gserviceaccount.com"
        }));
        assert_eq!(
            c.check(Some(&ok), false).await.unwrap(),
            GoogleCall::CheckedByCloudRun("SWEEPER@p.iam.gserviceaccount.com".into())
        );
        // Next to X-Serverless-Authorization, Cloud Run left Authorization unchecked: a
        // token there without its signature is anybody's forgery.
        let e = c.check(Some(&ok), true).await.unwrap_err();
        assert!(
            e.body["message"]
                .as_str()
                .unwrap()
                .contains("X-Serverless-Authorization"),
            "{:?}",
            e.body
        );
        for (claims, why) in [
            (
                serde_json::json!({"aud": "https://b.run.app", "exp": exp, "email": "sweeper@p.iam.gserviceaccount.com"}),
                "wrong audience",
            ),
            (
                serde_json::json!({"aud": "https://a.run.app", "exp": 1, "email": "sweeper@p.iam.gserviceaccount.com"}),
                "expired",
            ),
            (
                serde_json::json!({"aud": "https://a.run.app", "exp": exp, "email": "x@evil.example"}),
                "not in google_caller.accounts",
            ),
            (
                serde_json::json!({"aud": "https://a.run.app", "exp": exp}),
                "without an e-mail",
            ),
        ] {
            let r = c.check(Some(&stripped(claims)), false).await.unwrap_err();
            assert_eq!(r.status, 401);
            assert!(
                r.body["message"].as_str().unwrap().contains(why),
                "{why}: {:?}",
                r.body
            );
        }
        for bad in [
            None,
            Some("Basic x"),
            Some("Bearer "),
            Some("Bearer a.b.c.SIGNATURE_REMOVED_BY_GOOGLE"),
        ] {
            assert_eq!(
                c.check(bad, false).await.unwrap_err().status,
                401,
                "{bad:?}"
            );
        }
    }
}
