//! `p0 login --issuer` against a real OIDC provider (oidc-provider-mock from PyPI): the
//! authorization code flow with PKCE on a loopback redirect, and the resulting token driving a
//! real request through server, agent and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_cli::stack::{Stack, DEMO_RULES, RESOURCE};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mock_binary() -> Option<String> {
    if let Ok(p) = std::env::var("P0_OIDC_MOCK") {
        return Some(p);
    }
    let venv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.venv/bin/oidc-provider-mock"
    );
    if std::path::Path::new(venv).exists() {
        return Some(venv.into());
    }
    None
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_with_pkce_against_a_real_provider_drives_a_request() {
    let Some(mock) = mock_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide oidc-provider-mock (scripts/test.sh installs it)"
        );
        eprintln!("oidc-provider-mock not installed; skipped (scripts/test.sh installs it)");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _provider = Child(
        Command::new(&mock)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let issuer = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < end, "the provider did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stack = Stack::start_with_issuer(DEMO_RULES, 1, &issuer, "p0-cli")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut login = Command::new(env!("CARGO_BIN_EXE_p0"))
        .args([
            "login",
            "--issuer",
            &issuer,
            "--client-id",
            "p0-cli",
            "--client-secret",
            "mock-secret",
            "--server",
            &stack.server_url,
        ])
        .env("P0_CONFIG_DIR", dir.path())
        .env("P0_NO_BROWSER", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Play the browser: read the URL the CLI prints, submit the provider's form as alice,
    // follow the redirect to the CLI's loopback callback.
    let stderr = login.stderr.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("http"))
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        url.contains("code_challenge=")
            && url.contains("code_challenge_method=S256")
            && url.contains("nonce="),
        "{url}"
    );
    let r = http
        .post(&url)
        .form(&[("sub", "alice@example.com")])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection(),
        "provider answered {}",
        r.status()
    );
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    http.get(&callback).send().await.unwrap();
    let out = tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "login: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice@example.com"));

    // The token from the real provider drives a real request.
    let out = Command::new(env!("CARGO_BIN_EXE_p0"))
        .args([
            "psql",
            "-d",
            RESOURCE,
            "-c",
            "SELECT count(*) FROM sales.orders",
            "--reason",
            "oidc",
            "--duration",
            "3s",
            "-X",
            "-A",
            "-t",
        ])
        .env("P0_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
}
