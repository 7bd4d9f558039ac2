//! The hostile-caller suite of the server's API, replays and approvals: bob's genuine calls
//! replayed byte for byte, and approvals of content other than what is pending (other SQL,
//! reason or requester, or an earlier version of the request). One test per attack, each
//! against a real stack (server, agent, PostgreSQL), each asserting that nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::api::approval_digest;
use p0_core::Intent;
use reqwest::Method;
use serde_json::json;
use support::api::{
    assert_refused, call, fixture, ops_with_digest, proven, raw, shown_to_bob, snapshot,
};
use support::cli::tamper;

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
