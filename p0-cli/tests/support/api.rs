//! The hostile callers of the server's API: users logged in with the development issuer, their
//! proofs (genuine or forged), a stack where alice holds a live lease and waits for approval
//! of a write, and what a refused call must leave unchanged.

use p0_core::proof::{self, KEY_HEADER, PROOF_HEADER};
use p0_core::seal::key_fingerprint;
use p0_core::{Intent, KeyPair, RequestId, ResourceId, SignedRequest};
use p0_stack::{Stack, DEMO_RULES};
use reqwest::Method;
use serde_json::{json, Value};

/// Someone logged in with the development issuer: their key and their token.
pub struct User {
    pub name: String,
    pub kp: KeyPair,
    pub token: String,
}

pub fn user(stack: &Stack, name: &str, groups: &[&str]) -> User {
    let kp = KeyPair::generate().unwrap();
    let nonce = key_fingerprint(kp.public_pem.as_bytes()).unwrap();
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let token = stack
        .dev_issuer()
        .unwrap()
        .issue(name, &groups, &nonce, "p0")
        .unwrap()
        .expose_secret()
        .to_string();
    User {
        name: name.into(),
        kp,
        token,
    }
}

/// A proof by `signer` for a call, made at `iat`.
pub fn proof_by(
    signer: &User,
    method: &Method,
    path: &str,
    body: &[u8],
    token: &str,
    iat: i64,
) -> String {
    proof::sign(
        &signer.kp.private_pem,
        method.as_str(),
        path,
        body,
        token,
        iat,
    )
    .unwrap()
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One call of the API, with the headers given and nothing else.
pub async fn raw(
    stack: &Stack,
    method: &Method,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut r =
        reqwest::Client::new().request(method.clone(), format!("{}{path}", stack.server_url));
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    if !body.is_empty() {
        r = r
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The headers of a valid call by `u`.
pub fn proven(u: &User, method: &Method, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {}", u.token)),
        (
            KEY_HEADER,
            proof::key_header(u.kp.public_pem.as_bytes()).unwrap(),
        ),
        (
            PROOF_HEADER,
            proof_by(u, method, path, body, &u.token, now()),
        ),
    ]
}

/// A valid call by `u`.
pub async fn call(
    stack: &Stack,
    u: &User,
    method: Method,
    path: &str,
    body: &[u8],
) -> (u16, Value) {
    raw(stack, &method, path, body, &proven(u, &method, path, body)).await
}

/// Alice's signed request to run `sql` on the stack's resource, as the CLI sends it.
pub fn create_body(stack: &Stack, alice: &User, sql: &str) -> Vec<u8> {
    let signed = SignedRequest {
        request_id: RequestId::generate(),
        resource: ResourceId::new(stack.resource.clone()).unwrap(),
        intent: Intent::Query(sql.into()),
        reason: "quarterly fix".into(),
        duration_secs: 600,
        issued_at: now(),
    };
    serde_json::to_vec(&json!({
        "signature": signed.sign(&alice.kp.private_pem).unwrap(),
        "signed": signed,
        "public_key": alice.kp.public_pem,
    }))
    .unwrap()
}

/// A stack where alice holds a live auto-approved lease (a read) and waits for approval of a
/// write; bob is a DBA (an approver of every resource, and an auditor).
pub struct Fixture {
    pub stack: Stack,
    pub alice: User,
    pub bob: User,
    pub active: String,
    pub pending: String,
}

pub const WRITE: &str = "UPDATE sales.orders SET total = total WHERE id = 1";

pub async fn fixture() -> Fixture {
    let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let alice = user(&stack, "alice@example.com", &[]);
    let bob = user(&stack, "bob@example.com", &["dba"]);
    let read = create_body(&stack, &alice, "SELECT name FROM sales.customers");
    let (s, v) = call(&stack, &alice, Method::POST, "/v1/requests", &read).await;
    assert_eq!((s, v["status"].as_str()), (201, Some("active")), "{v}");
    let active = v["id"].as_str().unwrap().to_string();
    let write = create_body(&stack, &alice, WRITE);
    let (s, v) = call(&stack, &alice, Method::POST, "/v1/requests", &write).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (201, Some("pending_approval")),
        "{v}"
    );
    let pending = v["id"].as_str().unwrap().to_string();
    Fixture {
        stack,
        alice,
        bob,
        active,
        pending,
    }
}

/// Everything that could change: every stored request and audit entry, and the database's
/// p0 users and roles.
pub async fn snapshot(stack: &Stack) -> String {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}?mode=ro", stack.store_path().display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mut out = String::new();
    for q in [
        "SELECT id || ' ' || status || ' ' || body FROM requests ORDER BY id",
        "SELECT seq || ' ' || actor || ' ' || action || ' ' || detail || ' ' || hash FROM audit ORDER BY seq",
    ] {
        for row in sqlx::query(q).fetch_all(&mut c).await.unwrap() {
            out.push_str(&row.get::<String, _>(0));
            out.push('\n');
        }
    }
    c.close().await.unwrap();
    out.push_str(&stack.managed_roles().unwrap().join("\n"));
    out
}

