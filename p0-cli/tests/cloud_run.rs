//! The agent as a Cloud Run service, without Google Cloud: the real `p0-agent` starts as
//! Cloud Run starts a container (`K_SERVICE`, `PORT`), a stand-in for the metadata server
//! ([`p0_stack::clouds::GoogleMetadata`], on loopback through `GCE_METADATA_HOST`) issues
//! the Google-signed ID tokens the server attaches (google-cloud-auth) and names the project,
//! and a request goes through end to end against a real PostgreSQL. The agent's own checks
//! are tried as an attacker would: no token, another account, another audience, another
//! signer, a token without the server's HMAC, a token Cloud Run stripped of its signature.
//!
//! Needs the `gcp` feature: `cargo test -p p0-cli --features gcp --test cloud_run`.
#![cfg(feature = "gcp")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_stack::clouds::{GoogleMetadata, GOOGLE_PROJECT};
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::process::{Command, Stdio};
use support::cli::text;
use support::flow::User;
use support::platform::{agent_binary, free_port, post, wait_healthy, Proc};

const SERVER: &str = "p0-server@p0-test.iam.gserviceaccount.com";
const SCHEDULER: &str = "p0-scheduler@p0-test.iam.gserviceaccount.com";

#[test]
fn a_request_goes_through_cloud_run_with_google_id_tokens() {
    // The server finds the metadata server as on Google Cloud: set before any thread starts.
    let metadata_port = free_port();
    std::env::set_var("GCE_METADATA_HOST", format!("127.0.0.1:{metadata_port}"));
    std::env::remove_var("GOOGLE_APPLICATION_CREDENTIALS");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(metadata_port));
}

