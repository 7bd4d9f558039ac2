//! Chaos run: complete lifecycles (request → credentials → revoked early or expired) against two
//! `p0-server` replicas on one PostgreSQL store and a `p0-agent`, each a process of its own,
//! while one of the three is killed with SIGKILL at random moments and restarted. Afterwards
//! it counts what a crash may leave behind: database users without a live lease, leases marked
//! live whose user is gone, requests not in a final state, and whether the audit chain
//! verifies. Exits non-zero if any count is not zero.
//!
//! `P0_CHAOS_LIFECYCLES` (100; 1,000 for the full run), `P0_CHAOS_CONCURRENCY` (8). Run with
//! `cargo test --release -p p0-benches --bench chaos` after `cargo build --release -p p0-server
//! -p p0-agent` (or without `--release` after a debug build: it runs the binaries next to its
//! own). Process logs go to `$TMPDIR/p0-chaos/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::api::{RequestStatus, RequestView};
use p0_core::KeyPair;
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use rand::Rng;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

mod support;
use support::{dev_token, proven};

/// One process of the deployment, restartable.
struct Proc {
    name: &'static str,
    bin: PathBuf,
    config: PathBuf,
    health: String,
    child: Option<tokio::process::Child>,
    kills: usize,
}

impl Proc {
    async fn start(&mut self, http: &reqwest::Client) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir().join(format!("{}.log", self.name)))
            .unwrap();
        let child = tokio::process::Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.bin.display()));
        self.child = Some(child);
        let up = Instant::now() + Duration::from_secs(60);
        while Instant::now() < up {
            if let Ok(r) = http.get(&self.health).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} did not come up; see its log", self.name);
    }

    /// SIGKILL, then reap.
    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.unwrap();
            self.kills += 1;
        }
    }
}

fn log_dir() -> PathBuf {
    std::env::temp_dir().join("p0-chaos")
}

/// `p0-server` and `p0-agent` next to this binary's directory (`target/<profile>/`).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p p0-server -p p0-agent, with --release for a release run)",
        bin.display()
    );
    bin
}

