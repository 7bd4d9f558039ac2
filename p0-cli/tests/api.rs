//! The server's API under bad input: every malformed, unauthenticated, unknown or unservable
//! call gets one JSON error `{code, message}` with a stable code and a one-line reason, and
//! changes nothing — no request, no audit entry, no database user. A valid call afterwards
//! still works, so the refusals are the server's judgement and not a broken set-up. Each bad
//! call is a trial of its own (`refused::…`), against one stack started once; the checks that
//! nothing changed and that a valid call still works run after them all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::proof;
use p0_core::seal::key_fingerprint;
use p0_core::{Intent, KeyPair, RequestId, ResourceId, SignedRequest};
use p0_stack::{Stack, DEMO_RULES};
use serde_json::{json, Value};
use std::sync::Arc;
use support::trials::{slug, Gate, Suite};

struct Api {
    http: reqwest::Client,
    base: String,
    /// The key that proves every call made with a token (alice's).
    key: KeyPair,
}

impl Api {
    /// Sends a call; returns the status and the JSON body (which every answer must have).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            let now = chrono::Utc::now().timestamp();
            let body = body.unwrap_or_default();
            let proof =
                proof::sign(&self.key.private_pem, method.as_str(), path, body, t, now).unwrap();
            r = r
                .bearer_auth(t)
                .header(
                    proof::KEY_HEADER,
                    proof::key_header(self.key.public_pem.as_bytes()).unwrap(),
                )
                .header(proof::PROOF_HEADER, proof);
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_vec());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path}: answer is not JSON: {status} {text:?}"));
        (status, v)
    }
}

/// What is sent, to whom, as whom, and what must come back: status and error code.
type Case = (
    &'static str,
    reqwest::Method,
    String,
    Option<String>,
    Option<Vec<u8>>,
    u16,
    &'static str,
);

fn signed(resource: &str, sql: &str, duration_secs: u64) -> SignedRequest {
    SignedRequest {
        request_id: RequestId::generate(),
        resource: ResourceId::new(resource).unwrap(),
        intent: Intent::Query(sql.into()),
        reason: "report".into(),
        duration_secs,
        issued_at: chrono::Utc::now().timestamp(),
    }
}

impl Api {
    async fn create(&self, token: Option<&str>, body: &[u8]) -> (u16, Value) {
        self.send(reqwest::Method::POST, "/v1/requests", token, Some(body))
            .await
    }
}

fn create_body(kp: &KeyPair, s: &SignedRequest) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "signed": s,
        "signature": s.sign(&kp.private_pem).unwrap(),
        "public_key": kp.public_pem,
    }))
    .unwrap()
}

/// The stack, alice's API client and token, her valid request, and every bad call.
struct BadInput {
    stack: tokio::sync::Mutex<Stack>,
    api: Api,
    alice: KeyPair,
    token: String,
    good: SignedRequest,
    cases: Vec<Case>,
}

