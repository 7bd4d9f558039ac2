//! The web console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver (fantoccini). An approver signs in through a real
//! OIDC provider (oidc-provider-mock: authorization code + PKCE, on the server side), sees the
//! pending request appear without a reload, with its SQL, privileges and rule, approves it,
//! and the requester's waiting CLI gets its credentials. Forms without the session's CSRF
//! token or from another origin are refused. A screenshot of each page is kept under
//! `target/console-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::oidc::{login, mock_or_skip, skipped, start_provider, Child};

const BOB: &str = r#"{"sub": "bob@example.com", "email": "bob@example.com", "groups": ["dba"]}"#;

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/console-screenshots"
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free loopback port, once it answers.
async fn chromedriver() -> Option<(Child, String)> {
    let driver = ["chromedriver", "/usr/bin/chromedriver"]
        .into_iter()
        .find(|d| Command::new(d).arg("--version").output().is_ok());
    let Some(driver) = driver else {
        skipped("chromium and chromium-driver");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Child(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/status")).await.is_ok() {
            return Some((child, url));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

async fn browser(driver: &str, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,900", format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    // One TLS provider for the process (the WebDriver client's rustls has none of its own).
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(driver)
        .await
        .unwrap()
}

async fn shoot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// The text of the first element `css` selects, once there is one. The page may replace its
/// content at any moment (a server-sent event): an element gone stale is looked up again.
async fn text_of(c: &Client, css: &str) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = c.find(Locator::Css(css)).await;
        if let Ok(e) = found {
            if let Ok(text) = e.text().await {
                return text;
            }
        }
        assert!(std::time::Instant::now() < end, "`{css}` never appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `value` of the first element `css` selects, looked up again if it goes stale.
async fn value_of(c: &Client, css: &str) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(Some(v)) = e.attr("value").await {
                return v;
            }
        }
        assert!(std::time::Instant::now() < end, "`{css}` never appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Clicks the first element `css` selects, looked up again if it goes stale.
async fn click(c: &Client, css: &str) {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.click().await.is_ok() {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < end,
            "`{css}` could not be clicked"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approver_approves_in_a_real_browser_and_the_requester_gets_credentials() {
    let Some(mock) = mock_or_skip() else { return };
    let Some((_driver, driver)) = chromedriver().await else {
        return;
    };
    let (_provider, issuer) = start_provider(&mock, &["--user-claims", BOB]).await;
    let mut stack = Stack::start_with_issuer(DEMO_RULES, 3600, &issuer, "p0-cli")
        .await
        .unwrap();
    stack.set_server_extra(&format!(
        "[console]\npublic_url = \"{}\"\nclient_secret = \"mock-secret\"\n",
        stack.server_url
    ));
    stack.stop_server();
    stack.start_server().await.unwrap();
    let server = stack.server_url.clone();

    // Bob signs in: the console sends the browser to the issuer and back.
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    c.goto(&format!("{server}/console")).await.unwrap();
    let at_issuer = c.current_url().await.unwrap();
    assert!(at_issuer.as_str().starts_with(&issuer), "{at_issuer}");
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
    ] {
        assert!(
            at_issuer.as_str().contains(part),
            "{part} not in {at_issuer}"
        );
    }
    let sub = c.find(Locator::Css("input[name=sub]")).await.unwrap();
    sub.send_keys("bob@example.com").await.unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text_of(&c, "nav .who").await, "bob@example.com");
    assert!(text_of(&c, "main").await.contains("Nothing waits"));
    let cookies = c.get_all_cookies().await.unwrap();
    let session = cookies.iter().find(|k| k.name() == "p0_console").unwrap();
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Lax)");

    // Alice asks for a write, which needs a DBA; her CLI waits. Bob's open page shows it
    // without a reload.
    let alice = tempfile::tempdir().unwrap();
    login(&issuer, &server, alice.path()).await;
    let sql = "UPDATE sales.orders SET total = total WHERE id = 1";
    let waiting = Command::new(env!("CARGO_BIN_EXE_p0"))
        .args([
            "psql",
            "-d",
            RESOURCE,
            "-c",
            sql,
            "--reason",
            // A right-to-left override would reorder what follows it on the page: shown escaped.
            "fix the totals\u{202e}",
            "--duration",
            "2m",
            "-X",
            "-q",
        ])
        .env("P0_CONFIG_DIR", alice.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let appeared = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("article.card"))
        .await;
    if appeared.is_err() {
        c.refresh().await.unwrap();
        let source = c.source().await.unwrap();
        panic!("the request did not appear without a reload; after one: {source}");
    }
    let card = text_of(&c, "article.card").await;
    for part in [
        "alice@example.com",
        RESOURCE,
        "fix the totals\\u{202e}",
        sql,
        "UPDATE",
        "anything else needs a DBA",
        "0 of 1",
    ] {
        assert!(card.contains(part), "`{part}` not on the page: {card}");
    }
    shoot(&c, "pending").await;
    c.set_window_size(390, 844).await.unwrap();
    shoot(&c, "pending-phone").await;
    c.set_window_size(1100, 900).await.unwrap();

    // Forms that are not the session's own are refused, and change nothing.
    let id = text_of(&c, "article.card code.id").await;
    let jar = format!("p0_console={}", session.value());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let digest = value_of(&c, "input[name=digest]").await;
    let csrf = value_of(&c, "input[name=csrf]").await;
    let approve = format!("{server}/console/requests/{id}/approve");
    for (form, origin) in [
        (format!("csrf=forged&digest={digest}"), None),
        (format!("digest={digest}"), None),
        (
            format!("csrf={csrf}&digest={digest}"),
            Some("https://evil.example"),
        ),
    ] {
        let mut req = http
            .post(&approve)
            .header("cookie", &jar)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        assert_eq!(req.send().await.unwrap().status(), 403);
    }
    // And without the session, a form is refused (no sign-in started, nothing approved).
    let r = http
        .post(&approve)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(text_of(&c, "article.card").await.contains("0 of 1"));

    // Bob approves what he sees; Alice's CLI gets its credentials and runs the write.
    click(&c, "button.approve").await;
    assert!(text_of(&c, "p.notice").await.contains("Approved"));
    let out = tokio::task::spawn_blocking(move || waiting.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");

    // The live lease, with the time left and a way to end it; the audit log, verified, with
    // the approval made in the console.
    c.goto(&format!("{server}/console/leases")).await.unwrap();
    let lease = text_of(&c, "article.card").await;
    assert!(
        lease.contains("alice@example.com") && lease.contains("Ends in"),
        "{lease}"
    );
    text_of(&c, "button.deny").await;
    shoot(&c, "leases").await;
    c.goto(&format!("{server}/console/mine")).await.unwrap();
    assert!(text_of(&c, "main")
        .await
        .contains("You have asked for nothing"));
    shoot(&c, "mine").await;
    c.goto(&format!("{server}/console/audit")).await.unwrap();
    assert!(text_of(&c, "p.verification.ok")
        .await
        .contains("entries verify"));
    let log = text_of(&c, "table").await;
    assert!(
        log.contains("request.approved") && log.contains("console"),
        "{log}"
    );
    shoot(&c, "audit").await;

    // Bob ends the lease from the console.
    c.goto(&format!("{server}/console/leases")).await.unwrap();
    click(&c, "button.deny").await;
    assert!(text_of(&c, "p.notice").await.contains("Ended the lease"));
    assert_eq!(stack.managed_roles().unwrap(), Vec::<String>::new());
    c.close().await.unwrap();
}
