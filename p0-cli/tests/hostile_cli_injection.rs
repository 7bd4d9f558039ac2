//! The hostile-server suite, CLI side, option injection: a compromised control plane seals a
//! grant whose fields carry a newline and `local-infile=1` (or a host list) for the option file
//! the CLI writes for the MySQL client. Each field is a trial of its own, against one MySQL
//! stack started once; the trials take turns on the man in the middle. Each asserts that the
//! CLI refuses with one line and that the listener received neither the password nor the
//! CLI's key or token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::grant::ConnectTarget;
use p0_core::Engine;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use support::cli::text;
use support::mitm::{assert_refused_and_nothing_leaked, reseal, setup, FakeDb, Setup, User};
use support::trials::Suite;

/// A MySQL stack behind the man in the middle, alice logged in through it, and a listener that
/// would read her key through LOCAL INFILE.
struct Injection {
    s: Setup,
    alice: User,
    db: FakeDb,
    /// One case at a time: each sets the man in the middle's rewrite.
    turn: Mutex<()>,
}

async fn start() -> Injection {
    let s = setup(Engine::MySql).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start("my-infile", None, Some(&alice.dir.path().join("key.pem")));
    Injection {
        s,
        alice,
        db,
        turn: Mutex::new(()),
    }
}

type Edit = Box<dyn Fn(&mut ConnectTarget) + Send + Sync>;

/// A field of the sealed target carrying the injection: refused, the listener never contacted.
fn through_the_target(fx: &Injection, what: &str, edit: Edit) {
    let _turn = fx.turn.lock().unwrap_or_else(|e| e.into_inner());
    let (s, alice, db) = (&fx.s, &fx.alice, &fx.db);
    s.evil.set(reseal(alice.public_key(), "inject-pw", edit));
    let out = alice.query(Engine::MySql, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, alice, db, "inject-pw", what);
    assert!(
        db.received().is_empty(),
        "{what}: the listener was contacted"
    );
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let suite = Suite::new(4, start);
    let trials = vec![
        suite.trial("through_the_host", |fx: Arc<Injection>| async move {
            let port = fx.db.port;
            through_the_target(
                &fx,
                "host",
                Box::new(move |t| {
                    t.port = port;
                    t.host = "127.0.0.1\nlocal-infile=1".into()
                }),
            );
        }),
        suite.trial("through_the_database", |fx: Arc<Injection>| async move {
            let port = fx.db.port;
            through_the_target(
                &fx,
                "database",
                Box::new(move |t| {
                    t.port = port;
                    t.database = "app\nlocal-infile=1".into()
                }),
            );
        }),
        suite.trial("through_a_host_list", |fx: Arc<Injection>| async move {
            let port = fx.db.port;
            through_the_target(
                &fx,
                "host list",
                Box::new(move |t| {
                    t.port = port;
                    t.host = "127.0.0.1,evil.example".into()
                }),
            );
        }),
        // Through the password (a value the option file quotes), and the server's own fields.
        suite.trial("through_the_password", |fx: Arc<Injection>| async move {
            let _turn = fx.turn.lock().unwrap_or_else(|e| e.into_inner());
            let (s, alice, db) = (&fx.s, &fx.alice, &fx.db);
            let port = db.port;
            s.evil.set(reseal(
                alice.public_key(),
                "pw\"\nlocal-infile=1\n",
                move |t| t.port = port,
            ));
            let out = alice.query(Engine::MySql, &s.stack.resource, &[]);
            assert_refused_and_nothing_leaked(&out, alice, db, "local-infile=1", "password");
        }),
        suite.trial("through_the_username", |fx: Arc<Injection>| async move {
            let _turn = fx.turn.lock().unwrap_or_else(|e| e.into_inner());
            let (s, alice, db) = (&fx.s, &fx.alice, &fx.db);
            s.evil
                .set(|g: &mut Value| g["username"] = Value::String("root\nlocal-infile=1".into()));
            let out = alice.query(Engine::MySql, &s.stack.resource, &[]);
            assert!(!out.status.success(), "{}", text(&out));
            assert!(db.received().is_empty(), "the listener was contacted");
        }),
    ];
    suite.run(&args, trials).exit();
}
