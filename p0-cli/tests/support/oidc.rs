//! A real OIDC provider for the login tests (oidc-provider-mock from PyPI, or any provider a
//! command starts), and `p0 login --issuer` played through it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn mock_binary() -> Option<String> {
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

pub struct Child(pub std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// oidc-provider-mock on a free loopback port, once it answers discovery.
pub async fn start_provider(mock: &str, args: &[&str]) -> (Child, String) {
    start_issuer(|port| {
        let mut c = Command::new(mock);
        c.args(["--port", &port.to_string()]).args(args);
        c
    })
    .await
}

/// The provider `command(port)` starts, once it answers discovery on that loopback port.
pub async fn start_issuer(command: impl FnOnce(u16) -> Command) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Child(
        command(port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let issuer = format!("http://127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .is_err()
    {
        assert!(Instant::now() < end, "the provider did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (child, issuer)
}

/// `p0 login --issuer` into `dir`, playing the browser: read the URL the CLI prints, submit
/// the provider's form as alice, follow the redirect to the CLI's loopback callback.
pub async fn login(issuer: &str, server: &str, dir: &std::path::Path) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut login = Command::new(env!("CARGO_BIN_EXE_p0"))
        .args([
            "login",
            "--issuer",
            issuer,
            "--client-id",
            "p0-cli",
            "--client-secret",
            "mock-secret",
            "--server",
            server,
        ])
        .env("P0_CONFIG_DIR", dir)
        .env("P0_NO_BROWSER", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
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
    // Someone else on this machine calls the CLI's callback first, without this login's
    // state: refused, and the login goes on.
    let base = callback.split('?').next().unwrap();
    let forged = http
        .get(format!("{base}?code=stolen&state=not-this-login"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), reqwest::StatusCode::BAD_REQUEST);
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
}

/// A provider the test needs is missing: fine on a developer's machine, a failure in CI.
pub fn skipped(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide {what} (scripts/test.sh installs it)"
    );
    eprintln!("{what} not installed; skipped (scripts/test.sh installs it)");
}

pub fn mock_or_skip() -> Option<String> {
    let mock = mock_binary();
    if mock.is_none() {
        skipped("oidc-provider-mock");
    }
    mock
}