async fn start() -> BadInput {
    let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let issuer = stack.dev_issuer().unwrap();
    let alice = KeyPair::generate().unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: stack.server_url.clone(),
        key: KeyPair {
            private_pem: p0_core::SecretBytes::new(alice.private_pem.expose_secret().to_vec()),
            public_pem: alice.public_pem.clone(),
        },
    };
    let other = KeyPair::generate().unwrap();
    let nonce = key_fingerprint(alice.public_pem.as_bytes()).unwrap();
    let token = issuer
        .issue("alice@example.com", &[], &nonce, "p0")
        .unwrap()
        .expose_secret()
        .to_string();
    let foreign = p0_core::DangerousDevIssuer::new(issuer.issuer())
        .unwrap()
        .issue("alice@example.com", &[], &nonce, "p0")
        .unwrap()
        .expose_secret()
        .to_string();
    let res = stack.resource.clone();
    let good = signed(&res, "SELECT name FROM sales.customers", 300);
    let mut bad_signature = good.clone();
    bad_signature.reason = "changed after signing".into();
    let bad_signature = serde_json::to_vec(&json!({
        "signed": bad_signature,
        "signature": good.sign(&alice.private_pem).unwrap(),
        "public_key": alice.public_pem,
    }))
    .unwrap();

    use reqwest::Method as M;
    let t = Some(token.clone());
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("no token", M::POST, "/v1/requests".into(), None, Some(create_body(&alice, &good)), 401, "unauthenticated"),
        ("garbage token", M::GET, "/v1/requests".into(), Some("not.a.jwt".into()), None, 401, "unauthenticated"),
        ("token from another key at the same issuer URL", M::GET, "/v1/audit".into(), Some(foreign.clone()), None, 401, "unauthenticated"),
        ("malformed JSON", M::POST, "/v1/requests".into(), t.clone(), Some(b"{\"signed\": ".to_vec()), 400, "bad_request"),
        ("missing fields", M::POST, "/v1/requests".into(), t.clone(), Some(b"{}".to_vec()), 400, "bad_request"),
        ("wrong types", M::POST, "/v1/requests".into(), t.clone(), Some(br#"{"signed": 1, "signature": [], "public_key": null}"#.to_vec()), 400, "bad_request"),
        ("a key the token does not commit to", M::POST, "/v1/requests".into(), t.clone(), Some(create_body(&other, &good)), 403, "forbidden"),
        ("a signature over something else", M::POST, "/v1/requests".into(), t.clone(), Some(bad_signature), 403, "forbidden"),
        ("unknown resource", M::POST, "/v1/requests".into(), t.clone(), Some(create_body(&alice, &signed("pg/nowhere", "SELECT 1", 300))), 404, "not_found"),
        ("zero duration", M::POST, "/v1/requests".into(), t.clone(), Some(create_body(&alice, &signed(&res, "SELECT 1", 0))), 400, "bad_request"),
        ("more than a day", M::POST, "/v1/requests".into(), t.clone(), Some(create_body(&alice, &signed(&res, "SELECT 1", 90_000))), 400, "bad_request"),
        ("malformed SQL", M::POST, "/v1/requests".into(), t.clone(), Some(create_body(&alice, &signed(&res, "SELEC name FROM sales.customers", 300))), 422, "refused"),
        ("SQL p0 refuses", M::POST, "/v1/requests".into(), t.clone(), Some(create_body(&alice, &signed(&res, "DROP TABLE sales.orders", 300))), 422, "refused"),
        ("a table that does not exist", M::POST, "/v1/requests".into(), t.clone(), Some(create_body(&alice, &signed(&res, "SELECT * FROM sales.nothing", 300))), 422, "refused"),
        ("unknown request", M::GET, format!("/v1/requests/{}", RequestId::generate()), t.clone(), None, 404, "not_found"),
        ("approve an unknown request", M::POST, format!("/v1/requests/{}/approve", RequestId::generate()), t.clone(), None, 404, "not_found"),
        ("revoke a malformed id", M::POST, "/v1/requests/..%2F..%2Fetc/revoke".into(), t.clone(), None, 400, "bad_request"),
        ("bad query string", M::GET, "/v1/requests?mine=perhaps".into(), t.clone(), None, 400, "bad_request"),
        ("bad wait", M::GET, format!("/v1/requests/{}?wait=-1", RequestId::generate()), t.clone(), None, 400, "bad_request"),
        ("no such endpoint", M::GET, "/v1/nothing".into(), t.clone(), None, 404, "not_found"),
        ("wrong method", M::DELETE, "/v1/requests".into(), t.clone(), None, 405, "method_not_allowed"),
    ];
    assert_eq!(cases.iter().map(|c| c.0).collect::<Vec<_>>(), CASES);
    BadInput {
        stack: tokio::sync::Mutex::new(stack),
        api,
        alice,
        token,
        good,
        cases,
    }
}

/// The bad calls, by name, in the order `start` makes them.
const CASES: [&str; 21] = [
    "no token",
    "garbage token",
    "token from another key at the same issuer URL",
    "malformed JSON",
    "missing fields",
    "wrong types",
    "a key the token does not commit to",
    "a signature over something else",
    "unknown resource",
    "zero duration",
    "more than a day",
    "malformed SQL",
    "SQL p0 refuses",
    "a table that does not exist",
    "unknown request",
    "approve an unknown request",
    "revoke a malformed id",
    "bad query string",
    "bad wait",
    "no such endpoint",
    "wrong method",
];

