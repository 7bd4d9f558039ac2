//! `p0 login --issuer` against a real OIDC provider (oidc-provider-mock from PyPI): the
//! authorization code flow with PKCE on a loopback redirect, and the resulting token driving a
//! real request through server, agent and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::oidc::{login, mock_or_skip, skipped, start_issuer, start_provider};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_with_pkce_against_a_real_provider_drives_a_request() {
    let Some(mock) = mock_or_skip() else { return };
    let (_provider, issuer) = start_provider(&mock, &[]).await;
    let stack = Stack::start_with_issuer(DEMO_RULES, 1, &issuer, "p0-cli")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    login(&issuer, &stack.server_url, dir.path()).await;

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

/// An ID token about to expire is refreshed before the next command, with the client
/// authenticated the way the issuer expects (HTTP Basic here). oidc-provider-mock's refresh
/// grant issues no new ID token, so the CLI must say the user has to log in again rather than
/// send a dying token; a refresh token the issuer no longer knows is refused with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_about_to_expire_is_refreshed_or_the_user_is_told_to_log_in() {
    let Some(mock) = mock_or_skip() else { return };
    // ID tokens valid for 30 s: inside the CLI's one-minute refresh window from the start.
    let (_provider, issuer) = start_provider(&mock, &["--token-max-age", "30"]).await;
    let stack = Stack::start_with_issuer(DEMO_RULES, 1, &issuer, "p0-cli")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    login(&issuer, &stack.server_url, dir.path()).await;
    let state_file = dir.path().join("oidc.json");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["client_auth"], "client_secret_basic");
    let first_refresh = state["refresh_token"].as_str().unwrap().to_string();
    let token_before = std::fs::read(dir.path().join("token")).unwrap();

    let ls = || {
        Command::new(env!("CARGO_BIN_EXE_p0"))
            .args(["ls"])
            .env("P0_CONFIG_DIR", dir.path())
            .output()
            .unwrap()
    };
    let out = ls();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("refresh returned no new ID token") && err.contains("p0 login"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("token")).unwrap(),
        token_before,
        "a failed refresh leaves the token as it was"
    );

    // A refresh token the issuer does not know: refused, with the issuer's reason.
    let mut state = state;
    state["refresh_token"] = "not-a-refresh-token".into();
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    let out = ls();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("refused to renew") && err.contains("invalid_grant"),
        "{err}"
    );
    assert!(
        !err.contains(&first_refresh) && !err.contains("not-a-refresh-token"),
        "{err}"
    );
}

/// A login the server cannot accept says why, in terms the user and the operator can act on:
/// a token from another issuer names both issuers, a token for another client names both
/// audiences, and nothing is granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_from_another_issuer_or_for_another_audience_is_refused_by_name() {
    let Some(mock) = mock_or_skip() else { return };
    let (_trusted, issuer) = start_provider(&mock, &[]).await;
    let (_other, other) = start_provider(&mock, &[]).await;
    // The server expects tokens for the client `p0-web`; the CLI logs in as `p0-cli`.
    let stack = Stack::start_with_issuer(DEMO_RULES, 1, &issuer, "p0-web")
        .await
        .unwrap();
    let ls = |dir: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_p0"))
            .args(["ls"])
            .env("P0_CONFIG_DIR", dir)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };

    let dir = tempfile::tempdir().unwrap();
    login(&other, &stack.server_url, dir.path()).await;
    let err = ls(dir.path());
    assert!(
        err.contains(&format!("issued by `{other}`"))
            && err.contains(&format!("trusts `{issuer}`")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let dir = tempfile::tempdir().unwrap();
    login(&issuer, &stack.server_url, dir.path()).await;
    let err = ls(dir.path());
    assert!(
        err.contains("audience `p0-cli`") && err.contains("expects `p0-web`"),
        "{err}"
    );
    assert!(stack.managed_roles().unwrap().is_empty());
}

/// Every stderr line of `child`, as it comes.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// `node` and the `oidc-provider` module scripts/test.sh installs in `.node`.
fn node_provider() -> Option<String> {
    let module = std::env::var("P0_OIDC_PROVIDER_MODULE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../.node/node_modules/oidc-provider/lib/index.js"
        )
        .into()
    });
    let have_node = Command::new("node").arg("--version").output().is_ok();
    if have_node && std::path::Path::new(&module).exists() {
        return Some(module);
    }
    skipped("node with oidc-provider");
    None
}

