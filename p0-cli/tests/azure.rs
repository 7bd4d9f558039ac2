//! The agent as an Azure Functions custom handler, without Azure: the app's files
//! (`deploy/azure`: `host.json`, one `function.json` per entry point) are read and matched to
//! the agent's routes; the real `p0-agent` starts as the Functions host starts a handler (its
//! arguments from `host.json`, in the app's directory, `FUNCTIONS_CUSTOMHANDLER_PORT` set);
//! a stand-in for the host ([`p0_stack::clouds::FunctionsHost`]) checks function keys,
//! forwards HTTP calls and delivers timer invocations; the server reaches it with the
//! function key, and a request goes through it end to end against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_agent::{Op, AZURE_TIMER_PATH};
use p0_stack::clouds::{Function, FunctionsApp, FunctionsHost};
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cli::text;
use support::flow::User;
use support::platform::{free_port, post, wait_healthy, Handler};

const KEY: &str = "function-key-0123456789";

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/azure")
}

#[test]
fn the_app_files_declare_each_entry_point_of_the_agent() {
    let app = FunctionsApp::read(&app_dir()).unwrap();
    assert!(
        app.forwarding,
        "HTTP requests must be forwarded to the handler"
    );
    assert_eq!(app.executable, "p0-agent");
    assert_eq!(app.arguments, ["--config", "agent.toml"]);
    for op in [Op::Provision, Op::Revoke, Op::Explain, Op::Health] {
        let name = op.path().trim_start_matches("/v1/");
        let Some(Function::Http {
            route,
            methods,
            auth_level,
        }) = app.functions.get(name)
        else {
            panic!("no HTTP function `{name}`: {:?}", app.functions);
        };
        assert_eq!(app.path_of(route), op.path(), "{name}");
        let (method, level) = if op == Op::Health {
            ("get", "anonymous")
        } else {
            ("post", "function")
        };
        assert_eq!(methods, &[method.to_string()], "{name}");
        assert_eq!(
            auth_level, level,
            "{name}: the Functions host checks the key"
        );
    }
    // The sweep is the timer's, at the path the host posts its invocations to.
    let Some(Function::Timer { schedule, .. }) = app.functions.get("sweep") else {
        panic!("no timer function `sweep`");
    };
    assert_eq!(
        schedule.split_whitespace().count(),
        6,
        "NCRONTAB: {schedule}"
    );
    assert_eq!(AZURE_TIMER_PATH, "/sweep");
    // Nothing else is exposed: the sweep has no HTTP trigger.
    assert_eq!(app.functions.len(), 5, "{:?}", app.functions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_goes_through_the_functions_host_with_its_key() {
    let app = FunctionsApp::read(&app_dir()).unwrap();
    let handler_port = free_port();
    let host = FunctionsHost::start(app.clone(), handler_port, KEY)
        .await
        .unwrap();
    let mut stack = Stack::start_with_external_agent(
        p0_core::Engine::Postgres,
        DEMO_RULES,
        3600,
        &host.url,
        &format!("agent_function_key = \"{KEY}\""),
    )
    .await
    .unwrap();

    let mut handler = Handler::start(&stack, &app_dir(), &app, handler_port);
    let logs = || handler.logs();
    wait_healthy(&format!("{}/v1/health", host.url), logs).await;

    // The host refuses a call without the key (it never reaches the handler); with the key
    // but without the server's HMAC, the agent refuses it itself.
    let explain = format!("{}/v1/explain", host.url);
    let body = r#"{"sql": "SELECT 1"}"#;
    assert_eq!(post(&explain, &[], body).await.0, 401);
    assert!(!host.forwarded().contains(&"/v1/explain".to_string()));
    let (status, answer) = post(&explain, &[("x-functions-key", KEY.into())], body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("unauthenticated")),
        "{answer}"
    );
    // The timer's path is not reachable through the host.
    assert_eq!(
        post(
            &format!("{}/sweep", host.url),
            &[("x-functions-key", KEY.into())],
            "{}"
        )
        .await
        .0,
        404
    );

    // A request end to end: explained, provisioned and revoked through the host.
    let alice = User::login(&stack, "alice@example.com", &[]);
    let query = |duration: &str| {
        alice.p0(&[
            "psql",
            "-d",
            RESOURCE,
            "-c",
            "SELECT count(*) FROM sales.orders",
            "--reason",
            "azure",
            "--duration",
            duration,
            "-X",
            "-A",
            "-t",
        ])
    };
    let out = query("10m");
    assert!(out.status.success(), "{}\n{}", text(&out), logs());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    let forwarded = host.forwarded();
    for path in ["/v1/explain", "/v1/provision"] {
        assert!(forwarded.contains(&path.to_string()), "{forwarded:?}");
    }
    let ls = alice.p0(&["ls", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let id = listed["requests"][0]["id"].as_str().unwrap().to_string();
    let out = alice.p0(&["revoke", &id]);
    assert!(out.status.success(), "{}\n{}", text(&out), logs());
    assert!(host.forwarded().contains(&"/v1/revoke".to_string()));
    assert_eq!(stack.managed_roles().unwrap(), Vec::<String>::new());

    // The timer trigger sweeps: a lease left to expire with no server to revoke it.
    let out = query("2s");
    assert!(out.status.success(), "{}\n{}", text(&out), logs());
    let users = stack.managed_users().unwrap();
    assert_eq!(users.len(), 1);
    stack.stop_server();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, answer) = host.fire_timer("sweep").await.unwrap();
    assert_eq!(status, 200, "{answer}\n{}", logs());
    assert_eq!(answer["Outputs"], serde_json::json!({}), "{answer}");
    assert!(answer["Logs"].is_array(), "{answer}");
    assert_eq!(
        answer["ReturnValue"]["removed"],
        serde_json::json!(users),
        "{answer}"
    );
    assert_eq!(stack.managed_roles().unwrap(), Vec::<String>::new());
    // Something that is not an invocation is refused.
    let (status, _) = post(&format!("http://127.0.0.1:{handler_port}/sweep"), &[], "[]").await;
    assert_eq!(status, 400);

    // The host stops a handler with SIGTERM: it ends cleanly.
    let log = handler.logs();
    assert_eq!(handler.proc.terminate(15), Some(0), "{log}");
}
