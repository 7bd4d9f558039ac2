//! The hostile-caller suite of the server's API, replays and approvals: bob's genuine calls
//! replayed byte for byte, and approvals of content other than what is pending (other SQL,
//! reason or requester, or an earlier version of the request). Each replayed call and each
//! wrong digest is a trial of its own (`replayed::…`, `approval_of_other_content::…`), against
//! a real stack (server, agent, PostgreSQL) per group, each asserting that nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::api::{approval_digest, RequestView};
use p0_core::Intent;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use support::api::{
    assert_refused, call, fixture, ops_with_digest, proven, raw, shown_to_bob, snapshot, Fixture,
};
use support::cli::tamper;
use support::trials::{slug, Gate, Suite};

/// Alice's requests, and a turn: each replay trial sends a genuine call that may change them.
struct Replays {
    fx: Fixture,
    turn: tokio::sync::Mutex<()>,
}

/// Bob's genuine call `what`, sent once and then replayed byte for byte: the replay is refused
/// and changes nothing.
async fn replayed(r: &Replays, what: &str) {
    let _turn = r.turn.lock().await;
    let fx = &r.fx;
    let op = ops_with_digest(fx)
        .await
        .into_iter()
        .find(|o| o.what == what)
        .unwrap();
    let headers = proven(&fx.bob, &op.method, &op.path, &op.body);
    let (s, v) = raw(&fx.stack, &op.method, &op.path, &op.body, &headers).await;
    assert_eq!(s, 200, "{}: {v}", op.what);
    let before = snapshot(&fx.stack).await;
    let again = raw(&fx.stack, &op.method, &op.path, &op.body, &headers).await;
    assert_refused(fx, op.what, &again);
    assert_eq!(
        snapshot(&fx.stack).await,
        before,
        "{}: a replay changed something",
        op.what
    );
}

/// The approval went through once: one approval, by bob.
async fn approved_once(r: &Replays) {
    let fx = &r.fx;
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

/// Alice's pending request as bob was shown it, and the store before any wrong approval.
struct Shown {
    fx: Fixture,
    shown: RequestView,
    before: String,
    path: String,
}

async fn shown() -> Shown {
    let fx = fixture().await;
    let v = shown_to_bob(&fx).await;
    let shown: RequestView = serde_json::from_value(v.clone()).unwrap();
    let before = snapshot(&fx.stack).await;
    let path = format!("/v1/requests/{}/approve", fx.pending);
    Shown {
        fx,
        shown,
        before,
        path,
    }
}

type Digest = fn(&RequestView) -> String;

/// What bob might have been shown instead: a narrower statement, a reason, a requester.
fn other_digests() -> Vec<(&'static str, Digest)> {
    vec![
        ("a narrower statement", |shown| {
            let mut narrower = shown.signed.clone();
            narrower.intent = Intent::Query("SELECT 1 FROM sales.orders".into());
            approval_digest(&shown.requester, &narrower, shown.permissions.as_ref())
        }),
        ("another reason", |shown| {
            let mut reason = shown.signed.clone();
            reason.reason = "routine".into();
            approval_digest(&shown.requester, &reason, shown.permissions.as_ref())
        }),
        ("another requester", |shown| {
            approval_digest(
                "carol@example.com",
                &shown.signed,
                shown.permissions.as_ref(),
            )
        }),
        ("no permissions", |shown| {
            approval_digest(&shown.requester, &shown.signed, None)
        }),
        ("zeros", |_| "0".repeat(64)),
        ("empty", |_| String::new()),
    ]
}

async fn approval_of_other_content(s: &Shown, digest: &str) {
    let body = serde_json::to_vec(&json!({ "digest": digest })).unwrap();
    let (st, v) = call(&s.fx.stack, &s.fx.bob, Method::POST, &s.path, &body).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (409, Some("conflict")),
        "{digest}: {v}"
    );
}

/// No digest at all (what an older CLI sends) is refused too.
async fn approval_without_a_digest(s: &Shown) {
    let (st, v) = call(&s.fx.stack, &s.fx.bob, Method::POST, &s.path, b"{}").await;
    assert_eq!(st, 400, "{v}");
}

/// After the wrong approvals: nothing changed, and the digest of what bob was shown is the
/// server's, and it approves.
async fn the_shown_digest_approves(s: &Shown) {
    let fx = &s.fx;
    assert_eq!(
        snapshot(&fx.stack).await,
        s.before,
        "a refused approval changed something"
    );
    assert_eq!(shown_to_bob(fx).await["status"], "pending_approval");
    assert_eq!(s.shown.approval_digest(), s.shown.digest);
    let body = serde_json::to_vec(&json!({ "digest": s.shown.digest })).unwrap();
    let (st, v): (u16, Value) = call(&fx.stack, &fx.bob, Method::POST, &s.path, &body).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (200, Some("provisioning")),
        "{v}"
    );
}

/// Bob approves; the request then changes before alice picks it up: the approval no longer
/// counts.
async fn an_approval_of_an_earlier_version_does_not_count(mut fx: Fixture) {
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

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let replays = Suite::new(4, || async {
        Replays {
            fx: fixture().await,
            turn: tokio::sync::Mutex::new(()),
        }
    });
    let content = Suite::new(4, shown);
    // A stack of its own, that the trial stops and starts: no shared fixture.
    let earlier = Suite::new(4, || async {});
    let (replayed_all, refused_all) = (Gate::new(), Gate::new());

    // Bob's genuine calls, each sent once and then replayed byte for byte.
    let mut replay_trials: Vec<_> = ["list", "show", "approve", "audit"]
        .into_iter()
        .map(|what| {
            replays.ordered(
                format!("replayed::{what}"),
                vec![],
                Some(replayed_all.clone()),
                move |r: Arc<Replays>| async move { replayed(&r, what).await },
            )
        })
        .collect();
    replayed_all.expect(&args, &replay_trials);
    replay_trials.push(replays.ordered(
        "replayed::after_the_cases::the_approval_went_through_once",
        vec![replayed_all.clone()],
        None,
        |r: Arc<Replays>| async move { approved_once(&r).await },
    ));

    let mut content_trials: Vec<_> = other_digests()
        .into_iter()
        .map(|(what, digest)| {
            content.ordered(
                format!("approval_of_other_content::{}", slug(what)),
                vec![],
                Some(refused_all.clone()),
                move |s: Arc<Shown>| async move {
                    approval_of_other_content(&s, &digest(&s.shown)).await
                },
            )
        })
        .collect();
    content_trials.push(content.ordered(
        "approval_of_other_content::no_digest_at_all",
        vec![],
        Some(refused_all.clone()),
        |s: Arc<Shown>| async move { approval_without_a_digest(&s).await },
    ));
    refused_all.expect(&args, &content_trials);
    content_trials.push(content.ordered(
        "approval_of_other_content::after_the_cases::nothing_changed_and_the_shown_digest_approves",
        vec![refused_all.clone()],
        None,
        |s: Arc<Shown>| async move { the_shown_digest_approves(&s).await },
    ));

    let mut trials = replay_trials;
    trials.extend(content_trials);
    trials.push(earlier.trial(
        "an_approval_of_an_earlier_version_does_not_count",
        |_: Arc<()>| async move {
            an_approval_of_an_earlier_version_does_not_count(fixture().await).await
        },
    ));
    let conclusion = libtest_mimic::run(&args, trials);
    replays.finish();
    content.finish();
    earlier.finish();
    conclusion.exit();
}