async fn run(metadata_port: u16) {
    let metadata = GoogleMetadata::start(metadata_port, SERVER).await.unwrap();
    let port = free_port();
    let service = format!("http://127.0.0.1:{port}");
    let stack = Stack::start_with_external_agent(
        p0_core::Engine::Postgres,
        DEMO_RULES,
        3600,
        &service,
        &format!("agent_google_audience = \"{service}\""),
    )
    .await
    .unwrap();

    // The agent's configuration: the stack's, with the Google callers it accepts.
    let path = stack
        .agent_process_config("agent", "127.0.0.1:1".parse().unwrap(), 0)
        .unwrap();
    let mut config: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config.insert(
        "google_caller".into(),
        toml::Value::Table(toml::toml! {
            audience = (service.clone())
            accounts = [SERVER, SCHEDULER]
            issuer = (metadata.url.clone())
        }),
    );
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stdout.log");
    let mut agent = Proc::spawn(
        Command::new(agent_binary())
            .env("P0_AGENT_CONFIG", &path)
            .env("K_SERVICE", "p0-agent")
            .env("K_REVISION", "p0-agent-00001-abc")
            .env("PORT", port.to_string())
            .env_remove("GOOGLE_CLOUD_PROJECT")
            .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap()),
    );
    let logs = || {
        ["stdout.log", "stderr.log"]
            .iter()
            .map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default())
            .collect::<String>()
    };
    wait_healthy(&format!("{service}/v1/health"), logs).await;

    // What the agent checks itself, whatever Cloud Run let through.
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
    let explain = format!("{service}/v1/explain");
    let sweep = format!("{service}/v1/sweep");
    let body = r#"{"sql": "SELECT 1"}"#;
    let refused = |(status, answer): (u16, serde_json::Value), why: &str| {
        assert_eq!(status, 401, "{why}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(why) && !message.contains('\n'),
            "{why}: {answer}"
        );
    };
    let trace = "0123456789abcdef0123456789abcdef";
    refused(
        post(
            &explain,
            &[("x-cloud-trace-context", format!("{trace}/7;o=1"))],
            body,
        )
        .await,
        "no Google ID token",
    );
    let intruder = metadata.mint("intruder@evil.example", &service).unwrap();
    refused(
        post(&sweep, &[bearer(&intruder)], "{}").await,
        "not in google_caller.accounts",
    );
    let elsewhere = metadata.mint(SERVER, "https://other.run.app").unwrap();
    refused(
        post(&sweep, &[bearer(&elsewhere)], "{}").await,
        "Google ID token",
    );
    let forger = p0_core::DangerousDevIssuer::new(metadata.url.clone()).unwrap();
    let forged = forger
        .issue_claims(&serde_json::json!({
            "iss": metadata.url, "aud": service, "sub": "1", "email": SERVER,
            "iat": chrono::Utc::now().timestamp(), "exp": chrono::Utc::now().timestamp() + 600,
        }))
        .unwrap();
    refused(
        post(&sweep, &[bearer(forged.expose_secret())], "{}").await,
        "Google ID token",
    );
    // The server's own token without the server's HMAC: the agent's check stays.
    let server_token = metadata.mint(SERVER, &service).unwrap();
    refused(
        post(&explain, &[bearer(&server_token)], body).await,
        "missing or invalid server signature",
    );
    // As Cloud Run passes on a token it checked: signature removed. Enough for the sweep (Cloud
    // Scheduler's call), for nothing else.
    let stripped = |t: &str| {
        let (unsigned, _) = t.rsplit_once('.').unwrap();
        format!("{unsigned}.SIGNATURE_REMOVED_BY_GOOGLE")
    };
    refused(
        post(&explain, &[bearer(&stripped(&server_token))], body).await,
        "enough for the sweep only",
    );
    let scheduler = metadata.mint(SCHEDULER, &service).unwrap();
    let (status, answer) = post(&sweep, &[bearer(&stripped(&scheduler))], "").await;
    assert_eq!(status, 200, "{answer}\n{}", logs());
    // A caller that only the platform vouched for learns counts, never user names.
    assert!(
        answer["removed"].is_u64() && answer["failed"].is_u64(),
        "{answer}"
    );
    // An invoker of its own in X-Serverless-Authorization (which Cloud Run checks) and a
    // forged, "stripped" token of the scheduler in Authorization (which it then passes on
    // unchecked): no sweep.
    let forged_stripped = stripped(forged.expose_secret());
    refused(
        post(
            &sweep,
            &[
                bearer(&forged_stripped),
                (
                    "x-serverless-authorization",
                    format!("Bearer {}", stripped(&intruder)),
                ),
            ],
            "",
        )
        .await,
        "X-Serverless-Authorization",
    );
    let (status, answer) = post(&sweep, &[bearer(&scheduler)], "").await;
    assert_eq!(status, 200, "{answer}");
    refused(
        post(&sweep, &[bearer(&stripped(&intruder))], "").await,
        "not in google_caller.accounts",
    );

    // A request end to end: the server attaches Google ID tokens for the service.
    let alice = User::login(&stack, "alice@example.com", &[]);
    let out = alice.p0(&[
        "psql",
        "-d",
        RESOURCE,
        "-c",
        "SELECT count(*) FROM sales.orders",
        "--reason",
        "cloud run",
        "--duration",
        "10m",
        "-X",
        "-A",
        "-t",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), logs());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    assert!(
        metadata.audiences().iter().all(|a| a == &service) && !metadata.audiences().is_empty(),
        "{:?}",
        metadata.audiences()
    );
    let ls = alice.p0(&["ls", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let id = listed["requests"][0]["id"].as_str().unwrap().to_string();
    let out = alice.p0(&["revoke", &id]);
    assert!(out.status.success(), "{}\n{}", text(&out), logs());
    assert_eq!(stack.managed_roles().unwrap(), Vec::<String>::new());

    // SIGTERM within Cloud Run's 10 s: a clean end.
    assert_eq!(agent.terminate(10), Some(0), "{}", logs());
    // Every line on stdout is Cloud Logging's JSON, and the refused call names its trace (the
    // project from the metadata server).
    let stdout = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 3, "{stdout}");
    for l in &lines {
        assert!(
            ["DEBUG", "INFO", "WARNING", "ERROR"].contains(&l["severity"].as_str().unwrap_or("")),
            "{l}"
        );
        assert!(l["message"].is_string(), "{l}");
    }
    let traced = format!("projects/{GOOGLE_PROJECT}/traces/{trace}");
    assert!(
        lines
            .iter()
            .any(|l| l["logging.googleapis.com/trace"] == traced.as_str()
                && l["severity"] == "WARNING"),
        "{stdout}"
    );
    assert!(!stdout.contains(&server_token) && !stdout.contains(stack.hmac_secret()));
}
