//! Two server replicas on one PostgreSQL store behave as one: approvals given at the same
//! moment through both are all kept or refused (none is answered 200 and lost), and the audit
//! chain they both append to verifies.

use crate::support::{app_on, refused, Auth};
use crate::UNAUTHENTICATED;
use axum::http::StatusCode;
use p0_testkit::PgServer;
use serde_json::json;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvals_through_two_replicas_at_once_are_kept_or_refused_never_lost() {
    let pg = PgServer::start().unwrap();
    pg.psql("postgres", "CREATE DATABASE p0").unwrap();
    let url = pg.url("p0");
    let a = Arc::new(app_on(false, p0_server::store::open(&url).await.unwrap()));
    let b = Arc::new(app_on(false, p0_server::store::open(&url).await.unwrap()));
    for round in 0..10 {
        let r = a.pending("alice").await;
        let path = format!("/v1/requests/{}/approve", r.id);
        let body = serde_json::to_vec(&json!({ "digest": r.approval_digest() })).unwrap();
        let (pa, pb, ba, bb) = (path.clone(), path.clone(), body.clone(), body.clone());
        let (a2, b2) = (a.clone(), b.clone());
        let bob = tokio::spawn(async move { a2.call("bob", "POST", &pa, &ba).await });
        let dave = tokio::spawn(async move { b2.call("dave", "POST", &pb, &bb).await });
        let answers = [bob.await.unwrap(), dave.await.unwrap()];
        for (s, v) in &answers {
            assert!(
                *s == StatusCode::OK || *s == StatusCode::CONFLICT,
                "round {round}: {s} {v}"
            );
        }
        // Whatever either replica says now, every approval answered 200 is in the record.
        let (s, v) = b
            .call("alice", "GET", &format!("/v1/requests/{}", r.id), b"")
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let approvals: Vec<String> = v["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect();
        for ((s, _), who) in answers.iter().zip(["bob", "dave"]) {
            if *s == StatusCode::OK {
                assert!(
                    approvals.iter().any(|x| x == who),
                    "round {round}: {who} was answered 200 but is not in {v}"
                );
            }
        }
        assert!(
            answers.iter().any(|(s, _)| *s == StatusCode::OK),
            "round {round}: both refused"
        );
    }
    let (s, log) = a.call("ann", "GET", "/v1/audit", b"").await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let entries: Vec<p0_core::audit::AuditEntry> = serde_json::from_value(log.clone()).unwrap();
    assert!(entries.len() >= 20, "{log}");
    p0_core::audit::verify_chain(&entries).unwrap();
}

/// A proof of possession accepted by one replica is refused by the other (and by a replica
/// started after it on the same store): a captured call cannot be replayed through a second
/// server behind the same load balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proof_accepted_by_one_replica_is_refused_by_the_other() {
    let pg = PgServer::start().unwrap();
    pg.psql("postgres", "CREATE DATABASE p0").unwrap();
    let url = pg.url("p0");
    let a = app_on(false, p0_server::store::open(&url).await.unwrap());
    let b = app_on(false, p0_server::store::open(&url).await.unwrap());
    let h = a.headers(a.who("alice"), "GET", "/v1/requests", b"");
    let (s, v) = a
        .send(Auth::Headers(h.clone()), "GET", "/v1/requests", b"")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for replica in [
        &b,
        &app_on(false, p0_server::store::open(&url).await.unwrap()),
    ] {
        refused(
            replica
                .send(Auth::Headers(h.clone()), "GET", "/v1/requests", b"")
                .await,
            401,
            "unauthenticated",
            UNAUTHENTICATED,
        );
    }
}
