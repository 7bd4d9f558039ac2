//! The real `p0-server` binary at SIGTERM (what Kubernetes, Cloud Run and systemd send before
//! SIGKILL): a long poll under way is answered at once with the request as it stands, and the
//! process exits cleanly within the grace period, instead of dropping the connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::api::{CreateRequest, RequestStatus, RequestView};
use p0_core::seal::key_fingerprint;
use p0_core::{proof, Intent, KeyPair, RequestId, ResourceId, RoleName, SignedRequest};
use std::time::{Duration, Instant};

const RULES: &str = r#"
[[rule]]
name = "roles need a DBA"
action = "approval"
approvers = ["group:dba"]
max_duration = "1h"
"#;

fn proven(
    rb: reqwest::RequestBuilder,
    kp: &KeyPair,
    method: &str,
    path: &str,
    body: &[u8],
    token: &str,
) -> reqwest::RequestBuilder {
    let now = chrono::Utc::now().timestamp();
    rb.bearer_auth(token)
        .header(
            proof::KEY_HEADER,
            proof::key_header(kp.public_pem.as_bytes()).unwrap(),
        )
        .header(
            proof::PROOF_HEADER,
            proof::sign(&kp.private_pem, method, path, body, token, now).unwrap(),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_long_polls_and_exits_cleanly() {
    let dir = p0_testkit::private_tempdir("p0-shutdown.").unwrap();
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let config = dir.path().join("server.toml");
    let agent = p0_testkit::explain_only_agent().unwrap();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"{}\"\nissuer = \"{base}/dev\"\naudience = \"p0\"\n\
             rules = \"{}\"\nreaper_interval_secs = 5\n\
             [[resource]]\nname = \"pg/app\"\nengine = \"postgres\"\nhost = \"127.0.0.1\"\nport = 5432\n\
             database = \"app\"\nagent_url = \"{agent}\"\nagent_secret = \"{}\"\n",
            dir.path().join("p0.sqlite").display(),
            rules.display(),
            "s".repeat(32),
        ),
    )
    .unwrap();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_p0-server"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--dangerous-dev-issuer",
        ])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let up = Instant::now();
    while http.get(format!("{base}/v1/health")).send().await.is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A request that waits for approval, and its requester's long poll.
    let kp = KeyPair::generate().unwrap();
    let nonce = key_fingerprint(kp.public_pem.as_bytes()).unwrap();
    let tok: serde_json::Value = http
        .post(format!("{base}/dev/token"))
        .json(&serde_json::json!({"user": "alice@example.com", "nonce": nonce}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["id_token"].as_str().unwrap().to_string();
    let signed = SignedRequest {
        request_id: RequestId::generate(),
        resource: ResourceId::new("pg/app").unwrap(),
        intent: Intent::Role(RoleName::new("reporting".to_string()).unwrap()),
        reason: "shutdown test".into(),
        duration_secs: 600,
        issued_at: chrono::Utc::now().timestamp(),
    };
    let signature = signed.sign(&kp.private_pem).unwrap();
    let body = serde_json::to_vec(&CreateRequest {
        signed,
        signature,
        public_key: kp.public_pem.clone(),
    })
    .unwrap();
    let created: RequestView = proven(
        http.post(format!("{base}/v1/requests")),
        &kp,
        "POST",
        "/v1/requests",
        &body,
        &token,
    )
    .header("content-type", "application/json")
    .body(body.clone())
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(created.status, RequestStatus::PendingApproval);
    let path = format!("/v1/requests/{}?wait=60", created.id);
    let poll = proven(
        http.get(format!("{base}{path}")),
        &kp,
        "GET",
        &path,
        b"",
        &token,
    )
    .send();
    let poll = tokio::spawn(poll);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    let pid = server.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let answer = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the long poll is answered soon after SIGTERM")
        .unwrap()
        .expect("the long poll gets an answer, not a dropped connection");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let view: RequestView = answer.json().await.unwrap();
    assert_eq!(view.status, RequestStatus::PendingApproval);
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("the server exits within the grace period")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(sent.elapsed() < Duration::from_secs(10));
}
