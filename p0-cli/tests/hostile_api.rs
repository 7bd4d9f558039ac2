//! The hostile-caller suite of the server's API: someone holding a sniffed ID token, a captured
//! proof, a stale approval, or simply a login without the right role. One test per attack, each
//! against a real stack (server, agent, PostgreSQL). Each asserts that the answer leaks nothing
//! and that nothing changed: the store's requests and audit log byte for byte, and the
//! database's p0 users and roles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::api::approval_digest;
use p0_core::proof::{self, KEY_HEADER, PROOF_HEADER};
use p0_core::seal::key_fingerprint;
use p0_core::{Intent, KeyPair, RequestId, ResourceId, SignedRequest};
use p0_stack::{Stack, DEMO_RULES};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// Someone logged in with the development issuer: their key and their token.
struct User {
    name: String,
    kp: KeyPair,
    token: String,
}

fn user(stack: &Stack, name: &str, groups: &[&str]) -> User {
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
fn proof_by(
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

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One call of the API, with the headers given and nothing else.
async fn raw(
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
fn proven(u: &User, method: &Method, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
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
async fn call(stack: &Stack, u: &User, method: Method, path: &str, body: &[u8]) -> (u16, Value) {
    raw(stack, &method, path, body, &proven(u, &method, path, body)).await
}

/// Alice's signed request to run `sql` on the stack's resource, as the CLI sends it.
fn create_body(stack: &Stack, alice: &User, sql: &str) -> Vec<u8> {
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
struct Fixture {
    stack: Stack,
    alice: User,
    bob: User,
    active: String,
    pending: String,
}

const WRITE: &str = "UPDATE sales.orders SET total = total WHERE id = 1";

async fn fixture() -> Fixture {
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
async fn snapshot(stack: &Stack) -> String {
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
struct Op {
    what: &'static str,
    method: Method,
    path: String,
    body: Vec<u8>,
}

/// Every operation, the approval naming `digest`.
fn ops(fx: &Fixture, digest: &str) -> Vec<Op> {
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
fn assert_refused(fx: &Fixture, what: &str, got: &(u16, Value)) {
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

/// Sends every operation with the headers `forge` makes for it: each must be refused with
/// the generic 401, and nothing may change. Then bob's own valid calls still work, so the
/// refusals were judgements of the forgery.
async fn every_op_refused(fx: &Fixture, forge: impl Fn(&Op) -> Vec<(&'static str, String)>) {
    let before = snapshot(&fx.stack).await;
    for op in ops_with_digest(fx).await {
        let got = raw(&fx.stack, &op.method, &op.path, &op.body, &forge(&op)).await;
        assert_refused(fx, op.what, &got);
    }
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
async fn ops_with_digest(fx: &Fixture) -> Vec<Op> {
    let digest = shown_to_bob(fx).await["digest"]
        .as_str()
        .unwrap()
        .to_string();
    ops(fx, &digest)
}

fn bearer(u: &User) -> (&'static str, String) {
    ("authorization", format!("Bearer {}", u.token))
}

fn key_of(u: &User) -> (&'static str, String) {
    (
        KEY_HEADER,
        proof::key_header(u.kp.public_pem.as_bytes()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sniffed_token_alone_acts_on_nothing() {
    let fx = fixture().await;
    // The bare token, as the agent or a log saw it; and with bob's public key (which is public).
    every_op_refused(&fx, |_| vec![bearer(&fx.bob)]).await;
    every_op_refused(&fx, |_| vec![bearer(&fx.bob), key_of(&fx.bob)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sniffed_token_with_a_proof_by_another_key_acts_on_nothing() {
    let fx = fixture().await;
    let mallory = user(&fx.stack, "mallory@example.com", &[]);
    // Mallory's own key and proof: the token does not commit to her key.
    every_op_refused(&fx, |op| {
        vec![
            bearer(&fx.bob),
            key_of(&mallory),
            (
                PROOF_HEADER,
                proof_by(
                    &mallory,
                    &op.method,
                    &op.path,
                    &op.body,
                    &fx.bob.token,
                    now(),
                ),
            ),
        ]
    })
    .await;
    // Bob's key named, the proof signed by mallory's.
    every_op_refused(&fx, |op| {
        vec![
            bearer(&fx.bob),
            key_of(&fx.bob),
            (
                PROOF_HEADER,
                proof_by(
                    &mallory,
                    &op.method,
                    &op.path,
                    &op.body,
                    &fx.bob.token,
                    now(),
                ),
            ),
        ]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_captured_proof_for_another_call_acts_on_nothing() {
    let fx = fixture().await;
    let with = |proof: String| vec![bearer(&fx.bob), key_of(&fx.bob), (PROOF_HEADER, proof)];
    // Bob's genuine proofs, each for something other than the call it is sent with.
    every_op_refused(&fx, |op| {
        let other = if op.path == "/v1/audit" {
            "/v1/requests"
        } else {
            "/v1/audit"
        };
        with(proof_by(
            &fx.bob,
            &op.method,
            other,
            &op.body,
            &fx.bob.token,
            now(),
        ))
    })
    .await;
    every_op_refused(&fx, |op| {
        let other = if op.method == Method::GET {
            Method::POST
        } else {
            Method::GET
        };
        with(proof_by(
            &fx.bob,
            &other,
            &op.path,
            &op.body,
            &fx.bob.token,
            now(),
        ))
    })
    .await;
    every_op_refused(&fx, |op| {
        with(proof_by(
            &fx.bob,
            &op.method,
            &op.path,
            br#"{"digest":"other"}"#,
            &fx.bob.token,
            now(),
        ))
    })
    .await;
    // The same path with another query string.
    every_op_refused(&fx, |op| {
        with(proof_by(
            &fx.bob,
            &op.method,
            &format!("{}?mine=true", op.path),
            &op.body,
            &fx.bob.token,
            now(),
        ))
    })
    .await;
    // A proof made for another token (alice's) of the same key holder's call.
    every_op_refused(&fx, |op| {
        with(proof_by(
            &fx.bob,
            &op.method,
            &op.path,
            &op.body,
            &fx.alice.token,
            now(),
        ))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_or_future_proof_acts_on_nothing() {
    let fx = fixture().await;
    for shift in [
        -(proof::PROOF_MAX_SKEW_SECS + 5),
        -3600,
        proof::PROOF_MAX_SKEW_SECS + 5,
    ] {
        every_op_refused(&fx, |op| {
            vec![
                bearer(&fx.bob),
                key_of(&fx.bob),
                (
                    PROOF_HEADER,
                    proof_by(
                        &fx.bob,
                        &op.method,
                        &op.path,
                        &op.body,
                        &fx.bob.token,
                        now() + shift,
                    ),
                ),
            ]
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_call_is_refused() {
    let fx = fixture().await;
    // Bob's genuine calls, each sent once and then replayed byte for byte.
    let ops = ops_with_digest(&fx).await;
    for op in ops
        .iter()
        .filter(|o| o.what != "deny" && o.what != "revoke")
    {
        let headers = proven(&fx.bob, &op.method, &op.path, &op.body);
        let (s, v) = raw(&fx.stack, &op.method, &op.path, &op.body, &headers).await;
        assert_eq!(s, 200, "{}: {v}", op.what);
        let before = snapshot(&fx.stack).await;
        let again = raw(&fx.stack, &op.method, &op.path, &op.body, &headers).await;
        assert_refused(&fx, op.what, &again);
        assert_eq!(
            snapshot(&fx.stack).await,
            before,
            "{}: a replay changed something",
            op.what
        );
    }
    // The approval went through once: one approval, by bob.
    let (_, v) = call(
        &fx.stack,
        &fx.alice,
        Method::GET,
        &format!("/v1/requests/{}", fx.pending),
        b"",
    )
    .await;
    assert_eq!(v["approvals"], json!(["bob@example.com"]), "{v}");
}

/// Alice's pending request as bob sees it.
async fn shown_to_bob(fx: &Fixture) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_of_other_content_does_not_count() {
    let fx = fixture().await;
    let v = shown_to_bob(&fx).await;
    let shown: p0_core::api::RequestView = serde_json::from_value(v.clone()).unwrap();
    // What bob might have been shown instead: a narrower statement, a reason, a requester.
    let mut narrower = shown.signed.clone();
    narrower.intent = Intent::Query("SELECT 1 FROM sales.orders".into());
    let mut reason = shown.signed.clone();
    reason.reason = "routine".into();
    let others = [
        approval_digest(&shown.requester, &narrower, shown.permissions.as_ref()),
        approval_digest(&shown.requester, &reason, shown.permissions.as_ref()),
        approval_digest(
            "carol@example.com",
            &shown.signed,
            shown.permissions.as_ref(),
        ),
        approval_digest(&shown.requester, &shown.signed, None),
        "0".repeat(64),
        String::new(),
    ];
    let before = snapshot(&fx.stack).await;
    let path = format!("/v1/requests/{}/approve", fx.pending);
    for digest in &others {
        let body = serde_json::to_vec(&json!({ "digest": digest })).unwrap();
        let (s, v) = call(&fx.stack, &fx.bob, Method::POST, &path, &body).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (409, Some("conflict")),
            "{digest}: {v}"
        );
    }
    // No digest at all (what an older CLI sends) is refused too.
    let (s, v) = call(&fx.stack, &fx.bob, Method::POST, &path, b"{}").await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        snapshot(&fx.stack).await,
        before,
        "a refused approval changed something"
    );
    assert_eq!(shown_to_bob(&fx).await["status"], "pending_approval");
    // The digest of what bob was shown is the server's, and it approves.
    assert_eq!(shown.approval_digest(), shown.digest);
    let body = serde_json::to_vec(&json!({ "digest": shown.digest })).unwrap();
    let (s, v) = call(&fx.stack, &fx.bob, Method::POST, &path, &body).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("provisioning")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_of_an_earlier_version_does_not_count() {
    let mut fx = fixture().await;
    let shown = shown_to_bob(&fx).await;
    let old = shown["digest"].as_str().unwrap().to_string();
    let path = format!("/v1/requests/{}/approve", fx.pending);
    let body = serde_json::to_vec(&json!({ "digest": old })).unwrap();
    let (s, v) = call(&fx.stack, &fx.bob, Method::POST, &path, &body).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("provisioning")),
        "{v}"
    );
    // The request changes after the approval and before alice picks it up: one privilege
    // fewer (as a re-extraction against a changed catalog could make it).
    let users = fx.stack.managed_users().unwrap();
    fx.stack.stop_server();
    tamper(
        fx.stack.store_path(),
        &format!(
            "UPDATE requests SET body = json_remove(body, '$.permissions[#-1]') WHERE id = '{}'",
            fx.pending
        ),
    )
    .await;
    fx.stack.start_server().await.unwrap();
    // Alice's pickup does not provision: bob's approval is for what he saw, not this.
    let (s, v) = call(
        &fx.stack,
        &fx.alice,
        Method::GET,
        &format!("/v1/requests/{}", fx.pending),
        b"",
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("pending_approval")),
        "{v}"
    );
    assert_eq!(v["approvals"], json!([]), "{v}");
    assert_ne!(v["digest"], old.as_str(), "{v}");
    assert_eq!(
        fx.stack.managed_users().unwrap(),
        users,
        "nothing was created"
    );
    // The old digest no longer approves anything, and changes nothing.
    let before = snapshot(&fx.stack).await;
    let (s, v) = call(&fx.stack, &fx.bob, Method::POST, &path, &body).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("conflict")), "{v}");
    assert_eq!(snapshot(&fx.stack).await, before);
}

/// Runs one statement on the server's store behind its back.
async fn tamper(store: &Path, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", store.display()))
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_approver_sees_and_ends_no_one_elses_requests() {
    let fx = fixture().await;
    let carol = user(&fx.stack, "carol@example.com", &["sales"]);
    let before = snapshot(&fx.stack).await;
    let digest = shown_to_bob(&fx).await["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = call(&fx.stack, &carol, Method::GET, "/v1/requests", b"").await;
    assert_eq!((s, v.clone()), (200, json!([])), "{v}");
    for (method, path, body) in [
        (Method::GET, format!("/v1/requests/{}", fx.pending), vec![]),
        (
            Method::GET,
            format!("/v1/requests/{}?wait=1", fx.active),
            vec![],
        ),
        (
            Method::POST,
            format!("/v1/requests/{}/approve", fx.pending),
            serde_json::to_vec(&json!({ "digest": digest })).unwrap(),
        ),
        (
            Method::POST,
            format!("/v1/requests/{}/deny", fx.pending),
            b"{}".to_vec(),
        ),
        (
            Method::POST,
            format!("/v1/requests/{}/revoke", fx.active),
            b"{}".to_vec(),
        ),
    ] {
        let (s, v) = call(&fx.stack, &carol, method, &path, &body).await;
        assert_eq!(
            (s, v.clone()),
            (
                404,
                json!({"code": "not_found", "message": "no such request"})
            ),
            "{path}: {v}"
        );
    }
    assert_eq!(snapshot(&fx.stack).await, before, "carol changed something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_auditor_cannot_read_the_audit_log() {
    let fx = fixture().await;
    let carol = user(&fx.stack, "carol@example.com", &["sales"]);
    let before = snapshot(&fx.stack).await;
    // Neither a plain user nor a requester who is no auditor (dave asked for access himself).
    let dave = user(&fx.stack, "dave@example.com", &[]);
    let body = create_body(&fx.stack, &dave, "SELECT name FROM sales.customers");
    let (s, _) = call(&fx.stack, &dave, Method::POST, "/v1/requests", &body).await;
    assert_eq!(s, 201);
    let before_dave = snapshot(&fx.stack).await;
    assert_ne!(before, before_dave);
    for who in [&carol, &dave] {
        let (s, v) = call(&fx.stack, who, Method::GET, "/v1/audit", b"").await;
        assert_eq!(
            (s, v.clone()),
            (
                403,
                json!({"code": "forbidden", "message": "the audit log is for auditors"})
            ),
            "{}: {v}",
            who.name
        );
    }
    assert_eq!(snapshot(&fx.stack).await, before_dave);
    // An auditor reads it.
    let (s, v) = call(&fx.stack, &fx.bob, Method::GET, "/v1/audit", b"").await;
    assert_eq!(s, 200, "{v}");
    assert!(v.as_array().unwrap().len() >= 4, "{v}");
}

/// Revokes alice's auto-approved lease as `who` and checks that it is gone and that the audit
/// log names `who`.
async fn ends_the_auto_approved_lease(fx: &Fixture, who: &User) {
    let (_, v) = call(
        &fx.stack,
        &fx.alice,
        Method::GET,
        &format!("/v1/requests/{}", fx.active),
        b"",
    )
    .await;
    let username = v["grant"]["username"].as_str().unwrap().to_string();
    assert_eq!(v["decision"]["decision"], "approve", "auto-approved: {v}");
    assert!(fx.stack.managed_users().unwrap().contains(&username));
    let (s, v) = call(&fx.stack, who, Method::GET, "/v1/requests", b"").await;
    assert_eq!(s, 200);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == fx.active.as_str()),
        "{} sees it: {v}",
        who.name
    );
    let (s, v) = call(
        &fx.stack,
        who,
        Method::POST,
        &format!("/v1/requests/{}/revoke", fx.active),
        b"{}",
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("revoked")), "{v}");
    assert!(!fx.stack.managed_users().unwrap().contains(&username));
    let (_, log) = call(&fx.stack, &fx.bob, Method::GET, "/v1/audit", b"").await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "lease.revoked")
        .unwrap_or_else(|| panic!("no revocation in {log}"));
    assert_eq!(entry["actor"], who.name.as_str(), "{entry}");
    assert_eq!(entry["request_id"], fx.active.as_str(), "{entry}");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("by {}", who.name)),
        "{entry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approver_ends_an_auto_approved_lease_and_the_audit_names_them() {
    let fx = fixture().await;
    ends_the_auto_approved_lease(&fx, &fx.bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_sees_and_ends_any_lease() {
    let fx = fixture().await;
    // Erin approves nothing under the rules; she is an admin (the stack's `admins`).
    let erin = user(&fx.stack, "erin@example.com", &["admins"]);
    ends_the_auto_approved_lease(&fx, &erin).await;
}

/// The `p0` binary with its own config dir, logged in with the development issuer.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn login(stack: &Stack, email: &str, groups: &[&str]) -> Self {
        let c = Cli {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut args = vec!["login", "--dev", email, "--server", &stack.server_url];
        for g in groups {
            args.extend(["--group", g]);
        }
        let out = c.p0(&args);
        assert!(out.status.success(), "login: {}", text(&out));
        c
    }

    fn p0(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_p0"))
            .args(args)
            .env("P0_CONFIG_DIR", self.dir.path())
            .env_remove("P0_SERVER")
            .output()
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvers_see_sql_privileges_and_rule_before_approving() {
    let mut stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let hooks: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = hooks.clone();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move { sink.lock().unwrap().push(v) }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await.unwrap() });
    stack.stop_server();
    stack.set_webhook(&hook_url);
    stack.start_server().await.unwrap();
    let alice = Cli::login(&stack, "alice@example.com", &[]);
    let bob = Cli::login(&stack, "bob@example.com", &["dba"]);
    // A reason that tries to hide itself from the approver's terminal.
    let reason = "fix\u{1b}[8m hidden";
    let out = alice.p0(&[
        "request",
        "--resource",
        &stack.resource,
        "-c",
        WRITE,
        "--reason",
        reason,
        "--duration",
        "5m",
        "--no-wait",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let id = text(&out)
        .split_whitespace()
        .skip_while(|w| *w != "request")
        .nth(1)
        .unwrap()
        .to_string();

    // p0 show: everything, readable, nothing a terminal would act on.
    let out = bob.p0(&["show", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    for expected in [
        "requester    alice@example.com",
        &format!("resource     {}", stack.resource),
        "reason       fix\\u{1b}[8m hidden",
        "duration     5m 0s (the rule allows at most 1h 0m 0s)",
        &format!("sql          {WRITE}"),
        "UPDATE on table sales.orders",
        "CONNECT on database app",
        "needs 1 approval(s) from group:dba (rule `anything else needs a DBA`)",
        "approvals    none yet",
        "status       pending_approval, waiting",
    ] {
        assert!(shown.contains(expected), "`{expected}` not in:\n{shown}");
    }
    assert!(!shown.contains('\u{1b}'), "{shown}");
    // --json and ls --json carry the same.
    let out = bob.p0(&["show", &id, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signed"]["intent"]["query"], WRITE, "{v}");
    assert_eq!(v["rule"], "anything else needs a DBA", "{v}");
    assert!(v["permissions"].as_array().unwrap().len() >= 3, "{v}");
    let digest = v["digest"].as_str().unwrap().to_string();
    assert!(shown.contains(&format!("digest       {digest}")), "{shown}");
    let out = bob.p0(&["ls", "--all", "--json"]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = all["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed, &v);

    // The webhook: Slack text with the SQL and privileges, and the same as fields.
    let hook = hooks
        .lock()
        .unwrap()
        .iter()
        .find(|h| h["event"] == "request.pending")
        .cloned()
        .unwrap();
    let t = hook["text"].as_str().unwrap();
    assert!(
        t.contains(WRITE) && t.contains("UPDATE on table sales.orders") && t.contains(&id),
        "{t}"
    );
    let r = &hook["request"];
    assert_eq!(
        (r["sql"].as_str(), r["requester"].as_str()),
        (Some(WRITE), Some("alice@example.com")),
        "{hook}"
    );
    assert_eq!(
        (r["duration_secs"].as_u64(), r["max_duration_secs"].as_u64()),
        (Some(300), Some(3600)),
        "{hook}"
    );
    assert_eq!(r["approvers"], json!(["group:dba"]), "{hook}");
    assert_eq!(r["digest"], digest.as_str(), "{hook}");
    assert!(
        r["privileges"]
            .as_array()
            .unwrap()
            .contains(&json!("UPDATE on table sales.orders")),
        "{hook}"
    );

    // The audit entry of the request says what was asked, why and for how long.
    let out = alice.p0(&["audit", "--json"]);
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let created = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "request.created")
        .unwrap();
    let detail: Value = serde_json::from_str(created["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        (detail["sql"].as_str(), detail["duration_secs"].as_u64()),
        (Some(WRITE), Some(300)),
        "{detail}"
    );
    assert_eq!(detail["reason"], reason, "{detail}");
    assert!(
        detail["privileges"].as_array().unwrap().len() >= 3,
        "{detail}"
    );

    // p0 approve prints what it approves, then approves exactly that.
    let out = bob.p0(&["approve", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(WRITE) && said.contains(&digest) && said.contains("provisioning"),
        "{said}"
    );
    let out = alice.p0(&["request", "--resume", &id]);
    assert!(
        text(&out).contains("granted: user p0_alice_"),
        "{}",
        text(&out)
    );
}
