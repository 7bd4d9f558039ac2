//! Stale and replayed calls to the agent: the test is a compromised server holding the
//! agent's HMAC secret and a call the requester really signed. Each attack is one test; each
//! asserts the refusal and that the database holds no new user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::api::{hmac_sign, ProvisionCall, HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use p0_core::provision::{Access, ProvisionPlan};
use p0_core::seal::key_fingerprint;
use p0_core::{Intent, KeyPair, PermissionSet, RequestId, ResourceId, SignedRequest};
use p0_stack::{Stack, DEMO_RULES};
use serde_json::{json, Value};

const USER: &str = "alice@example.com";
const SQL: &str = "SELECT name FROM sales.customers";

struct Server {
    stack: Stack,
    http: reqwest::Client,
    alice: KeyPair,
}

impl Server {
    async fn start() -> Self {
        Self {
            stack: Stack::start(DEMO_RULES, 3600).await.unwrap(),
            http: reqwest::Client::new(),
            alice: KeyPair::generate().unwrap(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
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

    fn token(&self) -> String {
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
    async fn call(&self, issued_at: i64, expires_in: i64) -> ProvisionCall {
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

    async fn provision(&self, call: &ProvisionCall) -> (u16, Value) {
        self.post("/v1/provision", &serde_json::to_value(call).unwrap())
            .await
    }

    fn users(&self) -> Vec<String> {
        self.stack.managed_roles().unwrap()
    }

    /// alice's proof of a poll, as her CLI makes it.
    fn proof(&self, key: &KeyPair, method: &str, path: &str, token: &str, at: i64) -> String {
        p0_core::proof::sign(&key.private_pem, method, path, b"", token, at).unwrap()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Refused as forbidden with a one-line reason naming `why`, and nothing created.
fn assert_refused(server: &Server, (status, body): (u16, Value), why: &str) {
    assert!((400..500).contains(&status), "{status} {body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(why) && !msg.contains('\n'), "{msg}");
    assert!(server.users().is_empty(), "left: {:?}", server.users());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_signed_in_1970_is_refused() {
    let s = Server::start().await;
    let call = s.call(0, 240).await;
    assert_refused(&s, s.provision(&call).await, "not fresh");
    // The same request signed now is provisioned: the refusal was the timestamp's.
    let call = s.call(now(), 240).await;
    assert_eq!(s.provision(&call).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_signed_in_the_future_is_refused() {
    let s = Server::start().await;
    let call = s.call(now() + 3600, 240).await;
    assert_refused(&s, s.provision(&call).await, "not fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_whose_expiry_has_passed_is_refused() {
    let s = Server::start().await;
    let call = s.call(now(), -10).await;
    assert_refused(&s, s.provision(&call).await, "expiry has passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_after_an_agent_restart_is_refused() {
    let mut s = Server::start().await;
    let call = s.call(now(), 240).await;
    let (status, v) = s.provision(&call).await;
    assert_eq!(status, 200, "{v}");
    let before = s.users();
    s.stack.stop_agent();
    s.stack.start_agent().await.unwrap();
    let (status, v) = s.provision(&call).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["message"], "request id already used");
    assert_eq!(s.users(), before, "the replay changed the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_request_is_picked_up_only_with_the_requesters_fresh_proof() {
    let s = Server::start().await;
    let token = s.token();
    let mallory = KeyPair::generate().unwrap();
    // Signed an hour ago, approved since: the signature alone is stale.
    let mut call = s.call(now() - 3600, 240).await;
    let path = format!("/v1/requests/{}?wait=20", call.signed.request_id);
    let other = format!("/v1/requests/{}?wait=20", RequestId::generate());
    for (what, proof) in [
        ("no proof", None),
        (
            "a proof for another request",
            Some(s.proof(&s.alice, "GET", &other, &token, now())),
        ),
        (
            "a proof by another key",
            Some(s.proof(&mallory, "GET", &path, &token, now())),
        ),
        (
            "a stale proof",
            Some(s.proof(&s.alice, "GET", &path, &token, now() - 3600)),
        ),
        (
            "a proof for another token",
            Some(s.proof(&s.alice, "GET", &path, "other", now())),
        ),
        (
            "a proof of another method",
            Some(s.proof(&s.alice, "POST", &path, &token, now())),
        ),
        ("garbage", Some("x.y".to_string())),
    ] {
        call.pickup_proof = proof;
        let r = s.provision(&call).await;
        assert!((400..500).contains(&r.0), "{what}: {} {}", r.0, r.1);
        assert!(s.users().is_empty(), "{what}: a user was created");
    }
    call.pickup_proof = Some(s.proof(&s.alice, "GET", &path, &call.id_token, now()));
    let (status, v) = s.provision(&call).await;
    assert_eq!(status, 200, "{v}");
}