/// The device authorization grant against a real provider that offers it (node
/// `oidc-provider`, OpenID Certified; oidc-provider-mock does not offer it): the CLI shows the
/// verification URL and code, the "other device" confirms and signs in, the CLI's polling gets
/// the tokens — and, because this provider (like RFC 8628) puts no nonce in device-grant ID
/// tokens, the CLI refuses a token that cannot commit to its key: one clear line, nothing
/// saved, and no request can be made with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_grant_against_a_real_provider_fails_closed_without_a_nonce() {
    let Some(module) = node_provider() else {
        return;
    };
    let support = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support");
    let (_provider, issuer) = start_issuer(|port| {
        let mut c = Command::new("node");
        c.arg(format!("{support}/device_provider.mjs"))
            .arg(port.to_string())
            .env("P0_OIDC_PROVIDER_MODULE", &module);
        c
    })
    .await;
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
            "--device",
        ])
        .args(["--server", &stack.server_url])
        .env("P0_CONFIG_DIR", dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut login);
    let line = rx
        .iter()
        .find(|l| l.starts_with("p0: open "))
        .expect("no verification URL");
    // "p0: open URL and enter the code CODE"
    let url = line["p0: open ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with(&issuer) && url.contains("user_code="),
        "{line}"
    );
    let browser = Command::new("python3")
        .arg(format!("{support}/browser.py"))
        .args([&url, "alice@example.com"])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&browser.stdout);
    assert!(
        browser.status.success() && page.contains("Success"),
        "{page}{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let status = tokio::task::spawn_blocking(move || login.wait())
        .await
        .unwrap()
        .unwrap();
    let rest: Vec<String> = rx.iter().collect();
    let err = rest.join("\n");
    assert!(
        !status.success(),
        "a token without the key binding was accepted"
    );
    assert!(
        err.contains("without the nonce") && err.contains("without --device"),
        "{err}"
    );
    assert!(
        !dir.path().join("token").exists(),
        "a failed login saved a token"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_p0"))
        .args(["psql", "-d", RESOURCE, "-c", "SELECT 1 FROM sales.orders"])
        .args(["--reason", "device", "-X", "-A", "-t"])
        .env("P0_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not logged in"),
        "{err}"
    );
    assert!(stack.managed_roles().unwrap().is_empty());
}

/// What a hostile (or broken) issuer puts in the ID token it answers with.
#[derive(Clone, Copy, Debug)]
enum Forgery {
    /// Signed with a key the issuer does not publish.
    ForeignKey,
    /// Addressed to another client.
    OtherAudience,
    /// Already expired.
    Expired,
}

/// An issuer on loopback that plays the authorization code flow and answers the code with an
/// ID token broken as `forgery` says (committing to the right nonce all the same); its URL.
async fn forging_issuer(forgery: Forgery) -> String {
    use axum::extract::{Query, State};
    use p0_core::DangerousDevIssuer;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let published = Arc::new(DangerousDevIssuer::new(url.clone()).unwrap());
    let signer = match forgery {
        Forgery::ForeignKey => Arc::new(DangerousDevIssuer::new(url.clone()).unwrap()),
        _ => published.clone(),
    };
    let nonce = Arc::new(Mutex::new(String::new()));
    let mut discovery = published.discovery();
    discovery["authorization_endpoint"] = format!("{url}/authorize").into();
    discovery["token_endpoint"] = format!("{url}/token").into();
    discovery["response_types_supported"] = serde_json::json!(["code"]);
    discovery["subject_types_supported"] = serde_json::json!(["public"]);
    let jwks = published.jwks().clone();
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || async move { axum::Json(jwks) }),
        )
        .route(
            "/authorize",
            axum::routing::get(
                |State(nonce): State<Arc<Mutex<String>>>,
                 Query(q): Query<HashMap<String, String>>| async move {
                    *nonce.lock().unwrap() = q["nonce"].clone();
                    let back = format!("{}?code=c0de&state={}", q["redirect_uri"], q["state"]);
                    axum::response::Redirect::to(&back)
                },
            ),
        )
        .route(
            "/token",
            axum::routing::post(move |State(nonce): State<Arc<Mutex<String>>>| async move {
                let now = chrono::Utc::now().timestamp();
                let (aud, exp) = match forgery {
                    Forgery::OtherAudience => ("someone-else", now + 3600),
                    Forgery::Expired => ("p0-cli", now - 3600),
                    Forgery::ForeignKey => ("p0-cli", now + 3600),
                };
                let claims = serde_json::json!({
                    "iss": signer.issuer(), "sub": "mallory@example.com", "aud": aud,
                    "email": "mallory@example.com", "nonce": *nonce.lock().unwrap(),
                    "iat": now - 7200, "exp": exp,
                });
                let id_token = signer.issue_claims(&claims).unwrap();
                axum::Json(serde_json::json!({
                    "access_token": "at", "token_type": "Bearer",
                    "id_token": id_token.expose_secret(),
                }))
            }),
        )
        .with_state(nonce);
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The CLI checks the ID token itself, as the server will: a token signed with a key the
/// issuer does not publish, addressed to another client, or expired is refused at login with
/// one line saying so, and nothing is saved (no token, no key) to be sent anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_or_misaddressed_id_token_is_refused_at_login() {
    for (forgery, cause) in [
        (Forgery::ForeignKey, "Signature verification failed"),
        (Forgery::OtherAudience, "audience"),
        (Forgery::Expired, "Expired"),
    ] {
        let issuer = forging_issuer(forgery).await;
        let dir = tempfile::tempdir().unwrap();
        let mut login = Command::new(env!("CARGO_BIN_EXE_p0"))
            .args(["login", "--issuer", &issuer, "--client-id", "p0-cli"])
            .args(["--server", "http://127.0.0.1:9"])
            .env("P0_CONFIG_DIR", dir.path())
            .env("P0_NO_BROWSER", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let rx = stderr_lines(&mut login);
        let url = rx.iter().find(|l| l.starts_with("http")).unwrap();
        // The browser: the issuer sends it back to the CLI's loopback callback.
        reqwest::get(&url).await.unwrap();
        let status = tokio::task::spawn_blocking(move || login.wait())
            .await
            .unwrap()
            .unwrap();
        let err = rx.iter().collect::<Vec<_>>().join("\n");
        assert!(!status.success(), "{forgery:?}: the login was accepted");
        assert!(
            err.contains("ID token does not verify") && err.contains(cause),
            "{forgery:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            !dir.path().join("token").exists(),
            "{forgery:?}: a refused login saved a token"
        );
    }
}
