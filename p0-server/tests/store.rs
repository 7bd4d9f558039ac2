//! The same store tests on both back-ends: SQLite (one server) and PostgreSQL (replicas). On
//! PostgreSQL two stores opened on one database stand for two server replicas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, Utc};
use p0_core::api::{GrantView, RequestStatus};
use p0_core::route::Decision;
use p0_core::{Intent, RequestId, ResourceId, SignedRequest};
use p0_server::store::{self, Approval, Conflict, Cursor, RequestRecord, Store};
use p0_testkit::PgServer;
use std::sync::Arc;

fn record(id: &str, requester: &str) -> RequestRecord {
    RequestRecord {
        id: RequestId::new(id.to_string()).unwrap(),
        requester: requester.into(),
        groups: vec![],
        signed: SignedRequest {
            request_id: RequestId::new(id.to_string()).unwrap(),
            resource: ResourceId::new("pg/app".to_string()).unwrap(),
            intent: Intent::Query("SELECT 1".into()),
            reason: "r".into(),
            duration_secs: 60,
            issued_at: Utc::now().timestamp(),
        },
        signature: "s".into(),
        public_key: "k".into(),
        status: RequestStatus::PendingApproval,
        permissions: None,
        decision: Some(Decision::Deny { reason: "r".into() }),
        rule: None,
        approvals: vec![],
        grant: None,
        message: None,
        created_at: Utc::now(),
        revoke_attempts: 0,
        next_attempt_at: None,
        claimed_until: None,
        version: 0,
    }
}

