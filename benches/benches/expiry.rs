//! Expiry lateness through the real server and agent (PostgreSQL): N leases made to expire in
//! the same second, then how late each was revoked (the audit entry `lease.expired` against
//! the grant's expiry), with the reaper's interval at 5 s. Prints p50 / p99 / max lateness and
//! the time until the last was revoked. `P0_BENCH_LEASES` sets N (300 by default; the closing
//! note's figures are from 1,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use p0_core::api::RequestStatus;
use p0_core::audit::AuditEntry;
use p0_core::KeyPair;
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{dev_token, proven, request_query};

fn pct(v: &[f64], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn main() {
    let n: usize = std::env::var("P0_BENCH_LEASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack = Stack::start(DEMO_RULES, 5).await.unwrap();
        let http = reqwest::Client::new();
        let kp = Arc::new(KeyPair::generate().unwrap());
        let user = "alice@example.com";
        let token = Arc::new(dev_token(&http, &stack.server_url, user, &kp).await);
        let server = Arc::new(stack.server_url.clone());
        // Every lease expires at `target` (to the second): made 16 at a time, each asking for
        // the seconds left until then.
        let target = Utc::now() + chrono::TimeDelta::seconds(15 + (n / 25) as i64);
        let made = Instant::now();
        let limit = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let permit = limit.clone().acquire_owned().await.unwrap();
            let (http, kp, token, server) =
                (http.clone(), kp.clone(), token.clone(), server.clone());
            tasks.spawn(async move {
                let secs = (target - Utc::now()).num_milliseconds().max(1000) as u64 / 1000;
                let sql = "SELECT count(*) FROM sales.orders";
                let v = request_query(&http, &server, &kp, &token, RESOURCE, sql, secs).await;
                drop(permit);
                assert_eq!(v.status, RequestStatus::Active, "{:?}", v.message);
                (v.id.to_string(), v.grant.unwrap().expires_at)
            });
        }
        let mut expiry: HashMap<String, DateTime<Utc>> = HashMap::new();
        while let Some(r) = tasks.join_next().await {
            let (id, at) = r.unwrap();
            expiry.insert(id, at);
        }
        let making = made.elapsed();
        let last_expiry = *expiry.values().max().unwrap();
        // Until every lease's `lease.expired` entry is in the audit log.
        let deadline = Instant::now() + Duration::from_secs(600);
        let revoked: HashMap<String, DateTime<Utc>> = loop {
            let log: Vec<AuditEntry> = http
                .get(format!("{server}/v1/audit"))
                .bearer_auth(token.as_str())
                .headers(proven(&kp, "GET", "/v1/audit", b"", &token))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let done: HashMap<String, DateTime<Utc>> = log
                .into_iter()
                .filter(|e| e.action == "lease.expired")
                .filter_map(|e| Some((e.request_id?, e.at)))
                .filter(|(id, _)| expiry.contains_key(id))
                .collect();
            if done.len() == n || Instant::now() > deadline {
                break done;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let mut late: Vec<f64> = revoked
            .iter()
            .map(|(id, at)| (*at - expiry[id]).num_milliseconds() as f64 / 1e3)
            .collect();
        late.sort_by(|a, b| a.total_cmp(b));
        let drained =
            (*revoked.values().max().unwrap() - last_expiry).num_milliseconds() as f64 / 1e3;
        println!(
            "expiry lateness ({n} leases due within ~1 s, reaper interval 5 s, made in {:.1} s)",
            making.as_secs_f64()
        );
        println!("revoked | p50 s | p99 s | max s | last revoked after the last expiry, s");
        println!(
            "{:>4}/{n} | {:>5.2} | {:>5.2} | {:>5.2} | {drained:>5.2}",
            revoked.len(),
            pct(&late, 0.5),
            pct(&late, 0.99),
            late.last().copied().unwrap_or(f64::NAN)
        );
    });
}