/// One bad call: its status and code, and a one-line message.
async fn refused(fx: &BadInput, name: &str) {
    let (what, method, path, token, body, status, code) =
        fx.cases.iter().find(|c| c.0 == name).unwrap();
    let (got, v) = fx
        .api
        .send(method.clone(), path, token.as_deref(), body.as_deref())
        .await;
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        !(got != *status || v["code"] != *code || message.is_empty() || message.contains('\n')),
        "{what}: expected {status} {code}, got {got} {v}"
    );
}

/// The agent down: the server says so, and keeps nothing.
async fn the_agent_down_is_unavailable(fx: &BadInput) {
    let mut stack = fx.stack.lock().await;
    let t = Some(fx.token.as_str());
    stack.stop_agent();
    let (got, v) = fx.api.create(t, &create_body(&fx.alice, &fx.good)).await;
    assert_eq!((got, v["code"].as_str()), (503, Some("unavailable")), "{v}");
    assert!(!v["message"].as_str().unwrap().contains('\n'), "{v}");
    stack.start_agent().await.unwrap();
}

/// Nothing changed.
async fn nothing_changed(fx: &BadInput) {
    use reqwest::Method as M;
    let t = Some(fx.token.as_str());
    let (got, list) = fx.api.send(M::GET, "/v1/requests", t, None).await;
    assert_eq!(got, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    let (_, audit) = fx.api.send(M::GET, "/v1/audit", t, None).await;
    assert_eq!(audit.as_array().unwrap().len(), 0, "{audit}");
    assert!(fx.stack.lock().await.managed_roles().unwrap().is_empty());
}

/// And the same request, valid, goes through: the refusals were judgements.
async fn the_valid_request_goes_through_once(fx: &BadInput) {
    use reqwest::Method as M;
    let (api, t, good) = (&fx.api, Some(fx.token.as_str()), &fx.good);
    let (got, v) = api.create(t, &create_body(&fx.alice, good)).await;
    assert!(got == 200 || got == 201, "{got} {v}");
    let (got, v) = api
        .send(
            M::GET,
            &format!("/v1/requests/{}?wait=30", good.request_id.as_str()),
            t,
            None,
        )
        .await;
    assert_eq!(got, 200, "{v}");
    assert_eq!(v["status"], "active", "{v}");
    // Replaying the same signed request is a conflict, not a second grant.
    let (got, v) = api.create(t, &create_body(&fx.alice, good)).await;
    assert_eq!((got, v["code"].as_str()), (409, Some("conflict")), "{v}");
    assert_eq!(fx.stack.lock().await.managed_users().unwrap().len(), 1);
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let suite = Suite::new(4, start);
    let (cases_done, down_done, unchanged_done) = (Gate::new(), Gate::new(), Gate::new());
    let mut trials: Vec<_> = CASES
        .iter()
        .map(|name| {
            suite.ordered(
                format!("refused::{}", slug(name)),
                vec![],
                Some(cases_done.clone()),
                move |fx: Arc<BadInput>| async move { refused(&fx, name).await },
            )
        })
        .collect();
    cases_done.expect(&args, &trials);
    let after = vec![
        suite.ordered(
            "after_the_cases::the_agent_down_is_unavailable_and_nothing_is_kept",
            vec![cases_done.clone()],
            Some(down_done.clone()),
            |fx: Arc<BadInput>| async move { the_agent_down_is_unavailable(&fx).await },
        ),
        suite.ordered(
            "after_the_cases::nothing_changed",
            vec![cases_done.clone(), down_done.clone()],
            Some(unchanged_done.clone()),
            |fx: Arc<BadInput>| async move { nothing_changed(&fx).await },
        ),
        suite.ordered(
            "after_the_cases::the_same_request_valid_goes_through_once",
            vec![
                cases_done.clone(),
                down_done.clone(),
                unchanged_done.clone(),
            ],
            None,
            |fx: Arc<BadInput>| async move { the_valid_request_goes_through_once(&fx).await },
        ),
    ];
    down_done.expect(&args, &after[..1]);
    unchanged_done.expect(&args, &after[1..2]);
    trials.extend(after);
    suite.run(&args, trials).exit();
}