/// A back-end's name and two handles on one store.
type Case = (&'static str, Arc<dyn Store>, Arc<dyn Store>);

/// Each back-end: two handles on one store (two replicas on PostgreSQL; one SQLite file).
struct Backends {
    _pg: PgServer,
    /// The SQLite file's directory, removed with it.
    _dir: Box<dyn std::any::Any + Send + Sync>,
    cases: Vec<Case>,
}

async fn backends() -> Backends {
    let pg = PgServer::start().unwrap();
    pg.psql("postgres", "CREATE DATABASE store").unwrap();
    let url = pg.url("store");
    let (a, b) = (
        store::open(&url).await.unwrap(),
        store::open(&url).await.unwrap(),
    );
    let dir = p0_testkit::private_tempdir("p0-store.").unwrap();
    let file = dir.path().join("p0.db").display().to_string();
    let s = store::open(&file).await.unwrap();
    Backends {
        _pg: pg,
        _dir: Box::new(dir),
        cases: vec![("postgres", a, b), ("sqlite", s.clone(), s)],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_round_trip_and_list_by_requester_and_due_time() {
    let b = backends().await;
    for (name, s, _) in &b.cases {
        let mut r = record("request-0001", "alice");
        s.insert(&mut r).await.unwrap();
        assert_eq!(r.version, 1, "{name}");
        let mut other = record("request-0002", "bob");
        s.insert(&mut other).await.unwrap();
        assert!(
            s.insert(&mut record("request-0001", "alice"))
                .await
                .is_err(),
            "{name}: duplicate id"
        );
        let got = s.get(&r.id).await.unwrap().unwrap();
        assert_eq!(
            (got.requester.as_str(), got.version),
            ("alice", 1),
            "{name}"
        );
        assert_eq!(
            s.list(Some("alice"), None, 10).await.unwrap().len(),
            1,
            "{name}"
        );
        assert_eq!(s.list(None, None, 10).await.unwrap().len(), 2, "{name}");
        // An active lease past its expiry is due; one in the future is not.
        r.status = RequestStatus::Active;
        r.grant = Some(GrantView {
            username: p0_core::Username::new("p0_x".to_string()).unwrap(),
            sealed_password: "sealed".into(),
            role: "p0r_x".into(),
            expires_at: Utc::now() - Duration::seconds(5),
        });
        s.update(&mut r).await.unwrap();
        // The reaper's next wake-up: that lease's expiry (to the second).
        let next = s.next_due().await.unwrap().unwrap();
        let expiry = r.grant.as_ref().unwrap().expires_at;
        assert!(
            (next - expiry).num_seconds().abs() <= 1,
            "{name}: {next} vs {expiry}"
        );
        let until = Utc::now() + Duration::seconds(60);
        assert!(s
            .claim_due(Utc::now() - Duration::seconds(60), 10, until)
            .await
            .unwrap()
            .is_empty());
        let due = s.claim_due(Utc::now(), 10, until).await.unwrap();
        assert_eq!(due.len(), 1, "{name}");
        assert_eq!(due[0].version, 3, "{name}: the claim is a new version");
        assert_eq!(due[0].next_attempt_at, Some(until), "{name}");
        // Claimed: nobody else takes it until the claim lapses.
        assert!(s.claim_due(Utc::now(), 10, until).await.unwrap().is_empty());
        assert_eq!(
            s.claim_due(until + Duration::seconds(1), 10, until)
                .await
                .unwrap()
                .len(),
            1,
            "{name}: a lapsed claim is taken over"
        );
    }
}

/// Listing reads one page at a time, newest first, and the pages together are the history:
/// no record twice, none missed, records made within one second kept apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_of_a_long_history_cover_it_once_newest_first() {
    let b = backends().await;
    for (name, s, _) in &b.cases {
        let start = Utc::now() - Duration::hours(1);
        for i in 0..250 {
            let mut r = record(
                &format!("paged-record-{i:03}"),
                if i % 2 == 0 { "alice" } else { "bob" },
            );
            // Four in each instant (two of them alice's), so page boundaries fall between
            // records made at the same time.
            r.created_at = start + Duration::milliseconds(250 * (i / 4));
            s.insert(&mut r).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = s.list(Some("alice"), before.as_ref(), 40).await.unwrap();
            seen.extend(page.iter().map(|r| r.id.to_string()));
            if page.len() < 40 {
                break;
            }
            before = page.last().map(Cursor::after);
        }
        // Newest first; within an instant, by id, descending.
        let expected: Vec<String> = (0..250)
            .rev()
            .filter(|i| i % 2 == 0)
            .map(|i| format!("paged-record-{i:03}"))
            .collect();
        assert_eq!(seen, expected, "{name}");
        let counts = s.counts(Utc::now()).await.unwrap();
        assert!(
            counts
                .by_status
                .iter()
                .any(|(st, n)| st == "pending_approval" && *n >= 250),
            "{name}: {counts:?}"
        );
    }
}

/// What waits for approval is read by status, oldest first, however many requests came after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_one_status_are_read_whatever_came_after() {
    let b = backends().await;
    for (name, s, _) in &b.cases {
        let start = Utc::now() - Duration::hours(2);
        for i in 0..3 {
            let mut r = record(&format!("waiting-{i}"), "alice");
            r.created_at = start + Duration::seconds(i);
            s.insert(&mut r).await.unwrap();
        }
        for i in 0..600 {
            let mut r = record(&format!("flood-{i:03}"), "mallory");
            r.status = RequestStatus::Denied;
            s.insert(&mut r).await.unwrap();
        }
        let waiting = s
            .list_status(RequestStatus::PendingApproval, 10)
            .await
            .unwrap();
        let ids: Vec<String> = waiting.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(ids, ["waiting-0", "waiting-1", "waiting-2"], "{name}");
        assert_eq!(
            s.list_status(RequestStatus::Denied, 50)
                .await
                .unwrap()
                .len(),
            50,
            "{name}"
        );
    }
}

/// A proof of possession is accepted once by all replicas together, and across a restart (a
/// new handle on the same store); once its window has passed it is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proof_is_accepted_once_by_every_replica() {
    let b = backends().await;
    for (name, a, replica) in &b.cases {
        let (now, until) = (1_000, 1_120);
        assert!(
            a.first_use("key.jti-1", now, until).await.unwrap(),
            "{name}"
        );
        assert!(
            !a.first_use("key.jti-1", now + 1, until + 1).await.unwrap(),
            "{name}"
        );
        assert!(
            !replica
                .first_use("key.jti-1", now + 1, until + 1)
                .await
                .unwrap(),
            "{name}: replayed to the other replica"
        );
        assert!(
            replica.first_use("key.jti-2", now, until).await.unwrap(),
            "{name}"
        );
        // Past its window it may be recorded again (the freshness check refuses it anyway).
        assert!(
            replica
                .first_use("key.jti-1", until + 1, until + 121)
                .await
                .unwrap(),
            "{name}"
        );
        a.forget_proofs(until + 200).await.unwrap();
        assert!(
            a.first_use("key.jti-2", until + 200, until + 320)
                .await
                .unwrap(),
            "{name}"
        );
    }
}

/// A requester's reason may hold any character, NUL included: the claim never reads the
/// body as JSON in the database, so such a record neither stops the reaper nor `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nul_in_a_reason_stops_neither_claims_nor_counts() {
    let b = backends().await;
    for (name, s, _) in &b.cases {
        let mut r = record("nul-in-reason", "mallory");
        r.signed.reason = "x\u{0}y".into();
        r.status = RequestStatus::Active;
        r.grant = Some(GrantView {
            username: p0_core::Username::new("p0_nul".to_string()).unwrap(),
            sealed_password: "sealed".into(),
            role: "p0r_x".into(),
            expires_at: Utc::now() - Duration::seconds(120),
        });
        s.insert(&mut r).await.unwrap();
        let until = Utc::now() + Duration::seconds(60);
        let due = s.claim_due(Utc::now(), 10, until).await.unwrap();
        assert_eq!(due.len(), 1, "{name}");
        assert_eq!(due[0].signed.reason, "x\u{0}y", "{name}");
        let counts = s.counts(Utc::now()).await.unwrap();
        assert_eq!(counts.retrying, 1, "{name}: {counts:?}");
    }
}

