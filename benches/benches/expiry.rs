//! Expiry lateness through the real server and agent (PostgreSQL): N leases made to expire in
//! the same second (or spread over `P0_BENCH_SPREAD_SECS` seconds), then how late each was
//! (a) disabled, its login refused and its sessions ended (the agent's time, in the audit
//! entry), and (b) revoked, user and role removed (the audit entry `lease.expired`), against the
//! grant's expiry, with the reaper's interval at 5 s. Prints p50 / p99 / max lateness of each
//! and the time until the last was revoked; for leases due in the same second, next to the raw
//! floor: the agent's statements for as many users issued directly at the reaper's concurrency
//! per agent. `P0_BENCH_LEASES` sets N (300 by default).
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

/// When a lease's `lease.expired` entry was written, and when its login was disabled.
type Ended = (DateTime<Utc>, Option<DateTime<Utc>>);

fn pct(v: &[f64], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
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
        // Every lease expires at `target` (to the second), or the i-th of them `spread * i / n`
        // seconds after it: made 16 at a time, each asking for the seconds left until then.
        let spread: i64 = std::env::var("P0_BENCH_SPREAD_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let target = if spread > 0 {
            Utc::now() + chrono::TimeDelta::seconds(30)
        } else {
            Utc::now() + chrono::TimeDelta::seconds(15 + (n / 25) as i64)
        };
        let made = Instant::now();
        let limit = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let target = target + chrono::TimeDelta::seconds(spread * i as i64 / n as i64);
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
        // Until every lease's `lease.expired` entry is in the audit log: read after the last
        // expiry, and then every 2 s (reading a large log sooner would load the server that
        // is being measured).
        let wait = (last_expiry - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
        tokio::time::sleep(wait).await;
        let deadline = Instant::now() + Duration::from_secs(600);
        let revoked: HashMap<String, Ended> = loop {
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
            let done: HashMap<String, Ended> = log
                .into_iter()
                .filter(|e| e.action == "lease.expired")
                .filter_map(|e| {
                    let disabled = e
                        .detail
                        .split("login disabled and sessions ended at ")
                        .nth(1)
                        .and_then(|t| DateTime::parse_from_rfc3339(t.split(';').next()?).ok())
                        .map(|t| t.with_timezone(&Utc));
                    Some((e.request_id?, (e.at, disabled)))
                })
                .filter(|(id, _)| expiry.contains_key(id))
                .collect();
            if done.len() == n || Instant::now() > deadline {
                break done;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        let lateness = |pick: &dyn Fn(&Ended) -> Option<DateTime<Utc>>| {
            let mut v: Vec<f64> = revoked
                .iter()
                .filter_map(|(id, r)| Some((pick(r)? - expiry[id]).num_milliseconds() as f64 / 1e3))
                .collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v
        };
        let disabled = lateness(&|r| r.1);
        let late = lateness(&|r| Some(r.0));
        let drained = (revoked.values().map(|r| r.0).max().unwrap() - last_expiry)
            .num_milliseconds() as f64
            / 1e3;
        let due = if spread > 0 {
            format!("due over {spread} s")
        } else {
            "due within ~1 s".to_string()
        };
        println!(
            "expiry lateness ({n} leases {due}, reaper interval 5 s, made in {:.1} s)",
            making.as_secs_f64()
        );
        println!("step                              | done      | p50 s | p99 s | max s");
        for (step, v) in [
            ("login disabled, sessions ended", &disabled),
            ("user and role removed", &late),
        ] {
            println!(
                "{step:<34}| {:>4}/{n} | {:>5.2} | {:>5.2} | {:>5.2}",
                v.len(),
                pct(v, 0.5),
                pct(v, 0.99),
                v.last().copied().unwrap_or(f64::NAN)
            );
        }
        println!("last removed after the last expiry: {drained:.2} s");
        if spread == 0 {
            let (disable, remove) = raw_floor(&stack, n).await;
            println!(
                "raw floor, the same statements issued directly at 16 concurrent (the reaper's per-agent bound): \
                 all {n} disabled in {disable:.2} s, all removed in {remove:.2} s"
            );
        }
    });
}

/// The agent's statements for `n` users, issued directly at 16 concurrent: how long disabling
/// them all takes (no new login, sessions ended), and then dropping them all.
async fn raw_floor(stack: &Stack, n: usize) -> (f64, f64) {
    use sqlx::Executor;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(&stack.pg.url(p0_stack::DATABASE))
        .await
        .unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("floor_{i}")).collect();
    for chunk in names.chunks(100) {
        let sql: String = chunk
            .iter()
            .map(|u| format!("CREATE ROLE {u} LOGIN;"))
            .collect();
        pool.execute(sql.as_str()).await.unwrap();
    }
    let each = |stmts: fn(&str) -> Vec<String>| {
        let (pool, names) = (pool.clone(), names.clone());
        async move {
            let t = Instant::now();
            let limit = Arc::new(tokio::sync::Semaphore::new(16));
            let mut tasks = tokio::task::JoinSet::new();
            for u in names {
                let permit = limit.clone().acquire_owned().await.unwrap();
                let pool = pool.clone();
                tasks.spawn(async move {
                    for sql in stmts(&u) {
                        pool.execute(sql.as_str()).await.unwrap();
                    }
                    drop(permit);
                });
            }
            while tasks.join_next().await.is_some() {}
            t.elapsed().as_secs_f64()
        }
    };
    let disable = each(|u| {
        vec![
            format!("ALTER ROLE {u} NOLOGIN"),
            format!(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
                 FROM pg_stat_activity WHERE usename = '{u}' AND pid <> pg_backend_pid()"
            ),
        ]
    })
    .await;
    let remove = each(|u| vec![format!("DROP ROLE {u}")]).await;
    (disable, remove)
}
