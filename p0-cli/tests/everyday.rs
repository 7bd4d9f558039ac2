//! Daily use through the real binary: what never costs a request or a database user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::Engine;
use p0_stack::{Stack, DEMO_RULES};
use serde_json::Value;
use support::cli::text;
use support::mitm::User;

fn requests(alice: &User) -> Vec<Value> {
    let out = alice.p0(&["ls", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["requests"].as_array().cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_flags_that_need_no_database_provision_nothing() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 1)
        .await
        .unwrap();
    let alice = User::login(&stack.server_url, "alice@example.com");
    let help = alice.p0(&["psql", "-d", &stack.resource, "--help"]);
    assert!(help.status.success(), "{}", text(&help));
    assert!(text(&help).contains("Usage:"), "{}", text(&help));
    let version = alice.p0(&["psql", "-d", &stack.resource, "--version"]);
    assert!(version.status.success(), "{}", text(&version));
    assert!(text(&version).contains("PostgreSQL"), "{}", text(&version));
    assert!(requests(&alice).is_empty(), "a request was made");

    // With SQL as well, the flag goes to the client of a real request.
    let out = alice.query(Engine::Postgres, &stack.resource, &["-At"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(requests(&alice).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_client_is_found_before_the_request() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 1)
        .await
        .unwrap();
    let alice = User::login(&stack.server_url, "alice@example.com");
    let empty = tempfile::tempdir().unwrap();
    for (cmd, flag, sql) in [("mysql", "-D", "-e"), ("psql", "-d", "-c")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_p0"))
            .args([cmd, flag, &stack.resource, sql, "SELECT 1", "--reason", "r"])
            .env("P0_CONFIG_DIR", alice.dir.path())
            .env("PATH", empty.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not found on PATH"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(requests(&alice).is_empty(), "a request was made");
}
