//! Request-to-credentials time, auto-approved, over loopback HTTP through server and agent
//! (signing, token and signature checks, live-catalog extraction on both sides, routing,
//! provisioning, sealing), next to the provisioning floor: the same creation DDL sent directly
//! over one connection. Prints p50 / p99 and the ratio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::api::RequestStatus;
use p0_core::KeyPair;
use p0_stack::{Stack, DATABASE, DEMO_RULES, RESOURCE};
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant};

mod support;
use support::{dev_token, proven, request_query};

const N: usize = 60;

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
        let http = reqwest::Client::new();
        let kp = KeyPair::generate().unwrap();
        let token = dev_token(&http, &stack.server_url, "bench@example.com", &kp).await;
        let sql = "SELECT c.name, o.total FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id";

        let mut flow = Vec::new();
        for i in 0..N + 5 {
            let start = Instant::now();
            let v = request_query(&http, &stack.server_url, &kp, &token, RESOURCE, sql, 600).await;
            let t = start.elapsed();
            assert_eq!(v.status, RequestStatus::Active, "{:?}", v.message);
            if i >= 5 {
                flow.push(t);
            }
            let revoke = format!("/v1/requests/{}/revoke", v.id);
            http.post(format!("{}{revoke}", stack.server_url))
                .bearer_auth(&token)
                .headers(proven(&kp, "POST", &revoke, b"", &token))
                .send()
                .await
                .unwrap();
        }

        let mut conn = sqlx::PgConnection::connect(&stack.pg.url(DATABASE)).await.unwrap();
        let mut floor = Vec::new();
        for i in 0..N + 5 {
            let start = Instant::now();
            let password = p0_core::Password::generate();
            let verifier = p0_core::provision::scram_verifier(&password).unwrap();
            let until = (chrono::Utc::now() + chrono::TimeDelta::minutes(10)).to_rfc3339();
            let sql = format!(
                "BEGIN; CREATE ROLE fr{i} NOLOGIN; GRANT CONNECT ON DATABASE app TO fr{i}; GRANT USAGE ON SCHEMA sales TO fr{i}; \
                 GRANT SELECT ON TABLE sales.orders, sales.customers TO fr{i}; \
                 CREATE ROLE fu{i} LOGIN PASSWORD '{verifier}' VALID UNTIL '{until}' IN ROLE fr{i}; COMMIT"
            );
            conn.execute(sql.as_str()).await.unwrap();
            let t = start.elapsed();
            if i >= 5 {
                floor.push(t);
            }
            conn.execute(format!("DROP ROLE fu{i}; DROP OWNED BY fr{i}; DROP ROLE fr{i}").as_str()).await.unwrap();
        }
        let (f50, f99, p50, p99) = (pct(floor.clone(), 0.5), pct(floor, 0.99), pct(flow.clone(), 0.5), pct(flow, 0.99));
        println!("request → credentials ({N} runs, auto-approved, loopback) | p50 ms | p99 ms");
        println!("provisioning floor (direct DDL, one connection)            | {f50:>6.2} | {f99:>6.2}");
        println!("p0 CLI-signed request through server and agent             | {p50:>6.2} | {p99:>6.2}");
        println!("ratio                                                      | {:>5.1}x | {:>5.1}x", p50 / f50, p99 / f99);
    });
}
