//! Stale and replayed calls to the agent: the test is a compromised server holding the
//! agent's HMAC secret and a call the requester really signed. Each attack is one test; each
//! asserts the refusal and that the database holds no new user. The pickup of an approved
//! request is in `hostile_pickup.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::api::ProvisionCall;
use serde_json::json;
use support::agent::{assert_refused, now, Server};

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

/// Provisions `call`, revokes its user early through the agent (as a requester's `p0 revoke`
/// does), restarts the agent (its memory of the request is gone), and sends `again`: the
/// request's claim in the database refuses it, and no user appears.
async fn replay_after_revocation(s: &mut Server, call: &ProvisionCall, again: &ProvisionCall) {
    let (status, v) = s.provision(call).await;
    assert_eq!(status, 200, "{v}");
    let user = v["username"].as_str().unwrap().to_string();
    let (status, v) = s.post("/v1/revoke", &json!({ "username": user })).await;
    assert_eq!(status, 200, "{v}");
    assert!(s.users().is_empty(), "revocation left {:?}", s.users());
    s.stack.stop_agent();
    s.stack.start_agent().await.unwrap();
    let (status, v) = s.provision(again).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["message"], "request id already used");
    assert!(s.users().is_empty(), "the replay created {:?}", s.users());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_after_an_early_revocation_and_an_agent_restart_is_refused() {
    let mut s = Server::start().await;
    let call = s.call(now(), 240).await;
    replay_after_revocation(&mut s, &call, &call).await;
}

/// An approved request picked up with alice's proof of her poll, revoked early; a week later
/// is still within the pickup window, and any later `p0 show` of hers hands the server a fresh
/// proof for the same path: with it, the revoked request is not provisioned again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pickup_replayed_with_a_fresh_proof_after_revocation_is_refused() {
    let mut s = Server::start().await;
    let mut call = s.call(now() - 3600, 240).await;
    let path = format!("/v1/requests/{}", call.signed.request_id);
    call.pickup_proof = Some(s.proof(&s.alice, "GET", &path, &call.id_token, now()));
    let mut again = call.clone();
    again.pickup_proof = Some(s.proof(&s.alice, "GET", &path, &again.id_token, now() + 1));
    replay_after_revocation(&mut s, &call, &again).await;
}
