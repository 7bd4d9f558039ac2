//! The pickup of an approved request: a compromised server holding the agent's HMAC secret and
//! a call alice signed an hour ago (approved since, so the signature alone is stale) cannot
//! have it provisioned without alice's fresh proof of her poll. Each wrong proof is a trial of
//! its own (`refused::…`), against one stack started once: refused, and no user created; then
//! alice's own fresh proof picks it up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::api::ProvisionCall;
use p0_core::{KeyPair, RequestId};
use std::sync::Arc;
use support::agent::{now, Server};
use support::trials::{slug, Gate, Suite};

/// The stack, and the approved call that waits for its pickup.
struct Pickup {
    s: Server,
    token: String,
    mallory: KeyPair,
    /// The call, signed an hour ago; `path` is alice's poll of it, `other` a poll of another.
    call: ProvisionCall,
    path: String,
    other: String,
}

async fn start() -> Pickup {
    let s = Server::start().await;
    let token = s.token();
    let mallory = KeyPair::generate().unwrap();
    // Signed an hour ago, approved since: the signature alone is stale.
    let call = s.call(now() - 3600, 240).await;
    let path = format!("/v1/requests/{}?wait=20", call.signed.request_id);
    let other = format!("/v1/requests/{}?wait=20", RequestId::generate());
    Pickup {
        s,
        token,
        mallory,
        call,
        path,
        other,
    }
}

type Proof = fn(&Pickup) -> Option<String>;

/// Every wrong proof: what it is called, and the proof.
fn proofs() -> Vec<(&'static str, Proof)> {
    vec![
        ("no proof", |_| None),
        ("a proof for another request", |p| {
            Some(p.s.proof(&p.s.alice, "GET", &p.other, &p.token, now()))
        }),
        ("a proof by another key", |p| {
            Some(p.s.proof(&p.mallory, "GET", &p.path, &p.token, now()))
        }),
        ("a stale proof", |p| {
            Some(p.s.proof(&p.s.alice, "GET", &p.path, &p.token, now() - 3600))
        }),
        ("a proof for another token", |p| {
            Some(p.s.proof(&p.s.alice, "GET", &p.path, "other", now()))
        }),
        ("a proof of another method", |p| {
            Some(p.s.proof(&p.s.alice, "POST", &p.path, &p.token, now()))
        }),
        ("garbage", |_| Some("x.y".to_string())),
    ]
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let suite = Suite::new(4, start);
    let refused = Gate::new();
    let mut trials: Vec<_> = proofs()
        .into_iter()
        .map(|(what, proof)| {
            suite.ordered(
                format!("refused::{}", slug(what)),
                vec![],
                Some(refused.clone()),
                move |p: Arc<Pickup>| async move {
                    let mut call = p.call.clone();
                    call.pickup_proof = proof(&p);
                    let r = p.s.provision(&call).await;
                    assert!((400..500).contains(&r.0), "{what}: {} {}", r.0, r.1);
                    assert!(p.s.users().is_empty(), "{what}: a user was created");
                },
            )
        })
        .collect();
    refused.expect(&args, &trials);
    trials.push(suite.ordered(
        "after_the_cases::the_requesters_fresh_proof_picks_it_up",
        vec![refused.clone()],
        None,
        |p: Arc<Pickup>| async move {
            let mut call = p.call.clone();
            call.pickup_proof = Some(p.s.proof(&p.s.alice, "GET", &p.path, &call.id_token, now()));
            let (status, v) = p.s.provision(&call).await;
            assert_eq!(status, 200, "{v}");
        },
    ));
    suite.run(&args, trials).exit();
}
