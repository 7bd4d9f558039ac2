//! End to end over real HTTP and a real PostgreSQL: the `p0` binary against the in-process
//! stack (server, agent, dev issuer). One stack, scenarios in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_core::Engine;
use p0_stack::{Stack, DEMO_RULES};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::cli::{tamper, text};
use support::flow::{logs, pending_id, request_id, wait_until, Flavor, User, MYSQL, POSTGRES};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_flow_over_http_postgres() {
    flow(POSTGRES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_flow_over_http_mysql() {
    flow(MYSQL).await;
}

async fn flow(f: Flavor) {
    let logs = logs();
    let mut stack = Stack::start_engine(f.engine, DEMO_RULES, 1).await.unwrap();
    let res = stack.resource.clone();
    let res = res.as_str();
    // A Slack-compatible receiver for the server's webhook.
    let hooks: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = hooks.clone();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .unwrap()
                    .push(v["text"].as_str().unwrap_or_default().to_string());
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await.unwrap() });
    stack.stop_server();
    stack.set_webhook(&hook_url);
    stack.start_server().await.unwrap();
    let alice = User::login(&stack, "alice@example.com", &["dba"]);
    let bob = User::login(&stack, "bob@example.com", &["dba"]);
    let mut passwords: Vec<String> = Vec::new();

    // 1. Auto-approved query: rows come back, the client's exit code is ours.
    let out = alice.p0(&[
        f.client,
        "--resource",
        res,
        f.sql_flag,
        &f.q("SELECT count(*) FROM sales.orders"),
        "--reason",
        "report",
        "--duration",
        "3s",
        f.quiet[0],
        f.quiet[1],
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    let out = alice.p0(&[
        f.client,
        "--resource",
        res,
        f.sql_flag,
        &f.q("SELECT nope FROM sales.orders"),
        "--reason",
        "r",
        "--duration",
        "3s",
        f.quiet[0],
    ]);
    assert!(
        !out.status.success(),
        "the client's own failure is passed on"
    );
    let leftovers = std::fs::read_dir(alice.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("p0-mysql."))
        .count();
    assert_eq!(leftovers, 0, "a credentials file was left behind");

    // 2. exec: PG* variables and DATABASE_URL; capture the password to search for it later.
    let out = alice.p0(&[
        "exec",
        "--resource",
        res,
        "-c",
        &f.q("SELECT 1 FROM sales.customers"),
        "--reason",
        "r",
        "--duration",
        "3s",
        "--",
        "sh",
        "-c",
        "echo $DATABASE_URL",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let url = printed.trim();
    let pw = url
        .split("://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .to_string();
    let scheme = if f.engine == Engine::MySql {
        "mysql://p0_alice_"
    } else {
        "postgres://p0_alice_"
    };
    assert!(pw.len() >= 32 && url.starts_with(scheme), "{url}");
    passwords.push(pw);

    // 3. A write needs approval; another DBA approves; access follows.
    let mut waiting = alice
        .cmd(&[
            f.client,
            "--resource",
            res,
            f.sql_flag,
            &f.q("UPDATE sales.orders SET total = total WHERE id = 1"),
            "--reason",
            "fix",
            "--duration",
            "3s",
            f.quiet[0],
            "-q",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut id = None;
    wait_until("a pending request", 30, || {
        id = pending_id(&bob);
        id.is_some()
    })
    .await;
    let id = id.unwrap();
    let self_approve = alice.p0(&["approve", &id]);
    assert_eq!(self_approve.status.code(), Some(1));
    assert!(
        text(&self_approve).contains("cannot approve your own request"),
        "{}",
        text(&self_approve)
    );
    // --json: stdout is the request as it now stands and nothing else; what was approved is
    // still shown, on stderr.
    let ok = bob.p0(&["approve", &id, "--json"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("pure JSON on stdout");
    assert_eq!(v["id"].as_str(), Some(&*id));
    assert!(
        matches!(v["status"].as_str(), Some("provisioning" | "active")),
        "{v}"
    );
    assert_eq!(v["approvals"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(
        String::from_utf8_lossy(&ok.stderr).contains("UPDATE "),
        "{}",
        text(&ok)
    );
    let done = waiting.wait_with_output().unwrap();
    assert!(done.status.success(), "approved request: {}", text(&done));
    waiting = alice.cmd(&["ls"]).spawn().unwrap();
    let _ = waiting.wait();

    let seen = hooks.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|t| t.contains("asks for access") && t.contains(&id)),
        "webhook for the pending request: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|t| t.contains("approved") && t.contains(&id)),
        "webhook for the approval: {seen:?}"
    );

    // 4. Denied by an approver: exit code 2.
    let child = alice
        .cmd(&[
            f.client,
            "--resource",
            res,
            f.sql_flag,
            &f.q("DELETE FROM sales.orders WHERE id = 4"),
            "--reason",
            "cleanup",
            f.quiet[0],
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut id = None;
    wait_until("a pending request", 30, || {
        id = pending_id(&bob);
        id.is_some()
    })
    .await;
    let denied = bob.p0(&["deny", &id.unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&denied.stdout).expect("pure JSON on stdout");
    assert_eq!(v["status"], "denied", "{}", text(&denied));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // 5. A script mixing an auto-approved read with a write gets nothing without approval.
    let before = stack.managed_users().unwrap();
    let out = alice.p0(&[
        "request",
        "--resource",
        res,
        "-c",
        &f.q("SELECT * FROM sales.customers; DELETE FROM sales.orders"),
        "--reason",
        "r",
        "--duration",
        "3s",
        "--no-wait",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // Earlier short leases may expire meanwhile: no user may be *added*.
    let after = stack.managed_users().unwrap();
    assert!(
        after.iter().all(|u| before.contains(u)),
        "nothing is created before approval: {after:?} vs {before:?}"
    );
    // Approved later, the requester picks it up by id.
    let id = request_id(&out);
    let again = alice.p0(&["request", "--resume", &id, "--no-wait"]);
    assert_eq!(
        again.status.code(),
        Some(4),
        "still waiting: {}",
        text(&again)
    );
    assert!(bob.p0(&["approve", &id]).status.success());
    let resumed = alice.p0(&["request", "--resume", &id]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("granted: user p0_alice_"),
        "{}",
        text(&resumed)
    );

    // 6. Early revoke.
    let out = alice.p0(&[
        "request",
        "--resource",
        res,
        "-c",
        &f.q("SELECT 1 FROM sales.customers"),
        "--reason",
        "r",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mine = alice.p0(&["ls", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&mine.stdout).unwrap();
    let active = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "active")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == active.as_str())
        .unwrap()["grant"]["username"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stack.managed_users().unwrap().contains(&user));
    // Something the user owned (PostgreSQL) or defined (MySQL): the revocation reports it.
    match &stack.my {
        Some(m) => m.sql(&format!(
            "CREATE DEFINER = '{user}'@'%' FUNCTION app.by_user() RETURNS int DETERMINISTIC RETURN 1"
        )),
        None => stack.pg.psql(
            p0_stack::DATABASE,
            &format!("CREATE TABLE scratch (v int); ALTER TABLE scratch OWNER TO \"{user}\""),
        ),
    }
    .unwrap();
    let revoked = alice.p0(&["revoke", &active, "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&revoked.stdout).expect("pure JSON on stdout");
    assert_eq!(v["status"], "revoked", "{}", text(&revoked));
    assert!(!stack.managed_users().unwrap().contains(&user));
    let audit = text(&alice.p0(&["audit"]));
    let noted = audit
        .lines()
        .find(|l| l.contains("lease.revoked") && l.contains(&user))
        .unwrap_or_else(|| panic!("no revocation of {user} in {audit}"));
    assert!(noted.contains("1 object(s)"), "{noted}");

    // 7. Expiry revokes and ends an open session.
    let started = Instant::now();
    let out = alice.p0(&[
        f.client,
        "--resource",
        res,
        f.sql_flag,
        &f.q("SELECT pg_sleep(40) FROM sales.customers LIMIT 1"),
        "--reason",
        "r",
        "--duration",
        "4s",
        f.quiet[0],
    ]);
    assert!(!out.status.success(), "the session must be ended at expiry");
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "ended by the reaper, not by the query finishing"
    );
    wait_until("all leases gone", 30, || {
        stack.managed_roles().unwrap().is_empty()
    })
    .await;

    // 8. Server restarted with a live lease: it still expires.
    let out = alice.p0(&[
        "request",
        "--resource",
        res,
        "-c",
        &f.q("SELECT 1 FROM sales.orders"),
        "--reason",
        "r",
        "--duration",
        "3s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    stack.stop_server();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !stack.managed_roles().unwrap().is_empty(),
        "nobody revoked it while the server was down"
    );
    stack.start_server().await.unwrap();
    wait_until("the lease to expire after restart", 30, || {
        stack.managed_roles().unwrap().is_empty()
    })
    .await;

    // 9. Agent down at expiry: retried until it is back, then revoked.
    let out = alice.p0(&[
        "request",
        "--resource",
        res,
        "-c",
        &f.q("SELECT 1 FROM sales.orders"),
        "--reason",
        "r",
        "--duration",
        "2s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    stack.stop_agent();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!stack.managed_roles().unwrap().is_empty());
    stack.start_agent().await.unwrap();
    wait_until("the retried revocation", 90, || {
        stack.managed_roles().unwrap().is_empty()
    })
    .await;

    // 10. The audit log verifies; entries cut from its end, and an edited entry, are detected.
    let out = alice.p0(&["audit", "--verify"]);
    assert!(out.status.success(), "{}", text(&out));
    // The reaper may append (an expiry) after alice read the log: cut from her head on, so the
    // head she keeps is the one gone, whatever came after it.
    let head: u64 = text(&out)
        .split("intact: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no entry count in {}", text(&out)));
    let store = stack.store_path().to_path_buf();
    stack.stop_server();
    tamper(&store, &format!("DELETE FROM audit WHERE seq >= {head}")).await;
    stack.start_server().await.unwrap();
    // The chain of what is left is intact; only the head alice verified shows the cut.
    let out = bob.p0(&["audit", "--verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = alice.p0(&["audit", "--verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is gone"), "{}", text(&out));
    stack.stop_server();
    tamper(
        &store,
        "UPDATE audit SET detail = 'nothing happened' WHERE seq = 2",
    )
    .await;
    stack.start_server().await.unwrap();
    let out = bob.p0(&["audit", "--verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("edited"), "{}", text(&out));

    // Metrics count what happened, without names.
    let metrics = reqwest::get(format!("{}/metrics", stack.server_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("p0_requests{status=\"expired\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("p0_requests{status=\"denied\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("alice"), "{metrics}");

    // 11. No password in the server's store or in any log line of the server and agent.
    let mut stored = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = store.clone().into_os_string();
        p.push(suffix);
        stored.extend(std::fs::read(PathBuf::from(p)).unwrap_or_default());
    }
    let stored = String::from_utf8_lossy(&stored).to_string();
    let logged = logs.contents();
    assert!(logged.contains("provisioned"), "logs were captured");
    for pw in &passwords {
        assert!(
            !stored.contains(pw.as_str()),
            "password in the server store"
        );
        assert!(!logged.contains(pw.as_str()), "password in a log line");
    }
    let token = std::fs::read_to_string(alice.path().join("token")).unwrap();
    assert!(!logged.contains(token.trim()), "ID token in a log line");
    assert!(
        !stored.contains(token.trim()),
        "ID token in the server store"
    );
    let key = std::fs::read_to_string(alice.path().join("key.pem")).unwrap();
    let body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(body.len() > 10);
    for chunk in body {
        assert!(
            !logged.contains(chunk) && !stored.contains(chunk),
            "private key material in a log or the store"
        );
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(alice.path().join("key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the private key file must be 0600");
}
