//! A locking read is a write to the rules: under "reads are automatic", `SELECT ... FOR UPDATE`
//! and MariaDB's `LOCK IN SHARE MODE` wait for an approver instead of locking production rows
//! at once — even on MariaDB, where the grant needs SELECT only. The real `p0` binary against a
//! real stack; nothing is created before approval. Each locking clause is a trial of its own
//! (`<engine>::<clause>`), against one stack per engine started once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::Engine;
use p0_stack::{Stack, DEMO_RULES};
use std::process::{Command, Output};
use std::sync::Arc;
use support::cli::text;
use support::trials::{slug, Suite};

fn p0(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p0"))
        .args(args)
        .env("P0_CONFIG_DIR", dir)
        .output()
        .unwrap()
}

/// A stack of one engine, alice logged in, and its p0 users after her plain read.
struct Locking {
    stack: Stack,
    dir: tempfile::TempDir,
    schema: &'static str,
    before: Vec<String>,
}

impl Locking {
    fn ask(&self, sql: String) -> Output {
        p0(
            self.dir.path(),
            &[
                "request",
                "-d",
                &self.stack.resource,
                "-c",
                &sql,
                "--reason",
                "r",
                "--no-wait",
            ],
        )
    }
}

async fn start(engine: Engine, schema: &'static str) -> Locking {
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
    let mut fx = Locking {
        stack,
        dir,
        schema,
        before: Vec::new(),
    };
    // The control: a plain read is granted at once.
    let out = fx.ask(format!("SELECT id FROM {schema}.orders"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    fx.before = fx.stack.managed_users().unwrap();
    fx
}

/// The locking read waits for approval, and nothing is created.
fn waits_for_approval(fx: &Locking, clause: &str) {
    let out = fx.ask(format!("SELECT id FROM {}.orders {clause}", fx.schema));
    assert_eq!(out.status.code(), Some(4), "{clause}: {}", text(&out));
    assert!(text(&out).contains("waits for approval"), "{}", text(&out));
    assert_eq!(
        fx.stack.managed_users().unwrap(),
        fx.before,
        "nothing created"
    );
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let mysql = Suite::new(4, || start(Engine::MySql, "app"));
    let postgres = Suite::new(4, || start(Engine::Postgres, "sales"));
    let mut trials = Vec::new();
    for (engine, suite, locking) in [
        ("mysql", &mysql, &["FOR UPDATE", "LOCK IN SHARE MODE"][..]),
        (
            "postgres",
            &postgres,
            &["FOR UPDATE", "FOR SHARE", "FOR KEY SHARE"][..],
        ),
    ] {
        for clause in locking.iter().copied() {
            trials.push(suite.trial(
                format!("{engine}::{}", slug(clause)),
                move |fx: Arc<Locking>| async move { waits_for_approval(&fx, clause) },
            ));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    mysql.finish();
    postgres.finish();
    conclusion.exit();
}