/// Two replicas' reapers claiming due leases at once, in batches of 16: every lease is claimed
/// by exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_claim_disjoint_batches_that_cover_every_due_lease() {
    let b = backends().await;
    for (name, a, replica) in &b.cases {
        let mut ids = std::collections::BTreeSet::new();
        for i in 0..200 {
            let mut r = record(&format!("due-lease-{i}"), "alice");
            r.status = RequestStatus::Active;
            r.grant = Some(GrantView {
                username: p0_core::Username::new(format!("p0_due_{i}")).unwrap(),
                sealed_password: "sealed".into(),
                role: "p0r_x".into(),
                expires_at: Utc::now() - Duration::seconds(5),
            });
            a.insert(&mut r).await.unwrap();
            ids.insert(r.id.to_string());
        }
        let claim_all = |s: Arc<dyn Store>| async move {
            let mut mine = Vec::new();
            loop {
                let until = Utc::now() + Duration::seconds(60);
                let batch = s.claim_due(Utc::now(), 16, until).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|r| r.id.to_string()));
            }
        };
        let (x, y) = tokio::join!(
            tokio::spawn(claim_all(a.clone())),
            tokio::spawn(claim_all(replica.clone()))
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let mut all: Vec<String> = x.iter().chain(&y).cloned().collect();
        all.sort();
        let claimed: std::collections::BTreeSet<String> = all.iter().cloned().collect();
        assert_eq!(all.len(), claimed.len(), "{name}: a lease claimed twice");
        assert_eq!(claimed, ids, "{name}: every due lease is claimed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_from_a_stale_read_is_a_conflict_and_writes_nothing() {
    let b = backends().await;
    for (name, a, replica) in &b.cases {
        let mut r = record("request-conflict", "alice");
        a.insert(&mut r).await.unwrap();
        let mut mine = a.get(&r.id).await.unwrap().unwrap();
        let mut theirs = replica.get(&r.id).await.unwrap().unwrap();
        theirs.status = RequestStatus::Denied;
        replica.update(&mut theirs).await.unwrap();
        mine.status = RequestStatus::Provisioning;
        let e = a.update(&mut mine).await.unwrap_err();
        assert!(e.downcast_ref::<Conflict>().is_some(), "{name}: {e}");
        let now = a.get(&r.id).await.unwrap().unwrap();
        assert_eq!(now.status, RequestStatus::Denied, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_no_change_and_keep_one_audit_chain() {
    let b = backends().await;
    for (name, a, replica) in &b.cases {
        let mut r = record("req-many", "alice");
        a.insert(&mut r).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = if i % 2 == 0 {
                a.clone()
            } else {
                replica.clone()
            };
            let id = r.id.clone();
            tasks.push(tokio::spawn(async move {
                // Read, change, write; on a conflict read again.
                loop {
                    let mut rec = s.get(&id).await.unwrap().unwrap();
                    rec.approvals.push(Approval {
                        by: format!("approver-{i}"),
                        digest: "d".into(),
                        at: Utc::now(),
                    });
                    match s.update(&mut rec).await {
                        Ok(()) => break,
                        Err(e) if e.downcast_ref::<Conflict>().is_some() => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
                for k in 0..5 {
                    s.audit(
                        "system",
                        "test.append",
                        Some(id.as_str()),
                        &format!("{i}.{k}"),
                    )
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let rec = a.get(&r.id).await.unwrap().unwrap();
        assert_eq!(rec.approvals.len(), 16, "{name}: a change was lost");
        assert_eq!(rec.version, 17, "{name}");
        let log = replica.audit_log().await.unwrap();
        assert_eq!(log.len(), 80, "{name}");
        p0_core::audit::verify_chain(&log).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test]
async fn a_store_made_before_migrations_migrates_in_place() {
    let dir = p0_testkit::private_tempdir("p0-store.").unwrap();
    let file = dir.path().join("old.db");
    // The schema stores had before versions: no `version` column, no migrations table.
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TABLE requests (id TEXT PRIMARY KEY, requester TEXT NOT NULL, status TEXT NOT NULL, \
         created_at TEXT NOT NULL, expires_at INTEGER, next_attempt_at INTEGER, body TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let body = serde_json::to_string(&record("request-old-0001", "alice")).unwrap();
    sqlx::query("INSERT INTO requests VALUES ('request-old-0001', 'alice', 'pending_approval', '2026-01-01T00:00:00Z', NULL, NULL, ?)")
        .bind(body)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let s = store::open(&file.display().to_string()).await.unwrap();
    let mut old = s
        .get(&RequestId::new("request-old-0001".to_string()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.version, 1);
    old.status = RequestStatus::Denied;
    s.update(&mut old).await.unwrap();
    // Opening again (a restart) applies nothing twice.
    drop(s);
    let again = store::open(&file.display().to_string()).await.unwrap();
    assert_eq!(again.list(None, None, 10).await.unwrap().len(), 1);
}
