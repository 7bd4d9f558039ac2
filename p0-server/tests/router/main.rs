//! The router's answers, driven through `build_router` with `tower::ServiceExt::oneshot`: no
//! socket, no database server, an agent stand-in that only answers explain. Calls carry properly
//! signed proofs of possession; requests for a role need nothing else of an agent until
//! pick-up, so a whole approval can run here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replicas;
mod support;

use axum::http::StatusCode;
use p0_core::RequestId;
use serde_json::json;
use support::{app, refused, Auth};

pub(crate) const UNAUTHENTICATED: &str = "not authenticated: a valid login token and a fresh proof of its key are needed (run `p0 login` if this persists)";

#[tokio::test]
async fn health_answers_without_a_token() {
    let app = app(false).await;
    let (s, v) = app.send(Auth::None, "GET", "/v1/health", b"").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"ok": true})));
}

#[tokio::test]
async fn unknown_endpoints_and_methods_answer_in_the_api_shape() {
    let app = app(false).await;
    refused(
        app.send(Auth::None, "GET", "/v1/nope", b"").await,
        404,
        "not_found",
        "no such endpoint",
    );
    refused(
        app.send(Auth::None, "DELETE", "/v1/requests", b"").await,
        405,
        "method_not_allowed",
        "this endpoint does not take that method",
    );
    // Without a dev issuer, its routes do not exist.
    refused(
        app.send(Auth::None, "POST", "/dev/token", b"{}").await,
        404,
        "not_found",
        "no such endpoint",
    );
}

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated() {
    let app = app(false).await;
    refused(
        app.send(Auth::None, "GET", "/v1/requests", b"").await,
        401,
        "unauthenticated",
        UNAUTHENTICATED,
    );
}

#[tokio::test]
async fn a_token_the_issuer_did_not_sign_is_unauthenticated() {
    let app = app(false).await;
    let mut h = app.headers(app.who("alice"), "GET", "/v1/requests", b"");
    h[0].1 = "Bearer forged".into();
    refused(
        app.send(Auth::Headers(h), "GET", "/v1/requests", b"").await,
        401,
        "unauthenticated",
        UNAUTHENTICATED,
    );
}

#[tokio::test]
async fn a_token_without_a_proof_is_unauthenticated() {
    let app = app(false).await;
    let mut h = app.headers(app.who("alice"), "GET", "/v1/requests", b"");
    h.truncate(2);
    refused(
        app.send(Auth::Headers(h), "GET", "/v1/requests", b"").await,
        401,
        "unauthenticated",
        UNAUTHENTICATED,
    );
}

#[tokio::test]
async fn a_proof_of_another_call_is_unauthenticated() {
    let app = app(false).await;
    let h = app.headers(app.who("alice"), "GET", "/v1/requests?mine=true", b"");
    refused(
        app.send(Auth::Headers(h), "GET", "/v1/requests", b"").await,
        401,
        "unauthenticated",
        UNAUTHENTICATED,
    );
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let app = app(false).await;
    let h = app.headers(app.who("alice"), "GET", "/v1/requests", b"");
    let (s, v) = app
        .send(Auth::Headers(h.clone()), "GET", "/v1/requests", b"")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    refused(
        app.send(Auth::Headers(h), "GET", "/v1/requests", b"").await,
        401,
        "unauthenticated",
        UNAUTHENTICATED,
    );
}

#[tokio::test]
async fn a_proof_by_a_key_the_token_does_not_commit_to_is_unauthenticated() {
    let app = app(false).await;
    // Mallory's key and proof, with alice's token.
    let mut h = app.headers(app.who("mallory"), "GET", "/v1/requests", b"");
    h[0].1 = format!("Bearer {}", app.who("alice").token);
    refused(
        app.send(Auth::Headers(h), "GET", "/v1/requests", b"").await,
        401,
        "unauthenticated",
        UNAUTHENTICATED,
    );
}

#[tokio::test]
async fn an_unknown_request_is_not_found_and_a_malformed_id_a_bad_request() {
    let app = app(false).await;
    let path = format!("/v1/requests/{}", RequestId::generate());
    refused(
        app.call("alice", "GET", &path, b"").await,
        404,
        "not_found",
        "no such request",
    );
    refused(
        app.call("alice", "GET", "/v1/requests/x", b"").await,
        400,
        "bad_request",
        "",
    );
}

#[tokio::test]
async fn a_malformed_body_or_query_is_a_one_line_bad_request() {
    let app = app(false).await;
    refused(
        app.call("alice", "POST", "/v1/requests", b"{").await,
        400,
        "bad_request",
        "invalid request body: ",
    );
    refused(
        app.call("alice", "GET", "/v1/requests?mine=maybe", b"")
            .await,
        400,
        "bad_request",
        "invalid query string: ",
    );
}

#[tokio::test]
async fn a_duration_over_a_day_is_refused() {
    let app = app(false).await;
    let body = app.create_body("alice", 86_401);
    refused(
        app.call("alice", "POST", "/v1/requests", &body).await,
        400,
        "bad_request",
        "duration must be between 1 second and 24 hours",
    );
}

#[tokio::test]
async fn a_request_by_another_key_than_the_token_commits_to_is_forbidden() {
    let app = app(false).await;
    // Signed by mallory's key, sent with alice's token and proof.
    let body = app.create_body("mallory", 600);
    refused(
        app.call("alice", "POST", "/v1/requests", &body).await,
        403,
        "forbidden",
        "the public key is not the one your login token commits to",
    );
}

