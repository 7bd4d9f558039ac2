//! The real `p0-agent` binary at SIGTERM (what Kubernetes, Cloud Run and systemd send before
//! SIGKILL): it stops taking connections and exits cleanly within the grace period.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_agent_cleanly() {
    let pg = p0_testkit::PgServer::start().unwrap();
    pg.psql("postgres", "CREATE DATABASE app").unwrap();
    let dir = p0_testkit::private_tempdir("p0-agent-shutdown.").unwrap();
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("agent.toml");
    p0_testkit::write_secret_file(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nresource = \"pg/app\"\ndatabase_url = \"{}\"\n\
             hmac_secret = \"{}\"\nissuer = \"http://127.0.0.1:9/dev\"\naudience = \"p0\"\n\
             sweep_interval_secs = 0\n[guard]\ndatabases = [\"app\"]\nservice_user = \"postgres\"\n",
            pg.url("app"),
            "s".repeat(32)
        )
        .as_bytes(),
    )
    .unwrap();
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_p0-agent"))
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let health = format!("http://127.0.0.1:{port}/v1/health");
    let up = Instant::now();
    while reqwest::get(&health).await.is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "the agent did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its gauges, unauthenticated and without names, for Prometheus.
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("p0_agent_up 1"), "{text}");
    assert!(text.contains("p0_agent_sweep_failing 0"), "{text}");
    let pid = agent.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(10), agent.wait())
        .await
        .expect("the agent exits within the grace period")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        reqwest::get(&health).await.is_err(),
        "no longer taking connections"
    );
}
