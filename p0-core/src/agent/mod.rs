//! The agent's checks, whatever carries its calls. It trusts the server for approval only:
//! every provision call is checked on its own, in this order —
//!
//! 0. the server's HMAC over the path, timestamp and body ([`Agent::authenticate_server`]; a
//!    transport that authenticates the caller itself, such as IAM on Lambda, skips it);
//! 1. the resource is this agent's, and the requester's ID token verifies with the agent's
//!    own issuer configuration and names the plan's requester;
//! 2. the token commits (its nonce) to the key the password will be sealed to;
//! 3. the requester signed exactly this request, which is fresh — or comes with the
//!    requester's fresh proof of picking it up after approval — and the plan's expiry lies
//!    within what they asked for;
//! 4. the plan is no wider than the agent's own extraction of the signed query needs (or is
//!    the very role asked for);
//! 5. the request id was never used, neither in memory nor by any user the database holds;
//! 6. the provisioner runs the escalation guard itself; the password leaves only sealed to
//!    the requester's key with the agent's own connection target, and signed by the agent.
//!
//! [`Agent::handle`] runs one [`Op`] and answers a transport-neutral [`Reply`]: the HTTP agent
//! maps it to a response, the Lambda agent returns it as is, a custom agent around a
//! provisioner of its own does either.
//!
//! ```no_run
//! # async fn demo(
//! #     verifier: std::sync::Arc<dyn p0_core::IdTokenVerifier>,
//! #     provisioner: std::sync::Arc<dyn p0_core::DatabaseProvisioner>,
//! #     body: &[u8], timestamp: Option<&str>, signature: Option<&str>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use p0_core::agent::{Agent, AgentSettings, ConnectEndpoint, Op};
//! use p0_core::grant::{AgentSigningKey, TlsExpectation};
//! let endpoint = ConnectEndpoint {
//!     host: "db.internal".into(),
//!     port: 5432,
//!     database: "app".into(),
//!     tls: TlsExpectation::Off,
//! };
//! let settings = AgentSettings::new(
//!     p0_core::ResourceId::new("pg/app")?,
//!     p0_core::Engine::Postgres,
//!     verifier,
//!     provisioner,
//!     endpoint,
//!     AgentSigningKey::generate(),
//! )
//! .hmac_secret("a secret shared with the server");
//! let agent = Agent::new(settings)?;
//! let now = chrono::Utc::now().timestamp();
//! let reply = match agent.authenticate_server(Op::Provision.path(), timestamp, signature, body, now) {
//!     Ok(()) => agent.handle(Op::Provision, body).await,
//!     Err(refused) => refused,
//! };
//! println!("{} {}", reply.status, reply.body);
//! # Ok(())
//! # }
//! ```

mod checks;
mod extraction;
mod replay;
mod reply;
mod service;
mod settings;
#[cfg(test)]
mod testing;

