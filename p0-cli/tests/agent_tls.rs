//! The server↔agent link over TLS: the agent serves HTTPS with a certificate made here (rcgen),
//! the server verifies it against the CA it is configured with, and nothing else. A server
//! that trusts another CA gets nothing from the agent: no explanation, no grant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::Engine;
use p0_stack::{AgentTls, Stack, DEMO_RULES};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A CA: its certificate (PEM, written to `dir/name`) and what it needs to sign.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    path: PathBuf,
}

fn ca(dir: &Path, name: &str) -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("p0 test {name}"));
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, cert.pem()).unwrap();
    Ca { cert, key, path }
}

/// The agent's certificate for 127.0.0.1 and localhost, signed by `ca`; (cert, key) files,
/// the key 0600.
fn agent_cert(dir: &Path, ca: &Ca) -> (PathBuf, PathBuf) {
    cert_for(dir, ca, &["127.0.0.1", "localhost"])
}

fn cert_for(dir: &Path, ca: &Ca, names: &[&str]) -> (PathBuf, PathBuf) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let dir = dir.join(names.join(","));
    std::fs::create_dir_all(&dir).unwrap();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "p0 agent");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let (cert_path, key_path) = (dir.join("agent.pem"), dir.join("agent-key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    p0_testkit::write_secret_file(&key_path, key.serialize_pem().as_bytes()).unwrap();
    (cert_path, key_path)
}

fn p0(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p0"))
        .args(args)
        .env("P0_CONFIG_DIR", config)
        .env("TMPDIR", config)
        .env_remove("P0_SERVER")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_over_tls_serves_a_server_with_its_ca_and_nothing_to_one_without() {
    let certs = tempfile::tempdir().unwrap();
    let good = ca(certs.path(), "ca.pem");
    let other = ca(certs.path(), "other-ca.pem");
    let (cert, key) = agent_cert(certs.path(), &good);
    let tls = AgentTls {
        cert,
        key,
        ca: good.path.clone(),
    };
    let mut stack = Stack::start_with_agent_tls(Engine::Postgres, DEMO_RULES, 1, tls)
        .await
        .unwrap();
    assert!(
        stack.agent_url.starts_with("https://127.0.0.1:"),
        "{}",
        stack.agent_url
    );

    // The agent speaks TLS only: a plain HTTP request to its port gets no answer from it.
    let plain = stack.agent_url.replacen("https://", "http://", 1);
    let answer = reqwest::Client::new()
        .post(format!("{plain}/v1/explain"))
        .body("{}")
        .send()
        .await;
    assert!(
        answer.is_err() || !answer.as_ref().unwrap().status().is_success(),
        "{answer:?}"
    );

    // End to end over TLS: the server has the agent explain the query against the live
    // catalog, then provision; the CLI runs the query as the ephemeral user.
    let alice = tempfile::tempdir().unwrap();
    let out = p0(
        alice.path(),
        &[
            "login",
            "--dev",
            "alice@example.com",
            "--server",
            &stack.server_url,
        ],
    );
    assert!(out.status.success(), "login: {}", text(&out));
    let query = [
        "psql",
        "-d",
        "pg/demo",
        "-c",
        "SELECT count(*) FROM sales.orders",
        "--reason",
        "over tls",
        "--duration",
        "1h",
    ];
    let out = p0(alice.path(), &query);
    assert!(
        out.status.success(),
        "psql over a TLS agent: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('4'),
        "{}",
        text(&out)
    );
    let users = stack.managed_users().unwrap();
    assert_eq!(users.len(), 1, "{users:?}");

    // The same agent, a server that trusts another CA: refused at the TLS handshake, with
    // the reason, and nothing provisioned.
    stack.stop_server();
    stack.set_agent_ca(other.path.clone()).unwrap();
    stack.start_server().await.unwrap();
    let out = p0(alice.path(), &query);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("(unavailable)"), "{said}");
    assert!(
        said.contains("certificate") && said.contains("UnknownIssuer"),
        "{said}"
    );
    assert_eq!(stack.managed_users().unwrap(), users);
    assert!(!said.contains("(1 row)"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_the_agents_ca_trusts_only_the_public_roots() {
    // No agent_ca: the agent's private CA is not among the public roots, so the handshake
    // fails the same way (verification is never switched off).
    let certs = tempfile::tempdir().unwrap();
    let good = ca(certs.path(), "ca.pem");
    let (cert, key) = agent_cert(certs.path(), &good);
    let tls = AgentTls {
        cert,
        key,
        ca: good.path.clone(),
    };
    let stack = Stack::start_with_agent_tls(Engine::Postgres, DEMO_RULES, 1, tls)
        .await
        .unwrap();
    let client = p0_server::AgentClient::new(&stack.agent_url, stack.hmac_secret(), None).unwrap();
    let body = serde_json::json!({});
    let err = client
        .call::<_, serde_json::Value>("/v1/explain", &body)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // With the CA, the same call reaches the agent (which refuses the empty body itself).
    let client =
        p0_server::AgentClient::new(&stack.agent_url, stack.hmac_secret(), Some(&good.path))
            .unwrap();
    let err = client
        .call::<_, serde_json::Value>("/v1/explain", &body)
        .await
        .unwrap_err();
    assert!(matches!(err, p0_server::AgentError::Refused(..)), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_for_another_host_is_refused_even_from_the_right_ca() {
    let certs = tempfile::tempdir().unwrap();
    let good = ca(certs.path(), "ca.pem");
    let (cert, key) = cert_for(certs.path(), &good, &["agent.example"]);
    // The agent's TLS listener in front of a stand-in router.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let tls =
        p0_agent::TlsListener::new(tcp, p0_agent::tls_server_config(&cert, &key).unwrap()).unwrap();
    let app = axum::Router::new().fallback(|| async { "reached" });
    tokio::spawn(async move { axum::serve(tls, app).await });
    let client =
        p0_server::AgentClient::new(&format!("https://{addr}"), "secret", Some(&good.path))
            .unwrap();
    let err = client
        .call::<_, serde_json::Value>("/v1/explain", &serde_json::json!({}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate not valid for name"), "{err}");
}
