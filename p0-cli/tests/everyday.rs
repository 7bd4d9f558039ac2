//! Daily use through the real binary: what never costs a request or a database user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::Engine;
use p0_stack::{Stack, DEMO_RULES};
use serde_json::Value;
use support::cli::text;
use support::flow::{pending_id, wait_until, User};

/// `p0 psql -c SQL` as `user`, with `extra` arguments.
fn psql(user: &User, stack: &Stack, sql: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "psql",
        "-d",
        &stack.resource,
        "-c",
        sql,
        "--reason",
        "r",
        "-X",
    ];
    args.extend(extra);
    user.p0(&args)
}

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
    let alice = User::login(&stack, "alice@example.com", &[]);
    let help = alice.p0(&["psql", "-d", &stack.resource, "--help"]);
    assert!(help.status.success(), "{}", text(&help));
    assert!(text(&help).contains("Usage:"), "{}", text(&help));
    let version = alice.p0(&["psql", "-d", &stack.resource, "--version"]);
    assert!(version.status.success(), "{}", text(&version));
    assert!(text(&version).contains("PostgreSQL"), "{}", text(&version));
    assert!(requests(&alice).is_empty(), "a request was made");

    // With SQL as well, the flag goes to the client of a real request.
    let out = psql(
        &alice,
        &stack,
        "SELECT count(*) FROM sales.orders",
        &["-At"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(requests(&alice).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_client_is_found_before_the_request() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 1)
        .await
        .unwrap();
    let alice = User::login(&stack, "alice@example.com", &[]);
    let empty = tempfile::tempdir().unwrap();
    for (cmd, flag, sql) in [("mysql", "-D", "-e"), ("psql", "-d", "-c")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_p0"))
            .args([cmd, flag, &stack.resource, sql, "SELECT 1", "--reason", "r"])
            .env("P0_CONFIG_DIR", alice.path())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_lease_that_covers_the_query_is_reused() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 3600)
        .await
        .unwrap();
    let alice = User::login(&stack, "alice@example.com", &[]);
    let bob = User::login(&stack, "bob@example.com", &["dba"]);
    let read = "SELECT count(*) FROM sales.orders";
    let first = psql(&alice, &stack, read, &["-At"]);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(String::from_utf8_lossy(&first.stdout).trim(), "4");
    let roles = stack.managed_roles().unwrap();
    // The same read, and a narrower one: the lease is reused, no new user.
    for sql in [read, "SELECT id FROM sales.orders WHERE id = 1"] {
        let again = psql(&alice, &stack, sql, &["-At"]);
        assert!(again.status.success(), "{}", text(&again));
        assert!(
            text(&again).contains("reusing your lease"),
            "{}",
            text(&again)
        );
    }
    // -q (before the subcommand: psql has its own) leaves the note out, not the result.
    let quiet = alice.p0(&[
        "-q",
        "psql",
        "-d",
        &stack.resource,
        "-c",
        read,
        "--reason",
        "r",
        "-X",
        "-At",
    ]);
    assert!(quiet.status.success(), "{}", text(&quiet));
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet));
    assert_eq!(String::from_utf8_lossy(&quiet.stdout).trim(), "4");
    assert_eq!(requests(&alice).len(), 1);
    assert_eq!(stack.managed_roles().unwrap(), roles, "no new user or role");
    // A table the lease does not cover, or --new: a new request.
    let other = psql(
        &alice,
        &stack,
        "SELECT count(*) FROM sales.customers",
        &["-At"],
    );
    assert!(
        other.status.success() && !text(&other).contains("reusing"),
        "{}",
        text(&other)
    );
    let fresh = psql(&alice, &stack, read, &["-At", "--new"]);
    assert!(
        fresh.status.success() && !text(&fresh).contains("reusing"),
        "{}",
        text(&fresh)
    );
    assert_eq!(requests(&alice).len(), 3);

    // A write needs a DBA once; repeating it while the lease lives needs nobody.
    let write = "UPDATE sales.orders SET total = total WHERE id = 1";
    let waiting = alice
        .cmd(&[
            "psql",
            "-d",
            &stack.resource,
            "-c",
            write,
            "--reason",
            "fix",
            "-X",
            "-q",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the pending write", 30, || pending_id(&bob).is_some()).await;
    let id = pending_id(&bob).unwrap();
    let approved = bob.p0(&["approve", &id]);
    assert!(approved.status.success(), "{}", text(&approved));
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let again = psql(&alice, &stack, write, &["-q", "--no-wait"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("reusing your lease"),
        "{}",
        text(&again)
    );
    assert_eq!(requests(&alice).len(), 4);
    let audit = alice.p0(&["audit", "--json"]);
    let log = String::from_utf8_lossy(&audit.stdout); // each reuse, with its SQL
    assert_eq!(log.matches("lease.reused").count(), 4, "{log}");
    assert!(log.contains("WHERE id = 1"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_config_directory_keeps_its_mode_and_is_refused_if_others_can_write_it() {
    use std::os::unix::fs::PermissionsExt;
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 3600)
        .await
        .unwrap();
    let parent = tempfile::tempdir().unwrap();
    let login = |dir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_p0"))
            .args([
                "login",
                "--dev",
                "alice@example.com",
                "--server",
                &stack.server_url,
            ])
            .env("P0_CONFIG_DIR", dir)
            .output()
            .unwrap()
    };
    let mode = |dir: &std::path::Path| std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = login(&shared);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("can be written by other users") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(mode(&shared), 0o777, "the mode was changed");
    assert!(
        std::fs::read_dir(&shared).unwrap().next().is_none(),
        "something was written"
    );
    let group = parent.path().join("group");
    std::fs::create_dir(&group).unwrap();
    std::fs::set_permissions(&group, std::fs::Permissions::from_mode(0o750)).unwrap();
    let out = login(&group);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&group), 0o750, "the mode was changed");
    let fresh = parent.path().join("new/p0");
    assert!(login(&fresh).status.success());
    assert_eq!(mode(&fresh), 0o700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_keeps_live_grants_working_whether_it_fails_or_succeeds() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 3600)
        .await
        .unwrap();
    let alice = User::login(&stack, "alice@example.com", &[]);
    let out = alice.p0(&[
        "request",
        "-d",
        &stack.resource,
        "-c",
        "SELECT count(*) FROM sales.orders",
        "--reason",
        "r",
        "--duration",
        "10m",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let id = requests(&alice)[0]["id"].as_str().unwrap().to_string();
    let resume = |who: &User| who.p0(&["request", "--resume", &id]);
    // A login that fails (nothing listens there) changes nothing.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let failed = alice.p0(&[
        "login",
        "--dev",
        "alice@example.com",
        "--server",
        &format!("http://{dead}"),
    ]);
    assert!(!failed.status.success(), "{}", text(&failed));
    let out = resume(&alice);
    assert!(
        out.status.success() && text(&out).contains("granted"),
        "{}",
        text(&out)
    );
    // A login that succeeds makes a new key; the grant sealed to the old one still opens.
    let key = |u: &User| std::fs::read_to_string(u.path().join("key.pub.pem")).unwrap();
    let before = key(&alice);
    let again = alice.p0(&[
        "login",
        "--dev",
        "alice@example.com",
        "--server",
        &stack.server_url,
    ]);
    assert!(again.status.success(), "{}", text(&again));
    assert_ne!(key(&alice), before, "a new login makes a new key");
    let out = resume(&alice);
    assert!(
        out.status.success() && text(&out).contains("granted"),
        "{}",
        text(&out)
    );
    // whoami, then logout: the token goes, whoami says so.
    let me = alice.p0(&["whoami", "--json"]);
    let v: Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(v["name"], "alice@example.com");
    assert_eq!(v["server"], stack.server_url.as_str());
    assert_eq!(v["expired"], false);
    assert!(alice.p0(&["logout"]).status.success());
    let me = alice.p0(&["whoami"]);
    assert!(
        !me.status.success() && text(&me).contains("not logged in"),
        "{}",
        text(&me)
    );
}

/// `p0 psql -c SQL` as `user` in the background, waiting for approval.
fn waiting(user: &User, stack: &Stack, sql: &str) -> std::process::Child {
    user.cmd(&[
        "psql",
        "-d",
        &stack.resource,
        "-c",
        sql,
        "--reason",
        "r",
        "-X",
        "-q",
        "--timeout",
        "2m",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap()
}

async fn approve_next(bob: &User) {
    wait_until("a pending request", 30, || pending_id(bob).is_some()).await;
    let out = bob.p0(&["approve", &pending_id(bob).unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_survives_a_server_restart_and_an_agent_outage_and_ctrl_c_says_how_to_resume() {
    let mut stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 3600)
        .await
        .unwrap();
    let proxy = support::proxy::Proxy::start(&stack.server_url).await;
    let alice = support::flow::User {
        dir: tempfile::tempdir().unwrap(),
    };
    let login = alice.p0(&[
        "login",
        "--dev",
        "alice@example.com",
        "--server",
        &proxy.url(),
    ]);
    assert!(login.status.success(), "{}", text(&login));
    let bob = User::login(&stack, "bob@example.com", &["dba"]);

    // The server goes away while Alice waits, and comes back: she gets her grant.
    let cli = waiting(
        &alice,
        &stack,
        "UPDATE sales.orders SET total = total WHERE id = 1",
    );
    wait_until("a pending request", 30, || pending_id(&bob).is_some()).await;
    proxy.down();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    proxy.up().await;
    approve_next(&bob).await;
    let out = cli.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach the p0 server"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("answers again"), "{}", text(&out));

    // The agent is away when the approved request is picked up: it stays approved, and the
    // next poll after the agent is back provisions it.
    let cli = waiting(&alice, &stack, "DELETE FROM sales.orders WHERE id = 0");
    wait_until("a pending request", 30, || pending_id(&bob).is_some()).await;
    stack.stop_agent();
    approve_next(&bob).await;
    wait_until("a pick-up that met no agent", 30, || {
        requests(&alice).iter().any(|r| {
            r["status"] == "provisioning"
                && r["message"].as_str().is_some_and(|m| m.contains("agent"))
        })
    })
    .await;
    assert!(requests(&alice).iter().all(|r| r["status"] != "failed"));
    stack.start_agent().await.unwrap();
    let out = cli.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Ctrl-C while waiting says how to pick the request up later.
    let cli = waiting(&alice, &stack, "DELETE FROM sales.customers WHERE id = 0");
    wait_until("a pending request", 30, || pending_id(&bob).is_some()).await;
    let id = pending_id(&bob).unwrap();
    std::process::Command::new("kill")
        .args(["-INT", &cli.id().to_string()])
        .status()
        .unwrap();
    let out = cli.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("--resume {id}")),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_the_agent_would_refuse_is_refused_before_anyone_is_asked() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 3600)
        .await
        .unwrap();
    let alice = User::login(&stack, "alice@example.com", &[]);
    // Roles the agent does not hand out: not on its list, its own service user.
    for ask in [
        vec!["--role", "pg_write_all_data"],
        vec!["--role", "postgres"],
    ] {
        let mut args = vec![
            "request",
            "-d",
            &stack.resource,
            "--reason",
            "r",
            "--no-wait",
        ];
        args.extend(&ask);
        let out = alice.p0(&args);
        assert_eq!(out.status.code(), Some(1), "{ask:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refused") && err.trim().lines().count() == 1,
            "{ask:?}: {err}"
        );
    }
    assert!(requests(&alice).is_empty(), "a request was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_log_filters_and_verifies_in_pure_json() {
    let stack = Stack::start_engine(Engine::Postgres, DEMO_RULES, 3600)
        .await
        .unwrap();
    let alice = User::login(&stack, "alice@example.com", &[]);
    for sql in [
        "SELECT count(*) FROM sales.orders",
        "SELECT count(*) FROM sales.customers",
    ] {
        assert!(psql(&alice, &stack, sql, &["-At"]).status.success());
    }
    let id = requests(&alice)[0]["id"].as_str().unwrap().to_string();
    let json = |args: &[&str]| -> Value {
        let mut all = vec!["audit", "--json"];
        all.extend(args);
        let out = alice.p0(&all);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    };
    // --verify --json: one JSON document, nothing else on stdout.
    let v = json(&["--verify"]);
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["entries"].as_u64().unwrap() >= 4, "{v}");
    assert_eq!(
        v["shown"].as_array().unwrap().len() as u64,
        v["entries"].as_u64().unwrap()
    );
    let of_one = json(&["--request", &id]);
    let of_one = of_one.as_array().unwrap();
    assert!(!of_one.is_empty() && of_one.iter().all(|e| e["request_id"] == id.as_str()));
    let created = of_one
        .iter()
        .find(|e| e["action"] == "request.created")
        .unwrap();
    assert!(
        created["detail"]
            .as_str()
            .unwrap()
            .contains("sales.customers"),
        "{created}"
    );
    assert!(
        created["detail"]
            .as_str()
            .unwrap()
            .contains("reads are automatic"),
        "{created}"
    );
    let mine = json(&["--user", "alice@example.com"]);
    assert!(mine
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == "alice@example.com"));
    let on = json(&["-d", &stack.resource]).as_array().unwrap().len();
    assert!(on >= 4, "{on}");
    assert!(json(&["-d", "pg/elsewhere"]).as_array().unwrap().is_empty());
    assert_eq!(
        json(&["--since", "1h"]).as_array().unwrap().len() as u64,
        v["entries"].as_u64().unwrap()
    );
    assert!(json(&["--until", "1h"]).as_array().unwrap().is_empty());
    let bad = alice.p0(&["audit", "--since", "yesterday-ish"]);
    assert!(
        !bad.status.success() && text(&bad).contains("RFC 3339"),
        "{}",
        text(&bad)
    );
}
