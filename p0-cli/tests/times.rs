//! Times as people read them: in the local zone (`TZ` honoured) with its offset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::Engine;
use p0_stack::{Stack, DEMO_RULES};
use support::cli::text;
use support::flow::User;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn times_are_shown_in_the_local_zone_with_its_offset() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 3600)
        .await
        .unwrap();
    let alice = User::login(&stack, "alice@example.com", &[]);
    for (zone, offset) in [("Asia/Kolkata", "+05:30"), ("UTC", "+00:00")] {
        let out = alice.cmd(&["whoami"]).env("TZ", zone).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let line = text(&out)
            .lines()
            .find(|l| l.contains("valid until"))
            .unwrap_or_default()
            .to_string();
        assert!(line.ends_with(offset), "{zone}: {line}");
    }
}

/// A lease asked for longer than its rule allows is shortened to what the rule allows, and the
/// requester is told so — which rule, how long, and what was asked — never cut silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_longer_than_its_rule_allows_says_so() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 3600)
        .await
        .unwrap();
    let alice = User::login(&stack, "alice@example.com", &[]);
    let ask = |duration: &str| {
        let out = alice.p0(&[
            "request",
            "-d",
            p0_stack::RESOURCE,
            "-c",
            "SELECT count(*) FROM sales.orders",
            "--reason",
            "report",
            "--duration",
            duration,
            "--new",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = ask("3h");
    assert!(
        err.contains("`reads are automatic` allows at most 1h")
            && err.contains("the lease is 1h, not the 3h asked"),
        "{err}"
    );
    let err = ask("30m");
    assert!(!err.contains("allows at most"), "{err}");
}