/// One API operation on alice's requests, as bob would make it.
pub struct Op {
    pub what: &'static str,
    pub method: Method,
    pub path: String,
    pub body: Vec<u8>,
}

/// Every operation, the approval naming `digest`.
pub fn ops(fx: &Fixture, digest: &str) -> Vec<Op> {
    let op = |what, method, path: String, body: Vec<u8>| Op {
        what,
        method,
        path,
        body,
    };
    vec![
        op("list", Method::GET, "/v1/requests".into(), vec![]),
        op(
            "show",
            Method::GET,
            format!("/v1/requests/{}", fx.pending),
            vec![],
        ),
        op(
            "approve",
            Method::POST,
            format!("/v1/requests/{}/approve", fx.pending),
            serde_json::to_vec(&json!({ "digest": digest })).unwrap(),
        ),
        op(
            "deny",
            Method::POST,
            format!("/v1/requests/{}/deny", fx.pending),
            b"{}".to_vec(),
        ),
        op(
            "revoke",
            Method::POST,
            format!("/v1/requests/{}/revoke", fx.active),
            b"{}".to_vec(),
        ),
        op("audit", Method::GET, "/v1/audit".into(), vec![]),
    ]
}

/// Asserts that an answer is the one generic refusal and names nothing of the fixture.
pub fn assert_refused(fx: &Fixture, what: &str, got: &(u16, Value)) {
    let (status, body) = got;
    assert_eq!(*status, 401, "{what}: {body}");
    assert_eq!(body["code"], "unauthenticated", "{what}: {body}");
    let text = body.to_string();
    for secret in [
        fx.active.as_str(),
        fx.pending.as_str(),
        "sales",
        "alice",
        "UPDATE",
    ] {
        assert!(
            !text.contains(secret),
            "{what}: the refusal names `{secret}`: {text}"
        );
    }
}

/// The operations, by name, in the order [`ops`] makes them.
pub const OPS: [&str; 6] = ["list", "show", "approve", "deny", "revoke", "audit"];

/// Sends the operation `what` with the headers `forge` makes for it: it must be refused with
/// the generic 401, and nothing may change. Then bob's own valid calls still work, so the
/// refusal was a judgement of the forgery.
pub async fn op_refused(
    fx: &Fixture,
    what: &str,
    forge: impl Fn(&Op) -> Vec<(&'static str, String)>,
) {
    let before = snapshot(&fx.stack).await;
    let ops = ops_with_digest(fx).await;
    assert_eq!(ops.iter().map(|o| o.what).collect::<Vec<_>>(), OPS);
    let op = ops.into_iter().find(|o| o.what == what).unwrap();
    let got = raw(&fx.stack, &op.method, &op.path, &op.body, &forge(&op)).await;
    assert_refused(fx, op.what, &got);
    assert_eq!(
        snapshot(&fx.stack).await,
        before,
        "a refused call changed something"
    );
    let (s, v) = call(&fx.stack, &fx.bob, Method::GET, "/v1/requests", b"").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
}

/// The operations, with the approval naming the right digest (so that only the forgery can
/// be what refuses it).
pub async fn ops_with_digest(fx: &Fixture) -> Vec<Op> {
    let digest = shown_to_bob(fx).await["digest"]
        .as_str()
        .unwrap()
        .to_string();
    ops(fx, &digest)
}

pub fn bearer(u: &User) -> (&'static str, String) {
    ("authorization", format!("Bearer {}", u.token))
}

pub fn key_of(u: &User) -> (&'static str, String) {
    (
        KEY_HEADER,
        proof::key_header(u.kp.public_pem.as_bytes()).unwrap(),
    )
}

/// Alice's pending request as bob sees it.
pub async fn shown_to_bob(fx: &Fixture) -> Value {
    let (s, v) = call(
        &fx.stack,
        &fx.bob,
        Method::GET,
        &format!("/v1/requests/{}", fx.pending),
        b"",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}
