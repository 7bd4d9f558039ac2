//! Stale and replayed calls to the agent: the test is a compromised server holding the
//! agent's HMAC secret and a call the requester really signed. Each attack is one test; each
//! asserts the refusal and that the database holds no new user. The pickup of an approved
//! request is in `hostile_pickup.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

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
