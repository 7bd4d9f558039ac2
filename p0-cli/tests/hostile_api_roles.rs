//! The hostile-caller suite of the server's API, roles: a user who is no approver sees and ends
//! no one else's requests, and one who is no auditor reads no audit log; an approver and an
//! admin end an auto-approved lease, and the audit log names them. Each against a real stack.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::Method;
use serde_json::json;
use support::api::{call, create_body, fixture, shown_to_bob, snapshot, user, Fixture, User};

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
