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