#[tokio::test]
async fn only_an_approver_approves_and_never_their_own_request() {
    let app = app(false).await;
    let r = app.pending("alice").await;
    let path = format!("/v1/requests/{}/approve", r.id);
    let body = serde_json::to_vec(&json!({ "digest": r.approval_digest() })).unwrap();
    // A stranger does not even learn it exists; an admin sees it but does not approve.
    refused(
        app.call("mallory", "POST", &path, &body).await,
        404,
        "not_found",
        "no such request",
    );
    refused(
        app.call("root", "POST", &path, &body).await,
        403,
        "forbidden",
        "you are not an approver of this request",
    );
    refused(
        app.call("alice", "POST", &path, &body).await,
        403,
        "forbidden",
        "you are not an approver of this request",
    );
    // An approver asking for themselves.
    let own = app.pending("dave").await;
    let own_body = serde_json::to_vec(&json!({ "digest": own.approval_digest() })).unwrap();
    refused(
        app.call(
            "dave",
            "POST",
            &format!("/v1/requests/{}/approve", own.id),
            &own_body,
        )
        .await,
        403,
        "forbidden",
        "you cannot approve your own request",
    );
}

#[tokio::test]
async fn an_approval_names_the_content_it_approves() {
    let app = app(false).await;
    let r = app.pending("alice").await;
    let path = format!("/v1/requests/{}/approve", r.id);
    refused(
        app.call("bob", "POST", &path, br#"{"digest": "something else"}"#)
            .await,
        409,
        "conflict",
        "the request is not what you approved (digest mismatch)",
    );
    let body = serde_json::to_vec(&json!({ "digest": r.approval_digest() })).unwrap();
    let (s, v) = app.call("bob", "POST", &path, &body).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("provisioning")),
        "{v}"
    );
    assert_eq!(v["approvals"], json!(["bob"]));
    // An approver's view carries no grant, and the request no longer waits.
    assert!(v["grant"].is_null());
    refused(
        app.call("dave", "POST", &path, &body).await,
        409,
        "conflict",
        "request is provisioning",
    );
}

#[tokio::test]
async fn the_requester_withdraws_and_only_active_leases_end() {
    let app = app(false).await;
    let r = app.pending("alice").await;
    refused(
        app.call(
            "alice",
            "POST",
            &format!("/v1/requests/{}/revoke", r.id),
            b"",
        )
        .await,
        409,
        "conflict",
        "request is pending_approval",
    );
    refused(
        app.call(
            "mallory",
            "POST",
            &format!("/v1/requests/{}/deny", r.id),
            b"",
        )
        .await,
        404,
        "not_found",
        "no such request",
    );
    let (s, v) = app
        .call("alice", "POST", &format!("/v1/requests/{}/deny", r.id), b"")
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("denied")),
        "{v}"
    );
    assert_eq!(v["message"], "denied by alice");
}

#[tokio::test]
async fn the_audit_log_is_for_auditors() {
    let app = app(false).await;
    app.pending("alice").await;
    refused(
        app.call("root", "GET", "/v1/audit", b"").await,
        403,
        "forbidden",
        "the audit log is for auditors",
    );
    let (s, v) = app.call("ann", "GET", "/v1/audit", b"").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v[0]["action"], "request.created", "{v}");
}

#[tokio::test]
async fn the_dev_issuer_refuses_an_invalid_user() {
    let app = app(true).await;
    let body = br#"{"user": "", "nonce": "n"}"#;
    refused(
        app.send(Auth::None, "POST", "/dev/token", body).await,
        400,
        "bad_request",
        "invalid user",
    );
    let (s, v) = app.send(Auth::None, "GET", "/dev/jwks", b"").await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn the_list_comes_in_pages_that_say_where_the_next_starts() {
    let app = app(false).await;
    for _ in 0..3 {
        app.pending("alice").await;
    }
    let first = app
        .send_raw(app.who("alice"), "GET", "/v1/requests?mine=true&limit=2")
        .await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(first.1.as_array().map(Vec::len), Some(2), "{}", first.1);
    let next = first.2.expect("a full page names the next");
    let path = format!("/v1/requests?mine=true&limit=2&before={}", next);
    let second = app.send_raw(app.who("alice"), "GET", &path).await;
    assert_eq!(second.0, StatusCode::OK, "{}", second.1);
    assert_eq!(second.1.as_array().map(Vec::len), Some(1), "{}", second.1);
    assert!(second.2.is_none(), "the last page names no next");
}

#[tokio::test]
async fn a_page_never_says_where_a_request_the_caller_may_not_see_is() {
    let app = app(false).await;
    let own = app.pending("mallory").await;
    for _ in 0..3 {
        app.pending("alice").await;
    }
    // Mallory oversees nothing: her page is her request, and no cursor names one of alice's.
    let (s, v, next) = app
        .send_raw(app.who("mallory"), "GET", "/v1/requests?limit=1")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v[0]["id"], own.id.as_str(), "{v}");
    assert!(next.is_none(), "{next:?}");
    // Bob approves every resource: his full page's cursor names the last request he was shown.
    let (s, v, next) = app
        .send_raw(app.who("bob"), "GET", "/v1/requests?limit=2")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let next = next.expect("a full page names the next");
    assert!(
        next.ends_with(&format!("_{}", v[1]["id"].as_str().unwrap())),
        "{next} {v}"
    );
    refused(
        app.call("bob", "GET", "/v1/requests?before=yesterday", b"")
            .await,
        400,
        "bad_request",
        "`before` is neither a page cursor",
    );
}
