//! The agent binary's cold start: from `exec` of a release `p0-agent` (reading its config,
//! connecting its admin pool to a real PostgreSQL, binding its port) to its first handled
//! request, next to the floor of starting the same binary to print its version and exit.
//! Prints p50 / p99 and the ratio. Builds the release binary first if needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_testkit::PgServer;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 30;

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

/// One `GET /v1/health` over a fresh connection: whether it answered 200.
fn health(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = b"GET /v1/health HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n";
    let mut status = [0u8; 12];
    s.write_all(req).is_ok() && s.read_exact(&mut status).is_ok() && status.ends_with(b"200")
}

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let built = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "-q",
            "-p",
            "p0-agent",
            "--bin",
            "p0-agent",
        ])
        .status()
        .unwrap();
    assert!(built.success());
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{root}/target"));
    let agent = format!("{target}/release/p0-agent");
    let pg = PgServer::start().unwrap();
    pg.create_hardened_db("app").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");

    let (mut floor, mut cold) = (Vec::new(), Vec::new());
    for _ in 0..N {
        let t = Instant::now();
        let out = Command::new(&agent).arg("--version").output().unwrap();
        assert!(out.status.success());
        floor.push(t.elapsed());

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nresource = \"pg/app\"\nissuer = \"http://127.0.0.1:9/dev\"\naudience = \"p0\"\n\
                 hmac_secret = \"0123456789abcdef0123\"\ndatabase_url = \"{}\"\nsweep_interval_secs = 0\n\
                 [guard]\ndatabases = [\"app\"]\nservice_user = \"postgres\"\n",
                pg.url("app")
            ),
        )
        .unwrap();
        let t = Instant::now();
        let mut child = Command::new(&agent)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        loop {
            if health(port) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the agent did not start"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        cold.push(t.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    let (f50, f99, c50, c99) = (
        pct(floor.clone(), 0.5),
        pct(floor, 0.99),
        pct(cold.clone(), 0.5),
        pct(cold, 0.99),
    );
    println!("\n| agent cold start ({N} runs) | floor: exec + --version | p0-agent: exec → first request answered | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| p50 / p99 | {f50:.2} / {f99:.2} ms | {c50:.2} / {c99:.2} ms | {:.1}x / {:.1}x |",
        c50 / f50,
        c99 / f99
    );
}
