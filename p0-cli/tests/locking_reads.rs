//! A locking read is a write to the rules: under "reads are automatic", `SELECT ... FOR UPDATE`
//! and MariaDB's `LOCK IN SHARE MODE` wait for an approver instead of locking production rows
//! at once — even on MariaDB, where the grant needs SELECT only. The real `p0` binary against a
//! real stack; nothing is created before approval.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::Engine;
use p0_stack::{Stack, DEMO_RULES};
use std::process::{Command, Output};

fn p0(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p0"))
        .args(args)
        .env("P0_CONFIG_DIR", dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn locking_reads_wait_for_approval(engine: Engine, schema: &str, locking: &[&str]) {
    let stack = Stack::start_engine(engine, DEMO_RULES, 1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = p0(
        dir.path(),
        &[
            "login",
            "--dev",
            "alice@example.com",
            "--server",
            &stack.server_url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let ask = |sql: String| {
        p0(
            dir.path(),
            &[
                "request",
                "-d",
                &stack.resource,
                "-c",
                &sql,
                "--reason",
                "r",
                "--no-wait",
            ],
        )
    };
    // The control: a plain read is granted at once.
    let out = ask(format!("SELECT id FROM {schema}.orders"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = stack.managed_users().unwrap();
    for clause in locking {
        let out = ask(format!("SELECT id FROM {schema}.orders {clause}"));
        assert_eq!(out.status.code(), Some(4), "{clause}: {}", text(&out));
        assert!(text(&out).contains("waits for approval"), "{}", text(&out));
    }
    assert_eq!(stack.managed_users().unwrap(), before, "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locking_reads_wait_for_approval_mysql() {
    locking_reads_wait_for_approval(Engine::MySql, "app", &["FOR UPDATE", "LOCK IN SHARE MODE"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locking_reads_wait_for_approval_postgres() {
    locking_reads_wait_for_approval(
        Engine::Postgres,
        "sales",
        &["FOR UPDATE", "FOR SHARE", "FOR KEY SHARE"],
    )
    .await;
}