pub use reply::{Op, Reply};
pub use service::Agent;
pub use settings::{
    AgentSettings, AgentSetupError, ConnectEndpoint, DEFAULT_MAX_REQUEST_AGE_SECS,
    MIN_HMAC_SECRET_LEN,
};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::testing::{agent, over_http, resource, Memory, Requester, SECRET};
    use super::*;
    use crate::api::ProvisionCall;
    use crate::provision::Access;
    use crate::types::ResourceId;
    use std::sync::Arc;

    fn body<T: serde::Serialize>(v: &T) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    fn code(r: &Reply) -> (u16, &str) {
        (r.status, r.body["code"].as_str().unwrap_or("ok"))
    }

    #[tokio::test]
    async fn a_valid_call_is_provisioned_once_and_sealed() {
        let db = Arc::new(Memory::default());
        let agent = agent(db.clone());
        let alice = Requester::new();
        let call = alice.call(resource(), 0);
        let r = over_http(&agent, Op::Provision, &body(&call), Some(SECRET)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body["sealed_password"].as_str().unwrap().len() > 40);
        let again = over_http(&agent, Op::Provision, &body(&call), Some(SECRET)).await;
        assert_eq!(code(&again), (409, "conflict"));
        assert_eq!(*db.provisioned.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_bad_hmac_is_refused_before_anything_else() {
        let db = Arc::new(Memory::default());
        let agent = agent(db.clone());
        // Even a body that is not JSON at all, for a resource the agent does not serve.
        for b in [
            b"not json".to_vec(),
            body(&Requester::new().call(resource(), 0)),
        ] {
            for secret in [None, Some("another-secret-of-some-length")] {
                let r = over_http(&agent, Op::Provision, &b, secret).await;
                assert_eq!(code(&r), (401, "unauthenticated"));
                assert_eq!(r.body["message"], "missing or invalid server signature");
            }
        }
        for op in [Op::Revoke, Op::Sweep, Op::Explain] {
            assert_eq!(over_http(&agent, op, b"{}", None).await.status, 401);
        }
        assert!(Op::ALL
            .iter()
            .all(|op| op.needs_server_auth() != (*op == Op::Health)));
        // A signature over another path does not carry over.
        let now = chrono::Utc::now().timestamp();
        let sig = crate::api::hmac_sign(SECRET.as_bytes(), now, "/v1/sweep", b"{}");
        let ts = now.to_string();
        assert!(agent
            .authenticate_server("/v1/revoke", Some(&ts), Some(&sig), b"{}", now)
            .is_err());
        assert!(agent
            .authenticate_server("/v1/sweep", Some(&ts), Some(&sig), b"{}", now)
            .is_ok());
        assert_eq!(*db.provisioned.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn without_a_secret_no_server_is_authenticated() {
        let db = Arc::new(Memory::default());
        let settings = |secret: Option<&str>| {
            let s = AgentSettings::new(
                resource(),
                crate::types::Engine::Postgres,
                Arc::new(super::testing::PlainClaims),
                db.clone(),
                ConnectEndpoint {
                    host: "db.internal".into(),
                    port: 5432,
                    database: "app".into(),
                    tls: crate::grant::TlsExpectation::Off,
                },
                crate::grant::AgentSigningKey::generate(),
            );
            match secret {
                Some(x) => s.hmac_secret(x),
                None => s,
            }
        };
        let open = Agent::new(settings(None)).unwrap();
        let r = over_http(&open, Op::Sweep, b"{}", Some(SECRET)).await;
        assert_eq!(r.status, 401);
        let short = Agent::new(settings(Some("short"))).unwrap_err();
        assert_eq!(
            short.to_string(),
            "hmac_secret must be at least 16 characters"
        );
        let stale = Agent::new(settings(Some(SECRET)).max_request_age_secs(0)).unwrap_err();
        assert!(stale
            .to_string()
            .starts_with("max_request_age_secs must be between 1 and 3600"));
        let long = Agent::new(settings(Some(SECRET)).max_request_age_secs(3_601)).unwrap_err();
        assert!(long
            .to_string()
            .starts_with("max_request_age_secs must be between 1 and 3600"));
    }

    #[tokio::test]
    async fn another_resource_is_forbidden() {
        let db = Arc::new(Memory::default());
        let agent = agent(db.clone());
        let call = Requester::new().call(ResourceId::new("pg/other").unwrap(), 0);
        let r = over_http(&agent, Op::Provision, &body(&call), Some(SECRET)).await;
        assert_eq!(code(&r), (403, "forbidden"));
        assert_eq!(
            r.body["message"],
            "resource `pg/other` is not served by this agent"
        );
        assert_eq!(*db.provisioned.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_stale_request_is_refused_unless_freshly_picked_up() {
        let db = Arc::new(Memory::default());
        let agent = agent(db.clone());
        let alice = Requester::new();
        let stale = alice.call(resource(), DEFAULT_MAX_REQUEST_AGE_SECS + 60);
        let r = agent.handle(Op::Provision, &body(&stale)).await;
        assert_eq!(code(&r), (403, "forbidden"));
        assert!(r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("the signed request is not fresh (issued_at more than 300 s from now)"));
        // The requester's own fresh poll of this very request makes up for it.
        let mut picked = stale.clone();
        let path = format!("/v1/requests/{}", picked.signed.request_id);
        let now = chrono::Utc::now().timestamp();
        picked.pickup_proof = Some(
            crate::proof::sign(
                &alice.keys.private_pem,
                "GET",
                &path,
                b"",
                &picked.id_token,
                now,
            )
            .unwrap(),
        );
        let r = agent.handle(Op::Provision, &body(&picked)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        // A proof for another token (the server's own, say) does not.
        let mut forged = alice.call(resource(), DEFAULT_MAX_REQUEST_AGE_SECS + 60);
        let path = format!("/v1/requests/{}", forged.signed.request_id);
        forged.pickup_proof = Some(
            crate::proof::sign(&alice.keys.private_pem, "GET", &path, b"", "other", now).unwrap(),
        );
        assert_eq!(
            agent.handle(Op::Provision, &body(&forged)).await.status,
            403
        );
        assert_eq!(*db.provisioned.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_replayed_request_id_is_refused_even_after_a_restart() {
        let db = Arc::new(Memory::default());
        let call = Requester::new().call(resource(), 0);
        let first = agent(db.clone());
        assert_eq!(first.handle(Op::Provision, &body(&call)).await.status, 200);
        // A new agent (a restart, another instance) has no memory, but the database's marker.
        let second = agent(db.clone());
        let r = second.handle(Op::Provision, &body(&call)).await;
        assert_eq!(code(&r), (409, "conflict"));
        assert_eq!(r.body["message"], "request id already used");
        assert_eq!(*db.provisioned.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn tokens_keys_signatures_and_plans_are_checked_in_order() {
        let db = Arc::new(Memory::default());
        let agent = agent(db.clone());
        let alice = Requester::new();
        type Tamper = fn(&mut ProvisionCall);
        let cases: [(Tamper, u16, &str); 5] = [
            (
                |c| c.id_token = "forged".into(),
                401,
                "invalid identity token",
            ),
            (
                |c| c.plan.requester = "mallory@example.com".into(),
                403,
                "the plan names another requester than the token",
            ),
            (
                |c| c.public_key = Requester::new().keys.public_pem,
                403,
                "the public key is not the one the identity token commits to",
            ),
            (
                |c| c.signed.reason = "changed".into(),
                403,
                "the request signature does not verify",
            ),
            (
                |c| c.plan.access = Access::Role("p0_admin".parse().unwrap()),
                403,
                "the plan does not match the signed intent",
            ),
        ];
        for (tamper, status, message) in cases {
            let mut call = alice.call(resource(), 0);
            tamper(&mut call);
            let r = agent.handle(Op::Provision, &body(&call)).await;
            assert_eq!(
                (r.status, r.body["message"].as_str().unwrap()),
                (status, message)
            );
        }
        let r = agent.handle(Op::Provision, b"{").await;
        assert_eq!(code(&r), (400, "bad_request"));
        assert_eq!(*db.provisioned.lock().unwrap(), 0);
    }
}
