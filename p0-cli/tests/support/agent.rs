//! A compromised server's calls to the agent: it holds the agent's HMAC secret and a call the
//! requester really signed, and sends it as it likes.

use p0_core::api::{hmac_sign, ProvisionCall, HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use p0_core::provision::{Access, ProvisionPlan};
use p0_core::seal::key_fingerprint;
use p0_core::{Intent, KeyPair, PermissionSet, RequestId, ResourceId, SignedRequest};
use p0_stack::{Stack, DEMO_RULES};
use serde_json::{json, Value};

pub const USER: &str = "alice@example.com";
pub const SQL: &str = "SELECT name FROM sales.customers";

pub struct Server {
    pub stack: Stack,
    pub http: reqwest::Client,
    pub alice: KeyPair,
}

impl Server {
    pub async fn start() -> Self {
        Self {
            stack: Stack::start(DEMO_RULES, 3600).await.unwrap(),
            http: reqwest::Client::new(),
            alice: KeyPair::generate().unwrap(),
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(body).unwrap();
        let ts = chrono::Utc::now().timestamp();
        let r = self
            .http
            .post(format!("{}{path}", self.stack.agent_url))
            .header(HMAC_TIME_HEADER, ts.to_string())
            .header(
                HMAC_SIG_HEADER,
                hmac_sign(self.stack.hmac_secret().as_bytes(), ts, path, &body),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub fn token(&self) -> String {
        let nonce = key_fingerprint(self.alice.public_pem.as_bytes()).unwrap();
        self.stack
            .dev_issuer()
            .unwrap()
            .issue(USER, &[], &nonce, "p0")
            .unwrap()
            .expose_secret()
            .to_string()
    }

    /// A call alice really signed, at `issued_at`, with an expiry `expires_in` from now.
    pub async fn call(&self, issued_at: i64, expires_in: i64) -> ProvisionCall {
        let (s, v) = self.post("/v1/explain", &json!({ "sql": SQL })).await;
        assert_eq!(s, 200, "{v}");
        let set: PermissionSet = serde_json::from_value(v["permissions"].clone()).unwrap();
        let resource = ResourceId::new(self.stack.resource.clone()).unwrap();
        let signed = SignedRequest {
            request_id: RequestId::generate(),
            resource: resource.clone(),
            intent: Intent::Query(SQL.into()),
            reason: "report".into(),
            duration_secs: 300,
            issued_at,
        };
        ProvisionCall {
            plan: ProvisionPlan {
                request_id: signed.request_id.clone(),
                requester: USER.into(),
                resource,
                access: Access::Permissions(set),
                expires_at: chrono::Utc::now() + chrono::TimeDelta::seconds(expires_in),
            },
            id_token: self.token(),
            public_key: self.alice.public_pem.clone(),
            signature: signed.sign(&self.alice.private_pem).unwrap(),
            signed,
            pickup_proof: None,
        }
    }

    pub async fn provision(&self, call: &ProvisionCall) -> (u16, Value) {
        self.post("/v1/provision", &serde_json::to_value(call).unwrap())
            .await
    }

    pub fn users(&self) -> Vec<String> {
        self.stack.managed_roles().unwrap()
    }

    /// alice's proof of a poll, as her CLI makes it.
    pub fn proof(&self, key: &KeyPair, method: &str, path: &str, token: &str, at: i64) -> String {
        p0_core::proof::sign(&key.private_pem, method, path, b"", token, at).unwrap()
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Refused as forbidden with a one-line reason naming `why`, and nothing created.
pub fn assert_refused(server: &Server, (status, body): (u16, Value), why: &str) {
    assert!((400..500).contains(&status), "{status} {body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(why) && !msg.contains('\n'), "{msg}");
    assert!(server.users().is_empty(), "left: {:?}", server.users());
}
