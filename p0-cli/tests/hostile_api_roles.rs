//! The hostile-caller suite of the server's API, roles: a user who is no approver sees and ends
//! no one else's requests, and one who is no auditor reads no audit log; an approver and an
//! admin end an auto-approved lease, and the audit log names them. Each call of a user without
//! the role is a trial of its own (`a_non_approver::…`, `a_non_auditor::…`), against a real
//! stack per group; each asserts the exact answer and that nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use support::api::{call, create_body, fixture, shown_to_bob, snapshot, user, Fixture, User};
use support::trials::Suite;

/// Carol, in `sales`, approves nothing; the store as it was before she called.
struct NonApprover {
    fx: Fixture,
    carol: User,
    before: String,
    digest: String,
}

async fn non_approver() -> NonApprover {
    let fx = fixture().await;
    let carol = user(&fx.stack, "carol@example.com", &["sales"]);
    let before = snapshot(&fx.stack).await;
    let digest = shown_to_bob(&fx).await["digest"]
        .as_str()
        .unwrap()
        .to_string();
    NonApprover {
        fx,
        carol,
        before,
        digest,
    }
}

type Call = fn(&NonApprover) -> (Method, String, Vec<u8>);

/// What carol tries on alice's requests.
fn non_approver_calls() -> Vec<(&'static str, Call)> {
    vec![
        ("show_a_pending_request", |n| {
            (
                Method::GET,
                format!("/v1/requests/{}", n.fx.pending),
                vec![],
            )
        }),
        ("wait_on_an_active_request", |n| {
            (
                Method::GET,
                format!("/v1/requests/{}?wait=1", n.fx.active),
                vec![],
            )
        }),
        ("approve", |n| {
            (
                Method::POST,
                format!("/v1/requests/{}/approve", n.fx.pending),
                serde_json::to_vec(&json!({ "digest": n.digest })).unwrap(),
            )
        }),
        ("deny", |n| {
            (
                Method::POST,
                format!("/v1/requests/{}/deny", n.fx.pending),
                b"{}".to_vec(),
            )
        }),
        ("revoke", |n| {
            (
                Method::POST,
                format!("/v1/requests/{}/revoke", n.fx.active),
                b"{}".to_vec(),
            )
        }),
    ]
}

async fn no_such_request(n: &NonApprover, what: Call) {
    let (method, path, body) = what(n);
    let (s, v) = call(&n.fx.stack, &n.carol, method, &path, &body).await;
    assert_eq!(
        (s, v.clone()),
        (
            404,
            json!({"code": "not_found", "message": "no such request"})
        ),
        "{path}: {v}"
    );
    assert_eq!(
        snapshot(&n.fx.stack).await,
        n.before,
        "carol changed something"
    );
}

/// Carol, a plain user, and dave, a requester (he asked for access himself): no auditors.
struct NonAuditor {
    fx: Fixture,
    carol: User,
    dave: User,
    before_dave: String,
}

async fn non_auditor() -> NonAuditor {
    let fx = fixture().await;
    let carol = user(&fx.stack, "carol@example.com", &["sales"]);
    let before = snapshot(&fx.stack).await;
    let dave = user(&fx.stack, "dave@example.com", &[]);
    let body = create_body(&fx.stack, &dave, "SELECT name FROM sales.customers");
    let (s, _) = call(&fx.stack, &dave, Method::POST, "/v1/requests", &body).await;
    assert_eq!(s, 201);
    let before_dave = snapshot(&fx.stack).await;
    assert_ne!(before, before_dave);
    NonAuditor {
        fx,
        carol,
        dave,
        before_dave,
    }
}

async fn audit_refused(n: &NonAuditor, who: &User) {
    let (s, v) = call(&n.fx.stack, who, Method::GET, "/v1/audit", b"").await;
    assert_eq!(
        (s, v.clone()),
        (
            403,
            json!({"code": "forbidden", "message": "the audit log is for auditors"})
        ),
        "{}: {v}",
        who.name
    );
    assert_eq!(snapshot(&n.fx.stack).await, n.before_dave);
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

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let approver = Suite::new(4, non_approver);
    let auditor = Suite::new(4, non_auditor);
    // Each lease test ends the lease on a stack of its own: no shared fixture.
    let own = Suite::new(4, || async {});
    let mut trials = vec![approver.trial(
        "a_non_approver::lists_no_one_elses_requests",
        |n: Arc<NonApprover>| async move {
            let (s, v) = call(&n.fx.stack, &n.carol, Method::GET, "/v1/requests", b"").await;
            assert_eq!((s, v.clone()), (200, json!([])), "{v}");
            assert_eq!(
                snapshot(&n.fx.stack).await,
                n.before,
                "carol changed something"
            );
        },
    )];
    for (what, c) in non_approver_calls() {
        trials.push(approver.trial(
            format!("a_non_approver::cannot_{what}"),
            move |n: Arc<NonApprover>| async move { no_such_request(&n, c).await },
        ));
    }
    trials.extend([
        auditor.trial(
            "a_non_auditor::a_plain_user_cannot_read_the_audit_log",
            |n: Arc<NonAuditor>| async move { audit_refused(&n, &n.carol).await },
        ),
        auditor.trial(
            "a_non_auditor::a_requester_cannot_read_the_audit_log",
            |n: Arc<NonAuditor>| async move { audit_refused(&n, &n.dave).await },
        ),
        // An auditor reads it.
        auditor.trial(
            "a_non_auditor::but_an_auditor_reads_it",
            |n: Arc<NonAuditor>| async move {
                let (s, v) = call(&n.fx.stack, &n.fx.bob, Method::GET, "/v1/audit", b"").await;
                assert_eq!(s, 200, "{v}");
                assert!(v.as_array().unwrap().len() >= 4, "{v}");
            },
        ),
        own.trial(
            "an_approver_ends_an_auto_approved_lease_and_the_audit_names_them",
            |_: Arc<()>| async move {
                let fx = fixture().await;
                ends_the_auto_approved_lease(&fx, &fx.bob).await;
            },
        ),
        own.trial(
            "an_admin_sees_and_ends_any_lease",
            |_: Arc<()>| async move {
                let fx = fixture().await;
                // Erin approves nothing under the rules; she is an admin (the stack's `admins`).
                let erin = user(&fx.stack, "erin@example.com", &["admins"]);
                ends_the_auto_approved_lease(&fx, &erin).await;
            },
        ),
    ]);
    let conclusion = libtest_mimic::run(&args, trials);
    approver.finish();
    auditor.finish();
    own.finish();
    conclusion.exit();
}
