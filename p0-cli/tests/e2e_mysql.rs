//! End to end for a MySQL resource (MariaDB): `p0 mysql` through server and agent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_cli::stack::{Stack, DEMO_RULES};
use p0_core::Engine;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn p0(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_p0"));
    c.args(args).env("P0_CONFIG_DIR", dir).env("TMPDIR", dir);
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_flow_over_http() {
    let stack = Stack::start_engine(Engine::MySql, DEMO_RULES, 1)
        .await
        .unwrap();
    let res = stack.resource.clone();
    let (alice, bob) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, who) in [(&alice, "alice@example.com"), (&bob, "bob@example.com")] {
        let o = p0(
            dir.path(),
            &[
                "login",
                "--dev",
                who,
                "--group",
                "dba",
                "--server",
                &stack.server_url,
            ],
        )
        .output()
        .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }

    // Auto-approved read; the defaults file is gone afterwards.
    let o = p0(
        alice.path(),
        &[
            "mysql",
            "-D",
            &res,
            "-e",
            "SELECT count(*) FROM app.orders",
            "--reason",
            "r",
            "--duration",
            "3s",
            "-N",
            "-B",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "4");
    let leftovers: Vec<_> = std::fs::read_dir(alice.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("p0-mysql."))
        .collect();
    assert!(leftovers.is_empty(), "defaults file left behind");

    // A write needs approval from another DBA.
    let child = p0(
        alice.path(),
        &[
            "mysql",
            "-D",
            &res,
            "-e",
            "UPDATE app.orders SET total = total WHERE id = 1",
            "--reason",
            "fix",
            "--duration",
            "3s",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let o = p0(bob.path(), &["ls", "--all", "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if let Some(r) = v["requests"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["status"] == "pending_approval"))
        {
            break r["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < end, "no pending request");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(p0(bob.path(), &["approve", &id])
        .output()
        .unwrap()
        .status
        .success());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // Expiry ends an open session and removes everything.
    let started = Instant::now();
    let o = p0(
        alice.path(),
        &[
            "mysql",
            "-D",
            &res,
            "-e",
            "SELECT SLEEP(40) FROM app.customers LIMIT 1",
            "--reason",
            "r",
            "--duration",
            "3s",
        ],
    )
    .output()
    .unwrap();
    assert!(!o.status.success(), "the session must be killed at expiry");
    assert!(started.elapsed() < Duration::from_secs(35));
    let end = Instant::now() + Duration::from_secs(30);
    while !stack.managed_roles().unwrap().is_empty() {
        assert!(
            Instant::now() < end,
            "leases not revoked: {:?}",
            stack.managed_roles().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