async fn free_addr() -> SocketAddr {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A requester: a key, a token committed to it, the replicas' URLs.
struct Client {
    http: reqwest::Client,
    kp: KeyPair,
    token: String,
    replicas: Vec<String>,
}

/// What one call came to: the server's answer, or `None` when it could not be reached
/// (killed mid-call, or down).
type Answer = Option<(reqwest::StatusCode, String)>;

impl Client {
    async fn call(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        let base = &self.replicas[rand::thread_rng().gen_range(0..self.replicas.len())];
        let b = match method {
            "POST" => self.http.post(format!("{base}{path}")),
            _ => self.http.get(format!("{base}{path}")),
        };
        let r = b
            .bearer_auth(&self.token)
            .headers(proven(&self.kp, method, path, body, &self.token))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .timeout(Duration::from_secs(90))
            .send()
            .await
            .ok()?;
        let status = r.status();
        Some((status, r.text().await.ok()?))
    }

    /// One lifecycle: asks for a lease of 2–6 s, waits for it, revokes a third of them early
    /// and follows each to a final state. Returns the request's id and its final status (or
    /// the last one seen if the deadline passed).
    async fn lifecycle(&self, deadline: Instant) -> (String, Option<RequestStatus>) {
        let secs = rand::thread_rng().gen_range(2..=6);
        let signed = p0_core::SignedRequest {
            request_id: p0_core::RequestId::generate(),
            resource: p0_core::ResourceId::new(RESOURCE).unwrap(),
            intent: p0_core::Intent::Query("SELECT count(*) FROM sales.orders".into()),
            reason: "chaos".into(),
            duration_secs: secs,
            issued_at: chrono::Utc::now().timestamp(),
        };
        let id = signed.request_id.to_string();
        let signature = signed.sign(&self.kp.private_pem).unwrap();
        let body = serde_json::to_vec(&p0_core::api::CreateRequest {
            signed,
            signature,
            public_key: self.kp.public_pem.clone(),
        })
        .unwrap();
        // Created once: a retry after a lost answer finds the id taken (409) and polls.
        let mut last = None;
        loop {
            if Instant::now() > deadline {
                return (id, last);
            }
            match self.call("POST", "/v1/requests", &body).await {
                Some((s, text)) if s.is_success() => {
                    last = serde_json::from_str::<RequestView>(&text)
                        .ok()
                        .map(|v| v.status);
                    break;
                }
                Some((s, _)) if s == reqwest::StatusCode::CONFLICT => break,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let early = rand::thread_rng().gen_ratio(1, 3);
        let path = format!("/v1/requests/{id}");
        loop {
            if Instant::now() > deadline {
                return (id, last);
            }
            let view = match self.call("GET", &format!("{path}?wait=5"), b"").await {
                Some((s, text)) if s.is_success() => {
                    serde_json::from_str::<RequestView>(&text).ok()
                }
                _ => None,
            };
            let Some(view) = view else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            last = Some(view.status);
            match view.status {
                RequestStatus::Active if early => {
                    let _ = self.call("POST", &format!("{path}/revoke"), b"").await;
                }
                RequestStatus::Active => tokio::time::sleep(Duration::from_millis(500)).await,
                RequestStatus::PendingApproval | RequestStatus::Provisioning => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                _ => return (id, last),
            }
        }
    }
}

/// The p0 login users in the database, and the p0 roles that are not login users.
fn database_accounts(stack: &Stack) -> (HashSet<String>, HashSet<String>) {
    let users: HashSet<String> = stack.managed_users().unwrap().into_iter().collect();
    let roles = stack
        .managed_roles()
        .unwrap()
        .into_iter()
        .filter(|r| !users.contains(r))
        .collect();
    (users, roles)
}

/// The usernames of the leases the store has as live.
async fn live_leases(store: &sqlx::PgPool) -> HashSet<String> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM requests WHERE status = 'active'")
            .fetch_all(store)
            .await
            .unwrap();
    bodies
        .iter()
        .filter_map(|b| {
            let v: serde_json::Value = serde_json::from_str(b).ok()?;
            Some(v["grant"]["username"].as_str()?.to_string())
        })
        .collect()
}

fn main() {
    let n = env_usize("P0_CHAOS_LIFECYCLES", 100);
    let c = env_usize("P0_CHAOS_CONCURRENCY", 8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let failed = rt.block_on(run(n, c));
    if failed {
        std::process::exit(1);
    }
}

async fn run(n: usize, c: usize) -> bool {
    let started = Instant::now();
    std::fs::create_dir_all(log_dir()).unwrap();
    let (server_bin, agent_bin) = (binary("p0-server"), binary("p0-agent"));
    // The stack in this process is the identity provider only (never killed); its own agent
    // is stopped so that only the agent process under test touches the database.
    let mut stack = Stack::start(DEMO_RULES, 1).await.unwrap();
    stack.stop_agent();
    stack.pg.psql("postgres", "CREATE DATABASE chaos").unwrap();
    let store_url = stack.pg.url("chaos");
    let http = reqwest::Client::new();
    let agent_addr = free_addr().await;
    let agent_url = format!("http://{agent_addr}");
    let mut procs = vec![Proc {
        name: "agent",
        bin: agent_bin,
        config: stack.agent_process_config("agent", agent_addr, 2).unwrap(),
        health: format!("{agent_url}/v1/health"),
        child: None,
        kills: 0,
    }];
    let mut replicas = Vec::new();
    for name in ["replica-a", "replica-b"] {
        let addr = free_addr().await;
        replicas.push(format!("http://{addr}"));
        procs.push(Proc {
            name,
            bin: server_bin.clone(),
            config: stack
                .server_process_config(name, addr, &store_url, &agent_url)
                .unwrap(),
            health: format!("http://{addr}/v1/health"),
            child: None,
            kills: 0,
        });
    }
    for p in &mut procs {
        p.start(&http).await;
    }
    let store = sqlx::PgPool::connect(&store_url).await.unwrap();
    let procs = Arc::new(Mutex::new(procs));

    // The monkey: every 0.3–1.5 s, SIGKILL one of the three and restart it 0–1 s later.
    let calm = Arc::new(AtomicBool::new(false));
    let monkey = {
        let (procs, calm, http) = (procs.clone(), calm.clone(), http.clone());
        tokio::spawn(async move {
            while !calm.load(Ordering::Relaxed) {
                let (pause, victim, down) = {
                    let mut r = rand::thread_rng();
                    (
                        r.gen_range(300..1500),
                        r.gen_range(0..3),
                        r.gen_range(0..1000),
                    )
                };
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let mut procs = procs.lock().await;
                let p: &mut Proc = &mut procs[victim];
                p.kill().await;
                tokio::time::sleep(Duration::from_millis(down)).await;
                p.start(&http).await;
            }
        })
    };

    // The requesters.
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(120 + n as u64 * 3);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..c {
        let kp = KeyPair::generate().unwrap();
        let user = format!("chaos{w}@example.com");
        let token = dev_token(&http, &stack.server_url, &user, &kp).await;
        let client = Client {
            http: http.clone(),
            kp,
            token,
            replicas: replicas.clone(),
        };
        let next = next.clone();
        workers.spawn(async move {
            let mut outcomes = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                outcomes.push(client.lifecycle(deadline).await);
            }
            outcomes
        });
    }
    let mut outcomes = Vec::new();
    while let Some(r) = workers.join_next().await {
        outcomes.extend(r.unwrap());
    }
    calm.store(true, Ordering::Relaxed);
    monkey.await.unwrap();
    let chaos_secs = started.elapsed().as_secs_f64();

    // Everything is up again: users past their expiry are the agent's sweeper's (every 2 s).
    let settle = Instant::now() + Duration::from_secs(30);
    let (orphans, roles) = loop {
        let live = live_leases(&store).await;
        let (users, roles) = database_accounts(&stack);
        let orphans: Vec<String> = users.difference(&live).cloned().collect();
        if (orphans.is_empty() && roles.is_empty()) || Instant::now() > settle {
            break (orphans, roles);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let live = live_leases(&store).await;
    let (users, _) = database_accounts(&stack);
    let gone = live.difference(&users).count();
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM requests GROUP BY status ORDER BY status")
            .fetch_all(&store)
            .await
            .unwrap();
    let unfinished: i64 = by_status
        .iter()
        .filter(|(s, _)| !matches!(s.as_str(), "expired" | "revoked" | "failed" | "denied"))
        .map(|(_, k)| k)
        .sum();
    // Read through the server's own store code, as an auditor's `GET /v1/audit` would.
    let entries = p0_server::store::open(&store_url)
        .await
        .unwrap()
        .audit_log()
        .await
        .unwrap();
    let chain = p0_core::audit::verify_chain(&entries);
    let client_unfinished = outcomes
        .iter()
        .filter(|(_, s)| {
            !matches!(
                s,
                Some(
                    RequestStatus::Expired
                        | RequestStatus::Revoked
                        | RequestStatus::Failed
                        | RequestStatus::Denied
                )
            )
        })
        .count();
    let kills: Vec<String> = procs
        .lock()
        .await
        .iter()
        .map(|p| format!("{} {}", p.name, p.kills))
        .collect();

    println!("\nchaos: {n} lifecycles, {c} at once, two replicas on one PostgreSQL store and an agent, {:.0} s", chaos_secs);
    println!("SIGKILLs: {}", kills.join(", "));
    println!(
        "requests by final status: {}",
        by_status
            .iter()
            .map(|(s, k)| format!("{s} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("count                                   | value");
    println!(
        "database users without a live lease     | {}",
        orphans.len()
    );
    println!("p0 roles left (no live lease)           | {}", roles.len());
    println!("leases marked live whose user is gone   | {gone}");
    println!("requests not in a final state           | {unfinished}");
    println!("lifecycles unfinished at the deadline   | {client_unfinished}");
    println!(
        "audit chain ({} entries)                | {}",
        entries.len(),
        match &chain {
            Ok(()) => "verifies".to_string(),
            Err(e) => format!("BROKEN: {e}"),
        }
    );
    if !orphans.is_empty() {
        println!("orphans: {orphans:?}");
    }
    let lifecycles = outcomes.len();
    !(orphans.is_empty()
        && roles.is_empty()
        && gone == 0
        && unfinished == 0
        && client_unfinished == 0
        && chain.is_ok()
        && lifecycles == n)
}
