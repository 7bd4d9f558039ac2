//! Test fixtures of the agent module: an in-memory provisioner, a verifier that reads its
//! tokens as plain claims, and a requester who signs calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::reply::{Op, Reply};
use super::service::Agent;
use super::settings::{AgentSettings, ConnectEndpoint};
use crate::api::{hmac_sign, ProvisionCall};
use crate::error::ProvisionError;
use crate::error::VerifyError;
use crate::extract::{PermissionExtractor, PostgresExtractor};
use crate::grant::{AgentSigningKey, TlsExpectation};
use crate::provision::{Access, AccountKind, ManagedAccount, ProvisionPlan, RevokeReport};
use crate::provision::{Credentials, DatabaseProvisioner};
use crate::seal::{key_fingerprint, KeyPair};
use crate::secret::{Password, Token};
use crate::sign::SignedRequest;
use crate::types::{Engine, Intent, RequestId, ResourceId, RoleName, Username};
use crate::verify::{IdClaims, IdTokenVerifier};
use chrono::{TimeDelta, Utc};
use std::sync::{Arc, Mutex};

pub(crate) const SECRET: &str = "a-server-secret-of-some-length";
pub(crate) const SQL: &str = "SELECT id FROM orders";

/// Accepts a token that is the JSON of its [`IdClaims`], unless expired.
pub(crate) struct PlainClaims;

#[async_trait::async_trait]
impl IdTokenVerifier for PlainClaims {
    async fn verify(&self, token: &Token) -> Result<IdClaims, VerifyError> {
        let claims: IdClaims = serde_json::from_str(token.expose_secret())
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        if claims.exp <= Utc::now().timestamp() {
            return Err(VerifyError::Invalid("expired".into()));
        }
        Ok(claims)
    }
}

/// Users in memory, each with its request's marker; counts provisioning calls.
#[derive(Default)]
pub(crate) struct Memory {
    pub(crate) accounts: Mutex<Vec<ManagedAccount>>,
    pub(crate) provisioned: Mutex<usize>,
}

#[async_trait::async_trait]
impl DatabaseProvisioner for Memory {
    fn supports_valid_until(&self) -> bool {
        true
    }
    fn max_username_len(&self) -> usize {
        63
    }
    async fn provision(&self, plan: &ProvisionPlan) -> Result<Credentials, ProvisionError> {
        *self.provisioned.lock().unwrap() += 1;
        let name = format!("p0_{}", &plan.request_id.as_str()[..8]);
        self.accounts.lock().unwrap().push(ManagedAccount {
            name: name.clone(),
            kind: AccountKind::User,
            expires_at: Some(plan.expires_at),
            request_id: Some(plan.request_id.to_string()),
        });
        Ok(Credentials {
            username: Username::new(name)?,
            password: Password::generate(),
            role: RoleName::new("p0_reader")?,
            expires_at: plan.expires_at,
        })
    }
    async fn revoke(&self, user: &Username) -> Result<RevokeReport, ProvisionError> {
        let mut accounts = self.accounts.lock().unwrap();
        let before = accounts.len();
        accounts.retain(|a| a.name != user.as_str());
        Ok(RevokeReport {
            user_dropped: accounts.len() < before,
            ..RevokeReport::default()
        })
    }
    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
        Ok(self.accounts.lock().unwrap().clone())
    }
}

pub(crate) fn resource() -> ResourceId {
    ResourceId::new("pg/app").unwrap()
}

/// An agent for `pg/app` around `provisioner`, with [`SECRET`] and no live catalog.
pub(crate) fn agent(provisioner: Arc<Memory>) -> Agent {
    let endpoint = ConnectEndpoint {
        host: "db.internal".into(),
        port: 5432,
        database: "app".into(),
        tls: TlsExpectation::Off,
    };
    let settings = AgentSettings::new(
        resource(),
        Engine::Postgres,
        Arc::new(PlainClaims),
        provisioner,
        endpoint,
        AgentSigningKey::generate(),
    )
    .hmac_secret(SECRET)
    .default_database(Some("app".into()));
    Agent::new(settings).unwrap()
}

/// A requester with a CLI key.
pub(crate) struct Requester {
    pub(crate) email: String,
    pub(crate) keys: KeyPair,
}

impl Requester {
    pub(crate) fn new() -> Self {
        Self {
            email: "alice@example.com".into(),
            keys: KeyPair::generate().unwrap(),
        }
    }

    /// An ID token for this requester, committing to their key.
    pub(crate) fn token(&self) -> String {
        serde_json::to_string(&IdClaims {
            iss: "https://issuer.invalid".into(),
            sub: self.email.clone(),
            email: Some(self.email.clone()),
            groups: vec![],
            nonce: Some(key_fingerprint(self.keys.public_pem.as_bytes()).unwrap()),
            exp: Utc::now().timestamp() + 3600,
        })
        .unwrap()
    }

    /// A signed call for [`SQL`] on `resource`, signed `age` seconds ago.
    pub(crate) fn call(&self, resource: ResourceId, age: i64) -> ProvisionCall {
        let now = Utc::now();
        let signed = SignedRequest {
            request_id: RequestId::generate(),
            resource: resource.clone(),
            intent: Intent::Query(SQL.into()),
            reason: "test".into(),
            duration_secs: 900,
            issued_at: now.timestamp() - age,
        };
        let needed = PostgresExtractor::new().extract(SQL).unwrap().permissions;
        ProvisionCall {
            plan: ProvisionPlan {
                request_id: signed.request_id.clone(),
                requester: self.email.clone(),
                resource,
                access: Access::Permissions(needed),
                expires_at: now + TimeDelta::seconds(600),
            },
            id_token: self.token(),
            public_key: self.keys.public_pem.clone(),
            signature: signed.sign(&self.keys.private_pem).unwrap(),
            signed,
            pickup_proof: None,
        }
    }
}

/// What the HTTP transport does with a call: the server's HMAC (signed with `secret` unless
/// none), then the agent.
pub(crate) async fn over_http(agent: &Agent, op: Op, body: &[u8], secret: Option<&str>) -> Reply {
    let now = Utc::now().timestamp();
    let sig = secret.map(|s| hmac_sign(s.as_bytes(), now, op.path(), body));
    if let Err(r) =
        agent.authenticate_server(op.path(), Some(&now.to_string()), sig.as_deref(), body, now)
    {
        return r;
    }
    agent.handle(op, body).await
}
