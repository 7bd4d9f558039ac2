//! The hostile-server suite, CLI side, listeners: where the CLI is sent to a database listener
//! of an attacker's choosing (`support/fake_db.py`), the client never answers a request for a
//! readable password, accepts no self-signed certificate, and lets no LOCAL INFILE read its
//! key. Each attack is one test; each asserts that the CLI refuses with one line and that the
//! listener received neither the password nor the CLI's key or token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::grant::TlsExpectation;
use p0_core::Engine;
use std::path::Path;
use support::cli::text;
use support::mitm::{assert_refused_and_nothing_leaked, reseal, self_signed, setup, FakeDb, User};

/// Even where the CLI connects to a listener of someone else's choosing (a re-sealed grant
/// before any key was pinned, or a hijacked address), the client never answers a request
/// for a readable password.
async fn cleartext_request_gets_nothing(engine: Engine, mode: &str) {
    let s = setup(engine).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start(mode, None, None);
    let port = db.port;
    s.evil.set(reseal(
        alice.public_key(),
        "the-password-9f8e7d",
        move |t| t.port = port,
    ));
    let out = alice.query(engine, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "the-password-9f8e7d", mode);
    assert!(text(&out).contains("cut off"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cleartext_password_request_gets_nothing_postgres() {
    cleartext_request_gets_nothing(Engine::Postgres, "pg-cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cleartext_plugin_handshake_gets_nothing_mysql() {
    cleartext_request_gets_nothing(Engine::MySql, "my-cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switch_to_the_cleartext_plugin_gets_nothing_mysql() {
    cleartext_request_gets_nothing(Engine::MySql, "my-switch").await;
}

async fn self_signed_tls_is_refused(engine: Engine, mode: &str) {
    let s = setup(engine).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path(), "listener");
    let (ca, _) = self_signed(certs.path(), "declared-ca");
    let db = FakeDb::start(mode, Some((&cert, &key)), None);
    let (port, ca_pem) = (db.port, std::fs::read_to_string(ca).unwrap());
    s.evil
        .set(reseal(alice.public_key(), "the-password-tls-1", move |t| {
            t.port = port;
            t.tls = TlsExpectation::VerifyFull {
                ca_pem: Some(ca_pem.clone()),
            };
        }));
    let out = alice.query(engine, &s.stack.resource, &[]);
    // The client itself refuses the certificate: its own error, the password unsent.
    assert!(!out.status.success(), "{}", text(&out));
    let got = db.received();
    assert!(
        !got.windows(18).any(|w| w == b"the-password-tls-1"),
        "the listener received the password"
    );
    let t = text(&out).to_lowercase();
    assert!(
        t.contains("certificate") || t.contains("ssl") || t.contains("tls"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_with_a_self_signed_certificate_is_refused_postgres() {
    self_signed_tls_is_refused(Engine::Postgres, "pg-tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_with_a_self_signed_certificate_is_refused_mysql() {
    self_signed_tls_is_refused(Engine::MySql, "my-tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_infile_request_cannot_read_the_key_mysql() {
    let s = setup(Engine::MySql).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let key_path = alice.dir.path().join("key.pem");
    let db = FakeDb::start("my-infile", None, Some(&key_path));
    let port = db.port;
    s.evil
        .set(reseal(alice.public_key(), "infile-pw-1", move |t| {
            t.port = port
        }));
    let _ = alice.query(Engine::MySql, &s.stack.resource, &[]);
    let got = db.received();
    let key = alice.file("key.pem");
    assert!(
        !got.windows(64).any(|w| key.windows(64).any(|k| k == w)),
        "the listener read the private key through LOCAL INFILE"
    );
    // And the user cannot turn it back on through p0.
    let out = alice.query(Engine::MySql, &s.stack.resource, &["--local-infile=1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not allowed"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cleartext_request_after_authentication_ok_gets_nothing_from_any_driver() {
    // libpq ignores it; other drivers answer it: `p0 exec` runs any of them.
    let s = setup(Engine::Postgres).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start("pg-ok-then-cleartext", None, None);
    let port = db.port;
    s.evil
        .set(reseal(alice.public_key(), "pw-after-ok-42", move |t| {
            t.port = port
        }));
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/naive_pg_client.py");
    let out = alice.p0(&[
        "exec",
        "-d",
        &s.stack.resource,
        "-c",
        "SELECT count(*) FROM sales.orders",
        "--reason",
        "r",
        "--",
        "python3",
        client.to_str().unwrap(),
    ]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "pw-after-ok-42", "cleartext after ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_name_split_across_the_handshake_gets_nothing_mysql() {
    cleartext_request_gets_nothing(Engine::MySql, "my-split-plugin").await;
}
