//! A bounded flood against server and agent together (issue 13, part 7): 1,000 calls, 100 at a
//! time, valid requests mixed with malformed, oversized and deeply nested ones, through the
//! real server, agent and PostgreSQL in this process. Prints, next to a baseline run of the
//! valid requests alone in the same process: calls by kind and answer, server errors for the
//! valid ones, wall time, and peak RSS (VmHWM) of the process that holds server and agent.
//!
//! `P0_FLOOD_CALLS` (default 1000) and `P0_FLOOD_CONCURRENCY` (default 100) change the size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::api::CreateRequest;
use p0_core::{Intent, KeyPair, RequestId, ResourceId, SignedRequest};
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

mod support;
use support::{dev_token, proven};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Valid,
    Malformed,
    Oversized,
    Deep,
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

struct Caller {
    http: reqwest::Client,
    base: String,
    kp: KeyPair,
    token: String,
}

impl Caller {
    fn body(&self, kind: Kind, i: usize) -> Vec<u8> {
        let sql = match kind {
            Kind::Valid => "SELECT c.name, o.total FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id".to_string(),
            Kind::Malformed => return format!("{{\"signed\": {i}, \"garbage\"").into_bytes(),
            Kind::Oversized => format!("SELECT {} FROM sales.orders", "1,".repeat(400_000) + "1"),
            Kind::Deep => match i % 3 {
                0 => format!("SELECT {}1", "1+".repeat(40_000)),
                1 => format!("SELECT 1 WHERE {}true", "true AND ".repeat(30_000)),
                _ => format!("SELECT {}1{}", "(".repeat(20_000), ")".repeat(20_000)),
            },
        };
        let signed = SignedRequest {
            request_id: RequestId::generate(),
            resource: ResourceId::new(RESOURCE).unwrap(),
            intent: Intent::Query(sql),
            reason: "flood".into(),
            duration_secs: 600,
            issued_at: chrono::Utc::now().timestamp(),
        };
        let signature = signed.sign(&self.kp.private_pem).unwrap();
        serde_json::to_vec(&CreateRequest {
            signed,
            signature,
            public_key: self.kp.public_pem.clone(),
        })
        .unwrap()
    }

    /// One call; the HTTP status, or 0 when the connection failed.
    async fn call(&self, kind: Kind, i: usize) -> u16 {
        let body = self.body(kind, i);
        let r = self
            .http
            .post(format!("{}/v1/requests", self.base))
            .bearer_auth(&self.token)
            .headers(proven(&self.kp, "POST", "/v1/requests", &body, &self.token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match r {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }
}

/// Runs `kinds` with `concurrency` calls in flight; returns (kind, status) counts and seconds.
async fn run(
    caller: Arc<Caller>,
    kinds: Vec<Kind>,
    concurrency: usize,
) -> (BTreeMap<(Kind, u16), usize>, f64) {
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let (caller, sem) = (caller.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            (kind, caller.call(kind, i).await)
        }));
    }
    let mut counts = BTreeMap::new();
    for t in tasks {
        let (kind, status) = t.await.unwrap();
        *counts.entry((kind, status)).or_insert(0) += 1;
    }
    (counts, start.elapsed().as_secs_f64())
}

fn served(counts: &BTreeMap<(Kind, u16), usize>, kind: Kind, pred: impl Fn(u16) -> bool) -> usize {
    counts
        .iter()
        .filter(|((k, s), _)| *k == kind && pred(*s))
        .map(|(_, n)| n)
        .sum()
}

fn main() {
    let calls = env("P0_FLOOD_CALLS", 1000);
    let concurrency = env("P0_FLOOD_CONCURRENCY", 100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let kp = KeyPair::generate().unwrap();
        let token = dev_token(&http, &stack.server_url, "flood@example.com", &kp).await;
        let caller = Arc::new(Caller {
            http,
            base: stack.server_url.clone(),
            kp,
            token,
        });
        let mix = [Kind::Valid, Kind::Valid, Kind::Malformed, Kind::Oversized, Kind::Deep];
        let kinds: Vec<Kind> = (0..calls).map(|i| mix[i % mix.len()]).collect();
        let valid = kinds.iter().filter(|k| **k == Kind::Valid).count();

        let rss_start = peak_rss_mib();
        let (base, base_secs) = run(caller.clone(), vec![Kind::Valid; valid], concurrency).await;
        let rss_base = peak_rss_mib();
        let (flood, flood_secs) = run(caller.clone(), kinds, concurrency).await;
        let rss_flood = peak_rss_mib();
        let health = |url: String| async move {
            reqwest::get(format!("{url}/v1/health")).await.map(|r| r.status().as_u16()).unwrap_or(0)
        };
        let (server_ok, agent_ok) = (health(stack.server_url.clone()).await, health(stack.agent_url.clone()).await);

        println!("flood: {calls} calls, {concurrency} at a time, through server + agent + PostgreSQL (one process)");
        println!("run                       | calls | valid 2xx | valid 5xx | refused 4xx | 5xx other | no answer | seconds | peak RSS MiB");
        for (name, counts, secs, rss, n) in [
            ("baseline: valid only", &base, base_secs, rss_base, valid),
            ("flood: mixed", &flood, flood_secs, rss_flood, calls),
        ] {
            let other5 = counts.iter().filter(|((k, s), _)| *k != Kind::Valid && *s >= 500).map(|(_, n)| n).sum::<usize>();
            let refused = counts.iter().filter(|((k, s), _)| *k != Kind::Valid && (400..500).contains(s)).map(|(_, n)| n).sum::<usize>();
            let none: usize = counts.iter().filter(|((_, s), _)| *s == 0).map(|(_, n)| n).sum();
            println!(
                "{name:<25} | {n:>5} | {:>9} | {:>9} | {refused:>11} | {other5:>9} | {none:>9} | {secs:>7.1} | {rss:>8.0}",
                served(counts, Kind::Valid, |s| (200..300).contains(&s)),
                served(counts, Kind::Valid, |s| s >= 500),
            );
        }
        println!(
            "peak RSS: {rss_start:.0} MiB after start, {rss_base:.0} after the baseline, {rss_flood:.0} after the flood ({:.2}x the baseline); server health {server_ok}, agent health {agent_ok}",
            rss_flood / rss_base.max(1.0)
        );
        for ((kind, status), n) in &flood {
            println!("  {kind:?} -> {status}: {n}");
        }
    });
}
