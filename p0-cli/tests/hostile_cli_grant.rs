//! The hostile-server suite, CLI side, grants: a compromised control plane (or anything
//! between CLI and server) rewrites the server's answers to the real `p0` binary — a sealed
//! target moved, a grant re-sealed by the attacker, a resumed request moved to another
//! resource. Each attack is one test; each asserts that the CLI refuses with one line and that
//! the listener received neither the password nor the CLI's key or token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::grant::ConnectTarget;
use p0_core::grant::TlsExpectation;
use p0_core::Engine;
use serde_json::Value;
use support::cli::text;
use support::mitm::{
    assert_refused_and_nothing_leaked, reseal, seal_by_hand, setup, splice_port, FakeDb, User,
};

async fn spliced_target_is_refused(engine: Engine, mode: &str) {
    let s = setup(engine).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start(mode, None, None);
    s.evil.set(splice_port(db.port));
    let out = alice.query(engine, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "", "spliced target");
    assert!(text(&out).contains("does not verify"), "{}", text(&out));
    assert!(db.received().is_empty(), "the listener was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spliced_target_is_refused_postgres() {
    spliced_target_is_refused(Engine::Postgres, "pg-cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spliced_target_is_refused_mysql() {
    spliced_target_is_refused(Engine::MySql, "my-cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resealed_grant_is_refused_once_the_agent_key_is_pinned() {
    let s = setup(Engine::Postgres).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let ok = alice.query(Engine::Postgres, &s.stack.resource, &["-At"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("pinning the agent key"), "{}", text(&ok));
    let db = FakeDb::start("pg-cleartext", None, None);
    let port = db.port;
    s.evil
        .set(reseal(alice.public_key(), "attackers-own-pw", move |t| {
            t.port = port
        }));
    let out = alice.query(Engine::Postgres, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "attackers-own-pw", "resealed grant");
    assert!(text(&out).contains("pinned"), "{}", text(&out));
    assert!(db.received().is_empty(), "the listener was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resumed_request_cannot_be_moved_to_another_resource() {
    let s = setup(Engine::Postgres).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let out = alice.p0(&[
        "request",
        "-d",
        &s.stack.resource,
        "-c",
        "DELETE FROM sales.orders WHERE id = 0",
        "--reason",
        "r",
        "--no-wait",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let id = text(&out)
        .split_whitespace()
        .skip_while(|w| *w != "request")
        .nth(1)
        .unwrap()
        .to_string();
    // The server answers the resume as an active grant for a resource never used here, sealed
    // by a key of its own: no pin exists for that name, so first use would pin its key.
    let db = FakeDb::start("pg-cleartext", None, None);
    let (port, pk) = (db.port, alice.public_key());
    let evil = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let rid = id.clone();
    s.evil.set_view(move |v: &mut Value| {
        let t = ConnectTarget {
            request_id: p0_core::RequestId::new(rid.clone()).unwrap(),
            resource: p0_core::ResourceId::new("pg/elsewhere").unwrap(),
            engine: Engine::Postgres,
            host: "127.0.0.1".into(),
            port,
            database: "app".into(),
            username: p0_core::Username::new("p0_alice_0000000000").unwrap(),
            expires_at: chrono::Utc::now() + chrono::TimeDelta::minutes(5),
            tls: TlsExpectation::Off,
        };
        v["status"] = Value::String("active".into());
        v["signed"]["resource"] = Value::String("pg/elsewhere".into());
        v["grant"] = serde_json::json!({
            "username": "p0_alice_0000000000",
            "sealed_password": seal_by_hand(pk.as_bytes(), &t, "moved-pw-1", &evil),
            "role": "p0r_x",
            "expires_at": t.expires_at,
        });
    });
    let out = alice.p0(&["psql", "--resume", &id, "-c", "SELECT 1"]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "moved-pw-1", "moved resume");
    assert!(text(&out).contains("not `pg/"), "{}", text(&out));
    assert!(db.received().is_empty(), "the listener was contacted");
}

/// A new query answered "as a reuse" with a lease this login never made — another request's
/// id, sealed to this CLI's key by the attacker, pointing at the attacker's listener — is
/// refused before anything is opened or contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reused_lease_not_made_here_is_refused() {
    let s = setup(Engine::Postgres).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start("pg-cleartext", None, None);
    let (port, pk) = (db.port, alice.public_key());
    let evil = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let planted = p0_core::RequestId::generate();
    let resource = s.stack.resource.clone();
    s.evil.set_view(move |v: &mut Value| {
        let t = ConnectTarget {
            request_id: planted.clone(),
            resource: p0_core::ResourceId::new(resource.clone()).unwrap(),
            engine: Engine::Postgres,
            host: "127.0.0.1".into(),
            port,
            database: "app".into(),
            username: p0_core::Username::new("p0_alice_0000000000").unwrap(),
            expires_at: chrono::Utc::now() + chrono::TimeDelta::minutes(5),
            tls: TlsExpectation::Off,
        };
        v["id"] = Value::String(planted.to_string());
        v["signed"]["request_id"] = Value::String(planted.to_string());
        v["status"] = Value::String("active".into());
        v["grant"] = serde_json::json!({
            "username": "p0_alice_0000000000",
            "sealed_password": seal_by_hand(pk.as_bytes(), &t, "planted-pw-1", &evil),
            "role": "p0r_x",
            "expires_at": t.expires_at,
        });
    });
    let out = alice.query(Engine::Postgres, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "planted-pw-1", "planted reuse");
    assert!(text(&out).contains("not made here"), "{}", text(&out));
    assert!(db.received().is_empty(), "the listener was contacted");
}
