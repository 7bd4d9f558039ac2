//! What an approver is shown before approving, through the real `p0` binary and the webhook:
//! the SQL, the privileges it needs, the rule, the duration and the digest, with nothing a
//! terminal would act on (a reason that tries to hide itself is shown escaped); the audit entry
//! says the same, and `p0 approve` approves exactly what it printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_stack::{Stack, DEMO_RULES};
use serde_json::{json, Value};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use support::api::WRITE;
use support::cli::text;

/// The `p0` binary with its own config dir, logged in with the development issuer.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn login(stack: &Stack, email: &str, groups: &[&str]) -> Self {
        let c = Cli {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut args = vec!["login", "--dev", email, "--server", &stack.server_url];
        for g in groups {
            args.extend(["--group", g]);
        }
        let out = c.p0(&args);
        assert!(out.status.success(), "login: {}", text(&out));
        c
    }

    /// Asks for the test's write with `reason`, without waiting; the request's id.
    fn pending_write(&self, stack: &Stack, reason: &str) -> String {
        let out = self.p0(&[
            "request",
            "--resource",
            &stack.resource,
            "-c",
            WRITE,
            "--reason",
            reason,
            "--duration",
            "5m",
            "--no-wait",
        ]);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        support::flow::request_id(&out)
    }

    fn p0(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_p0"))
            .args(args)
            .env("P0_CONFIG_DIR", self.dir.path())
            .env_remove("P0_SERVER")
            .output()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvers_see_sql_privileges_and_rule_before_approving() {
    let mut stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let hooks: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = hooks.clone();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move { sink.lock().unwrap().push(v) }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await.unwrap() });
    stack.stop_server();
    stack.set_webhook(&hook_url);
    stack.start_server().await.unwrap();
    let alice = Cli::login(&stack, "alice@example.com", &[]);
    let bob = Cli::login(&stack, "bob@example.com", &["dba"]);
    // A reason that tries to hide itself from the approver's terminal.
    let reason = "fix\u{1b}[8m hidden";
    let id = alice.pending_write(&stack, reason);

    // p0 show: everything, readable, nothing a terminal would act on.
    let out = bob.p0(&["show", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    for expected in [
        "requester    alice@example.com",
        &format!("resource     {}", stack.resource),
        "reason       fix\\u{1b}[8m hidden",
        "duration     5m (the rule allows at most 1h)",
        &format!("sql          {WRITE}"),
        "UPDATE on table sales.orders",
        "CONNECT on database app",
        "needs 1 approval(s) from group:dba (rule `anything else needs a DBA`)",
        "approvals    none yet",
        "status       pending_approval, waiting",
    ] {
        assert!(shown.contains(expected), "`{expected}` not in:\n{shown}");
    }
    assert!(!shown.contains('\u{1b}'), "{shown}");
    // --json and ls --json carry the same.
    let out = bob.p0(&["show", &id, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signed"]["intent"]["query"], WRITE, "{v}");
    assert_eq!(v["rule"], "anything else needs a DBA", "{v}");
    assert!(v["permissions"].as_array().unwrap().len() >= 3, "{v}");
    let digest = v["digest"].as_str().unwrap().to_string();
    assert!(shown.contains(&format!("digest       {digest}")), "{shown}");
    let out = bob.p0(&["ls", "--all", "--json"]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = all["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed, &v);

    // The webhook: Slack text with the SQL and privileges, and the same as fields.
    let hook = hooks
        .lock()
        .unwrap()
        .iter()
        .find(|h| h["event"] == "request.pending")
        .cloned()
        .unwrap();
    let t = hook["text"].as_str().unwrap();
    assert!(
        t.contains(WRITE) && t.contains("UPDATE on table sales.orders") && t.contains(&id),
        "{t}"
    );
    let r = &hook["request"];
    assert_eq!(
        (r["sql"].as_str(), r["requester"].as_str()),
        (Some(WRITE), Some("alice@example.com")),
        "{hook}"
    );
    assert_eq!(
        (r["duration_secs"].as_u64(), r["max_duration_secs"].as_u64()),
        (Some(300), Some(3600)),
        "{hook}"
    );
    assert_eq!(r["approvers"], json!(["group:dba"]), "{hook}");
    assert_eq!(r["digest"], digest.as_str(), "{hook}");
    assert!(
        r["privileges"]
            .as_array()
            .unwrap()
            .contains(&json!("UPDATE on table sales.orders")),
        "{hook}"
    );

    // The audit entry of the request says what was asked, why and for how long.
    let out = alice.p0(&["audit", "--json"]);
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let created = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "request.created")
        .unwrap();
    let detail: Value = serde_json::from_str(created["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        (detail["sql"].as_str(), detail["duration_secs"].as_u64()),
        (Some(WRITE), Some(300)),
        "{detail}"
    );
    assert_eq!(detail["reason"], reason, "{detail}");
    assert!(
        detail["privileges"].as_array().unwrap().len() >= 3,
        "{detail}"
    );

    // p0 approve prints what it approves, then approves exactly that.
    let out = bob.p0(&["approve", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(WRITE) && said.contains(&digest) && said.contains("provisioning"),
        "{said}"
    );
    let out = alice.p0(&["request", "--resume", &id]);
    assert!(
        text(&out).contains("granted: user p0_alice_"),
        "{}",
        text(&out)
    );
}

/// Nothing a requester writes acts on anyone's terminal, and no text adds a row of its own to
/// a listing: a reason that clears the screen, writes the clipboard (OSC 52), reverses text and
/// forges a row of `p0 ls`, and SQL with an escape in a literal, are shown escaped by every
/// command an approver runs (ls, show, audit, approve), and the requester's own error line
/// escapes what it quotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_text_reaches_no_terminal() {
    let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let mallory = Cli::login(&stack, "mallory@example.com", &[]);
    let bob = Cli::login(&stack, "bob@example.com", &["dba"]);
    let reason = "fix\u{1b}[2J\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{202e}dessorper\r\n  r_forged  \
                  alice@example.com  app  active  approved";
    let id = mallory.pending_write(&stack, reason);
    let out = mallory.p0(&[
        "request",
        "--resource",
        &stack.resource,
        "-c",
        "SELECT '\u{1b}[2J' AS x FROM sales.orders",
        "--reason",
        reason,
        "--duration",
        "1m",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let clean = |what: &str, out: &Output| {
        for stream in [&out.stdout, &out.stderr] {
            let t = String::from_utf8_lossy(stream);
            let bad = t
                .chars()
                .find(|c| (c.is_control() && !matches!(c, '\n' | '\t')) || *c == '\u{202e}');
            assert!(bad.is_none(), "{what} printed {bad:?}: {t:?}");
        }
    };
    let ls = bob.p0(&["ls", "--all"]);
    assert!(ls.status.success(), "{}", text(&ls));
    clean("ls", &ls);
    let json: Value = serde_json::from_slice(&bob.p0(&["ls", "--all", "--json"]).stdout).unwrap();
    let ids: Vec<&str> = json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let listing = String::from_utf8_lossy(&ls.stdout).to_string();
    let rows: Vec<&str> = listing
        .lines()
        .skip_while(|l| !l.starts_with("REQUEST "))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), ids.len(), "a row was forged:\n{listing}");
    assert!(
        rows.iter()
            .all(|r| ids.contains(&r.split_whitespace().next().unwrap_or(""))),
        "a row was forged:\n{listing}"
    );
    for args in [
        vec!["show", id.as_str()],
        vec!["audit"],
        vec!["approve", id.as_str()],
    ] {
        let out = bob.p0(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        clean(&args.join(" "), &out);
    }
    // An error line quoting what was typed.
    let out = mallory.p0(&[
        "psql",
        "-d",
        "db\u{1b}[2J",
        "-c",
        "SELECT 1",
        "--reason",
        "r",
    ]);
    assert!(!out.status.success());
    clean("an error", &out);
    assert_eq!(text(&out).trim().lines().count(), 1, "{}", text(&out));
}
