//! The agent as an AWS Lambda function, end to end: `p0-agent-lambda` runs under
//! `cargo lambda watch` (the Lambda runtime and Invoke APIs, emulated on loopback), reads its
//! admin credentials from Secrets Manager (moto's server, on loopback), and the server reaches
//! it through aws-sdk-lambda with SDK retries off. Provision, revoke and sweep go through
//! Invoke against a real PostgreSQL.
//!
//! Needs `cargo-lambda` and `moto_server` (scripts/test.sh installs both in `.venv`) and the
//! `lambda` feature: `cargo test -p p0-cli --features lambda --test lambda`.
#![cfg(feature = "lambda")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_server::{AgentClient, AgentError};
use p0_stack::{Stack, DATABASE, DEMO_RULES, RESOURCE};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const FUNCTION: &str = "p0-agent-lambda";
const SECRET: &str = "p0/agent/admin";

fn tool(var: &str, name: &str) -> Option<String> {
    if let Ok(p) = std::env::var(var) {
        return Some(p);
    }
    let venv = format!("{}/../.venv/bin/{name}", env!("CARGO_MANIFEST_DIR"));
    std::path::Path::new(&venv).exists().then_some(venv)
}

/// A process group, ended with its children (cargo-lambda runs `cargo run`, which runs the
/// function).
struct Group(std::process::Child);
impl Drop for Group {
    fn drop(&mut self) {
        // `--` matters: procps' kill reads `-KILL -50` as signal options and would signal
        // another group (`-5`), or every process (`-1`).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn spawn_group(cmd: &mut Command) -> Group {
    Group(cmd.process_group(0).spawn().unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn p0(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p0"))
        .args(args)
        .env("P0_CONFIG_DIR", dir)
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

/// Calls moto's Secrets Manager (JSON protocol; moto does not check signatures).
async fn secrets_manager(endpoint: &str, action: &str, body: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(endpoint)
        .header("X-Amz-Target", format!("secretsmanager.{action}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{action}: {}", r.status());
}

#[test]
fn provision_revoke_and_sweep_through_lambda_invoke() {
    let (Some(cargo_lambda), Some(moto)) = (
        tool("P0_CARGO_LAMBDA", "cargo-lambda"),
        tool("P0_MOTO_SERVER", "moto_server"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide cargo-lambda and moto_server (scripts/test.sh installs them)"
        );
        eprintln!("cargo-lambda or moto_server not installed; skipped");
        return;
    };
    // The server's AWS credentials and region, for aws-config's default chain: set before any
    // thread starts. The emulators accept any.
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        std::env::set_var(k, v);
    }
    std::env::remove_var("AWS_PROFILE");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(cargo_lambda, moto));
}

async fn run(cargo_lambda: String, moto: String) {
    // Secrets Manager, with the agent's admin credentials as RDS keeps them.
    let moto_port = free_port();
    let _moto = spawn_group(
        Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let moto_url = format!("http://127.0.0.1:{moto_port}");
    let end = Instant::now() + Duration::from_secs(60);
    while reqwest::get(&moto_url).await.is_err() {
        assert!(Instant::now() < end, "moto did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let invoke_port = free_port();
    let invoke = format!("http://127.0.0.1:{invoke_port}");
    let mut stack = Stack::start_with_lambda_agent(DEMO_RULES, 3600, FUNCTION, &invoke)
        .await
        .unwrap();
    let admin = reqwest::Url::parse(&stack.pg.url(DATABASE)).unwrap();
    secrets_manager(
        &moto_url,
        "CreateSecret",
        serde_json::json!({
            "Name": SECRET,
            "SecretString": serde_json::json!({
                "engine": "postgres",
                "username": admin.username(),
                "password": admin.password().unwrap(),
                "host": admin.host_str().unwrap(),
                "port": admin.port().unwrap(),
                "dbname": DATABASE,
            }).to_string(),
        }),
    )
    .await;

    // The function: configuration from a file in its "package", credentials from Secrets
    // Manager — nothing about the database in the config or the invocations.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let toml = stack.agent_config_toml().unwrap();
    assert!(!toml.contains("database_url") && !toml.contains(admin.password().unwrap()));
    std::fs::write(&config, toml).unwrap();
    let log = dir.path().join("watch.log");
    let env = [
        format!("P0_AGENT_CONFIG={}", config.display()),
        format!("P0_AGENT_DATABASE_SECRET={SECRET}"),
        format!("AWS_ENDPOINT_URL_SECRETS_MANAGER={moto_url}"),
        "AWS_ACCESS_KEY_ID=test".into(),
        "AWS_SECRET_ACCESS_KEY=test".into(),
        "AWS_REGION=us-east-1".into(),
    ];
    let mut watch = Command::new(&cargo_lambda);
    watch
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["lambda", "watch", "--ignore-changes", "--quiet"])
        .args(["--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &invoke_port.to_string()])
        .args(["-p", "p0-agent", "--bin", FUNCTION, "--features", "lambda"])
        .env_remove("P0_AGENT_DATABASE_URL")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("watch.err")).unwrap());
    for e in &env {
        watch.args(["--env-var", e]);
    }
    let _watch = spawn_group(&mut watch);
    let logs = || {
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        let err = std::fs::read_to_string(dir.path().join("watch.err")).unwrap_or_default();
        format!("{out}{err}")
    };

    // The first invocation starts the function (building it if the target dir is cold).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .unwrap();
    let url = format!("{invoke}/2015-03-31/functions/{FUNCTION}/invocations");
    let end = Instant::now() + Duration::from_secs(60);
    let started = Instant::now();
    let health: serde_json::Value = loop {
        match http
            .post(&url)
            .json(&serde_json::json!({"op": "health"}))
            .send()
            .await
        {
            Ok(r) => break r.json().await.unwrap(),
            Err(e) => {
                assert!(Instant::now() < end, "no Invoke API: {e}\n{}", logs());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(health["status"], 200, "{health}\n{}", logs());
    eprintln!(
        "lambda: first invocation answered in {} ms (process start, Secrets Manager, pool)",
        started.elapsed().as_millis()
    );

    // Provision through Invoke: a real query with the ephemeral user.
    let user = tempfile::tempdir().unwrap();
    let out = p0(
        user.path(),
        &[
            "login",
            "--dev",
            "alice@example.com",
            "--server",
            &stack.server_url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let query = |duration: &str| {
        p0(
            user.path(),
            &[
                "psql",
                "-d",
                RESOURCE,
                "-c",
                "SELECT count(*) FROM sales.orders",
                "--reason",
                "lambda",
                "--duration",
                duration,
                "-X",
                "-A",
                "-t",
            ],
        )
    };
    let out = query("10m");
    assert!(out.status.success(), "{}\n{}", text(&out), logs());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    assert_eq!(stack.managed_users().unwrap().len(), 1);

    // Revoke through Invoke.
    let ls = p0(user.path(), &["ls", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let id = listed["requests"][0]["id"].as_str().unwrap().to_string();
    let out = p0(user.path(), &["revoke", &id]);
    assert!(out.status.success(), "{}\n{}", text(&out), logs());
    assert_eq!(stack.managed_roles().unwrap(), Vec::<String>::new());

    // Sweep through Invoke: a lease left to expire with no server to revoke it (stopped here;
    // its reaper would wake at the expiry) is removed by the agent's own sweep, as an
    // EventBridge schedule would call it.
    let out = query("2s");
    assert!(out.status.success(), "{}\n{}", text(&out), logs());
    let users = stack.managed_users().unwrap();
    assert_eq!(users.len(), 1);
    stack.stop_server();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rid = p0_core::ResourceId::new(RESOURCE).unwrap();
    let agent = AgentClient::lambda(&rid, FUNCTION.into(), Some(invoke.clone()), 1).unwrap();
    let swept: serde_json::Value = agent
        .call("/v1/sweep", &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(swept["removed"], serde_json::json!(users), "{swept}");
    assert_eq!(stack.managed_roles().unwrap(), Vec::<String>::new());

    // The agent's refusals come back as refusals, not as function failures.
    match agent
        .call::<_, serde_json::Value>("/v1/provision", &serde_json::json!({"plan": 1}))
        .await
    {
        Err(AgentError::Refused(code, message)) => {
            assert_eq!(code, "bad_request", "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A function that does not exist: unavailable (and, with no SDK retries, tried once).
    let missing = AgentClient::lambda(&rid, "no-such-agent".into(), Some(invoke), 1).unwrap();
    let r = missing
        .call::<_, serde_json::Value>("/v1/sweep", &serde_json::json!({}))
        .await;
    assert!(matches!(r, Err(AgentError::Unavailable(_))), "{r:?}");
    assert_eq!(stack.managed_roles().unwrap(), Vec::<String>::new());
}
