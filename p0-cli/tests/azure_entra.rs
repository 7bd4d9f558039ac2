//! The agent on Azure Functions behind App Service authentication, without Azure: the server
//! calls it with Entra ID tokens of its managed identity (azure_identity, through a stand-in
//! App Service identity endpoint on loopback: `IDENTITY_ENDPOINT`, `IDENTITY_HEADER`), and a
//! stand-in Functions host admits only valid tokens for the app's audience before it forwards
//! to the real `p0-agent`. The functions are anonymous here: the token, not a key, is what
//! the host checks, and the agent still checks the server's HMAC itself.
//!
//! Needs the `azure` feature: `cargo test -p p0-cli --features azure --test azure_entra`.
#![cfg(feature = "azure")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_stack::clouds::{EasyAuth, Function, FunctionsApp, FunctionsHost, ManagedIdentity};
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::path::{Path, PathBuf};
use support::cli::text;
use support::flow::User;
use support::platform::{free_port, post, wait_healthy, Handler};

const AUDIENCE: &str = "api://p0-agent-test";
const IDENTITY_HEADER: &str = "identity-header-0123456789";

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/azure")
}

#[test]
fn a_request_goes_through_app_service_authentication_with_an_entra_token() {
    // The server's managed identity, as App Service gives it: set before any thread starts.
    let identity_port = free_port();
    std::env::set_var(
        "IDENTITY_ENDPOINT",
        format!("http://127.0.0.1:{identity_port}/msi/token"),
    );
    std::env::set_var("IDENTITY_HEADER", IDENTITY_HEADER);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(identity_port));
}

async fn run(identity_port: u16) {
    let identity = ManagedIdentity::start(identity_port, IDENTITY_HEADER)
        .await
        .unwrap();
    // The app as docs/azure.md deploys it with Entra ID only: its HTTP functions anonymous,
    // App Service authentication in front (health excluded).
    let mut app = FunctionsApp::read(&app_dir()).unwrap();
    for f in app.functions.values_mut() {
        if let Function::Http { auth_level, .. } = f {
            *auth_level = "anonymous".into();
        }
    }
    let easy = EasyAuth::new(&identity.url, AUDIENCE, &["/v1/health"]).unwrap();
    let handler_port = free_port();
    let host = FunctionsHost::start_with(app.clone(), handler_port, None, Some(easy))
        .await
        .unwrap();
    let stack = Stack::start_with_external_agent(
        p0_core::Engine::Postgres,
        DEMO_RULES,
        3600,
        &host.url,
        &format!("agent_entra_audience = \"{AUDIENCE}\""),
    )
    .await
    .unwrap();
    let mut handler = Handler::start(&stack, &app_dir(), &app, handler_port);
    wait_healthy(&format!("{}/v1/health", host.url), || handler.logs()).await;

    // Without a token, or with one for another app, the host answers 401 and the agent never
    // sees the call; with a valid token but no HMAC, the agent refuses it itself.
    let explain = format!("{}/v1/explain", host.url);
    let body = r#"{"sql": "SELECT 1"}"#;
    assert_eq!(post(&explain, &[], body).await.0, 401);
    let other = identity.mint("api://another-app").unwrap();
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
    assert_eq!(post(&explain, &[bearer(&other)], body).await.0, 401);
    assert!(
        !host.forwarded().contains(&"/v1/explain".to_string()),
        "{:?}",
        host.forwarded()
    );
    let valid = identity.mint(AUDIENCE).unwrap();
    let (status, answer) = post(&explain, &[bearer(&valid)], body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("unauthenticated")),
        "{answer}"
    );

    // A request end to end, the server's calls carrying its identity's tokens.
    let alice = User::login(&stack, "alice@example.com", &[]);
    let out = alice.p0(&[
        "psql",
        "-d",
        RESOURCE,
        "-c",
        "SELECT count(*) FROM sales.orders",
        "--reason",
        "entra",
        "--duration",
        "10m",
        "-X",
        "-A",
        "-t",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), handler.logs());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    let forwarded = host.forwarded();
    for path in ["/v1/explain", "/v1/provision"] {
        assert!(forwarded.contains(&path.to_string()), "{forwarded:?}");
    }
    let resources = identity.resources();
    assert!(
        !resources.is_empty() && resources.iter().all(|r| r == AUDIENCE),
        "{resources:?}"
    );
    let log = handler.logs();
    assert!(!log.contains(&valid), "a token in the handler's log");
    assert_eq!(handler.proc.terminate(15), Some(0), "{log}");
}
