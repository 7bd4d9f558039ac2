//! Throughput of complete issue+revoke cycles (issue 16), on PostgreSQL and MariaDB, at
//! concurrency 1, 4 and 16, through (a) the provisioner alone and (b) the whole HTTP flow (the
//! CLI's request code → server → agent → database), next to (floor) the same statements the
//! provisioner ends up running, sent directly at the same concurrency, in the same run and on
//! the same servers. Prints one table: cycles/s, the ratio to the floor, and the issue half's
//! p50 latency (request→credentials for the HTTP flow) with its ratio to the floor's.
//!
//! The workload is the common one: every cycle asks for the same permission set (one query
//! run by many), while one lease of that set stays live, so the shared role exists throughout
//! and each cycle creates and removes one login user. `P0_LOAD_CYCLES` (default 160) sets the
//! cycles per cell; `P0_LOAD_ENGINES` (`postgres,mysql` by default) the engines;
//! `P0_LOAD_LIVE=N` keeps N more leases of the set live through the run (live-lease growth);
//! `P0_LOAD_TRACE=1` logs every PostgreSQL statement with its duration to
//! `/tmp/p0-load-pg.log` (where the time goes); `P0_LOAD_HTTP=0` leaves the HTTP flow out (to
//! profile the provisioner alone). Before the table, what the SCRAM iteration
//! count costs at creation and at login.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use p0_core::api::RequestStatus;
use p0_core::provision::{MySqlProvisioner, PostgresProvisioner};
use p0_core::{
    Access, DatabaseProvisioner, Engine, GuardPolicy, KeyPair, ObjectRef, Password, Permission,
    PermissionSet, Privilege, ProvisionPlan, RequestId, ResourceId,
};
use p0_stack::{Stack, DATABASE, DEMO_RULES};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{dev_token, proven, request_query};

const CONCURRENCY: [usize; 3] = [1, 4, 16];

/// One cell of the table.
#[derive(Debug, Clone, Copy)]
struct Cell {
    per_sec: f64,
    issue_p50_ms: f64,
    errors: usize,
}

/// Runs `n` cycles on `c` workers; each cycle returns its issue half's latency.
async fn run<F, Fut>(c: usize, n: usize, cycle: F) -> Cell
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Duration, String>> + Send,
{
    let cycle = Arc::new(cycle);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..c {
        let (cycle, next) = (cycle.clone(), next.clone());
        workers.spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                match cycle(w, i).await {
                    Ok(d) => lat.push(d.as_secs_f64() * 1e3),
                    Err(e) => errors.push(e),
                }
            }
            (lat, errors)
        });
    }
    let (mut lat, mut errors) = (Vec::new(), Vec::new());
    while let Some(r) = workers.join_next().await {
        let (l, e) = r.unwrap();
        lat.extend(l);
        errors.extend(e);
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(e) = errors.first() {
        eprintln!("{} error(s), the first: {e}", errors.len());
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Cell {
        per_sec: lat.len() as f64 / elapsed,
        issue_p50_ms: lat.get(lat.len() / 2).copied().unwrap_or(f64::NAN),
        errors: errors.len(),
    }
}

/// The statements of one cycle as the provisioner ends up sending them, for the floor.
trait FloorDdl: Send + Sync + 'static {
    fn create_sql(&self, user: &str) -> String;
    fn drop_sql(&self, user: &str) -> Vec<String>;
}

struct PgFloor {
    role: String,
}

impl FloorDdl for PgFloor {
    fn create_sql(&self, user: &str) -> String {
        let password = Password::generate();
        let verifier = p0_core::provision::scram_verifier(&password).unwrap();
        let until = (Utc::now() + chrono::TimeDelta::minutes(5)).to_rfc3339();
        format!(
            "CREATE ROLE {user} WITH LOGIN INHERIT PASSWORD '{verifier}' VALID UNTIL '{until}' IN ROLE {}; \
             COMMENT ON ROLE {user} IS 'floor'",
            self.role
        )
    }
    fn drop_sql(&self, user: &str) -> Vec<String> {
        vec![
            format!("ALTER ROLE {user} NOLOGIN"),
            format!("DROP ROLE {user}"),
        ]
    }
}

struct MyFloor {
    role: String,
}

impl FloorDdl for MyFloor {
    fn create_sql(&self, user: &str) -> String {
        use sha1::{Digest, Sha1};
        let password = Password::generate();
        let inner = Sha1::digest(password.expose_secret().as_bytes());
        let hash = format!("*{}", hex::encode_upper(Sha1::digest(inner)));
        let at = (Utc::now() + chrono::TimeDelta::minutes(5)).format("%Y-%m-%d %H:%M:%S");
        format!(
            "INSERT INTO p0_floor.managed VALUES ('{user}', 'user'); \
             CREATE USER '{user}'@'%' IDENTIFIED BY PASSWORD '{hash}'; GRANT {r} TO '{user}'@'%'; \
             SET DEFAULT ROLE {r} FOR '{user}'@'%'; \
             CREATE EVENT p0_floor.expire_{user} ON SCHEDULE AT '{at}' DO DROP USER IF EXISTS '{user}'@'%'",
            r = self.role
        )
    }
    fn drop_sql(&self, user: &str) -> Vec<String> {
        vec![
            format!("ALTER USER '{user}'@'%' ACCOUNT LOCK"),
            format!("DROP USER '{user}'@'%'"),
            format!("DROP EVENT p0_floor.expire_{user}"),
            format!("DELETE FROM p0_floor.managed WHERE name = '{user}'"),
        ]
    }
}

/// The floor: each worker on a connection of its own, the statements sent as they are.
async fn floor<DB, E>(url: &str, c: usize, n: usize, round: usize, engine: Arc<E>) -> Cell
where
    DB: sqlx::Database,
    E: FloorDdl,
    for<'a> &'a mut DB::Connection: sqlx::Executor<'a, Database = DB>,
{
    use sqlx::pool::PoolOptions;
    let pool = PoolOptions::<DB>::new()
        .max_connections(c as u32)
        .connect(url)
        .await
        .unwrap();
    run(c, n, move |_, i| {
        let (pool, engine) = (pool.clone(), engine.clone());
        async move {
            use sqlx::Executor;
            let user = format!("floor_{round}_{i}");
            let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
            let t = Instant::now();
            conn.execute(engine.create_sql(&user).as_str())
                .await
                .map_err(|e| e.to_string())?;
            let issued = t.elapsed();
            for s in engine.drop_sql(&user) {
                conn.execute(s.as_str()).await.map_err(|e| e.to_string())?;
            }
            Ok(issued)
        }
    })
    .await
}

fn plan(resource: &ResourceId, set: &PermissionSet) -> ProvisionPlan {
    ProvisionPlan {
        request_id: RequestId::generate(),
        requester: "load@example.com".into(),
        resource: resource.clone(),
        access: Access::Permissions(set.clone()),
        expires_at: Utc::now() + chrono::TimeDelta::minutes(30),
    }
}

async fn provisioner(
    p: Arc<dyn DatabaseProvisioner>,
    set: PermissionSet,
    c: usize,
    n: usize,
) -> Cell {
    let resource = ResourceId::new("load/app").unwrap();
    run(c, n, move |_, _| {
        let (p, plan) = (p.clone(), plan(&resource, &set));
        async move {
            let t = Instant::now();
            let creds = p.provision(&plan).await.map_err(|e| e.to_string())?;
            let issued = t.elapsed();
            p.revoke(&creds.username).await.map_err(|e| e.to_string())?;
            Ok(issued)
        }
    })
    .await
}

async fn http_flow(stack: &Stack, sql: &'static str, c: usize, n: usize) -> Cell {
    let http = reqwest::Client::new();
    let kp = Arc::new(KeyPair::generate().unwrap());
    let token = Arc::new(dev_token(&http, &stack.server_url, "alice@example.com", &kp).await);
    let (server, resource) = (
        Arc::new(stack.server_url.clone()),
        Arc::new(stack.resource.clone()),
    );
    run(c, n, move |_, _| {
        let (http, kp, token, server, resource) = (
            http.clone(),
            kp.clone(),
            token.clone(),
            server.clone(),
            resource.clone(),
        );
        async move {
            let t = Instant::now();
            let v = request_query(&http, &server, &kp, &token, &resource, sql, 600).await;
            if v.status != RequestStatus::Active {
                return Err(format!("{:?}: {:?}", v.status, v.message));
            }
            let issued = t.elapsed();
            let path = format!("/v1/requests/{}/revoke", v.id);
            let r = http
                .post(format!("{server}{path}"))
                .bearer_auth(token.as_str())
                .headers(proven(&kp, "POST", &path, b"", &token))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("revoke: {}", r.text().await.unwrap_or_default()));
            }
            Ok(issued)
        }
    })
    .await
}

/// What the SCRAM iteration count costs: `CREATE ROLE` (the server checks each verifier
/// against the empty password) and a login (the client runs the iterations), at PostgreSQL's
/// default 4,096 and at p0's count. Prints mean ms of each.
async fn scram_costs(pg: &p0_testkit::PgServer) {
    use sqlx::{ConnectOptions, Executor};
    let admin = sqlx::PgPool::connect(&pg.url(DATABASE)).await.unwrap();
    println!("\nSCRAM iterations | CREATE ROLE ms | login ms (sqlx, loopback)");
    for (label, count) in [
        ("4096 (default)", 4096u32),
        ("p0", p0_core::provision::SCRAM_ITERATIONS),
    ] {
        let n = 60;
        let password = Password::generate();
        let mut created = Duration::ZERO;
        for i in 0..n {
            let v = if count == 4096 {
                postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes())
            } else {
                p0_core::provision::scram_verifier(&password).unwrap()
            };
            let t = Instant::now();
            admin
                .execute(format!("CREATE ROLE scram_{count}_{i} LOGIN PASSWORD '{v}'").as_str())
                .await
                .unwrap();
            created += t.elapsed();
        }
        let mut login = Duration::ZERO;
        for i in 0..n {
            let opts = sqlx::postgres::PgConnectOptions::new()
                .host("127.0.0.1")
                .port(pg.port)
                .username(&format!("scram_{count}_{i}"))
                .password(password.expose_secret())
                .database("postgres");
            let t = Instant::now();
            let c = opts.connect().await.unwrap();
            login += t.elapsed();
            drop(c);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
        println!("{label:<17}| {:>14.2} | {:>8.2}", ms(created), ms(login));
    }
}

/// What the client's own work costs per call: one RSA-2048 PKCS#1 v1.5 signature (the
/// request's, and each call's proof of possession).
fn client_costs() {
    let kp = KeyPair::generate().unwrap();
    let n = 50;
    let t = Instant::now();
    for _ in 0..n {
        p0_core::proof::sign(&kp.private_pem, "POST", "/v1/requests", b"{}", "tok", 0).unwrap();
    }
    println!(
        "\nclient: one proof-of-possession signature {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    );
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env_usize("P0_LOAD_CYCLES", 160);
    let engines = std::env::var("P0_LOAD_ENGINES").unwrap_or_else(|_| "postgres,mysql".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows: Vec<(String, &'static str, Vec<Cell>)> = Vec::new();
    client_costs();
    rt.block_on(async {
        for name in engines.split(',') {
            let engine = match name {
                "postgres" => Engine::Postgres,
                "mysql" => Engine::MySql,
                other => panic!("unknown engine {other}"),
            };
            let mysql = engine == Engine::MySql;
            let stack = Stack::start_engine(engine, DEMO_RULES, 3600).await.unwrap();
            let resource = ResourceId::new("load/app").unwrap();
            let (p, set, sql): (Arc<dyn DatabaseProvisioner>, PermissionSet, &'static str) =
                if !mysql {
                        let set: PermissionSet = [
                            Permission::new(Privilege::Connect, ObjectRef::database(DATABASE)),
                            Permission::new(Privilege::Usage, ObjectRef::schema("sales")),
                            Permission::new(Privilege::Select, ObjectRef::table("sales", "orders")),
                        ]
                        .into_iter()
                        .collect();
                        let p = PostgresProvisioner::connect(
                            &stack.pg.url(DATABASE),
                            GuardPolicy::for_database(DATABASE, "postgres"),
                        )
                        .await
                        .unwrap();
                        (Arc::new(p), set, "SELECT count(*) FROM sales.orders")
                    } else {
                        let set: PermissionSet =
                            [Permission::new(Privilege::Select, ObjectRef::table(DATABASE, "orders"))]
                                .into_iter()
                                .collect();
                        let my = stack.my.as_ref().unwrap();
                        let p = MySqlProvisioner::connect(
                            &my.url(""),
                            GuardPolicy::for_database(DATABASE, "root"),
                            "%",
                        )
                        .await
                        .unwrap();
                        (Arc::new(p), set, "SELECT count(*) FROM app.orders")
                    };
            if std::env::var("P0_LOAD_TRACE").is_ok() && !mysql {
                stack.pg.psql(DATABASE, "ALTER SYSTEM SET log_min_duration_statement = 0").unwrap(); stack.pg.psql(DATABASE, "SELECT pg_reload_conf()").unwrap();
            }
            if !mysql {
                scram_costs(&stack.pg).await;
            }
            // The anchor lease keeps the shared role alive for the whole run; `P0_LOAD_LIVE`
            // more leases of the same set stay live through it (the live-lease growth check).
            let anchor = p.provision(&plan(&resource, &set)).await.unwrap();
            let live = env_usize("P0_LOAD_LIVE", 0);
            let made = Instant::now();
            let mut held = Vec::with_capacity(live);
            for chunk in (0..live).collect::<Vec<_>>().chunks(16) {
                let mut batch = tokio::task::JoinSet::new();
                for _ in chunk {
                    let (p, plan) = (p.clone(), plan(&resource, &set));
                    batch.spawn(async move { p.provision(&plan).await.unwrap().username });
                }
                while let Some(u) = batch.join_next().await {
                    held.push(u.unwrap());
                }
            }
            if live > 0 {
                println!(
                    "{name}: {live} leases live through the run (made in {:.1} s)",
                    made.elapsed().as_secs_f64()
                );
            }
            let role = anchor.role.to_string();
            let mut floor_row = Vec::new();
            let mut prov_row = Vec::new();
            let mut http_row = Vec::new();
            for (round, c) in CONCURRENCY.into_iter().enumerate() {
                floor_row.push(if !mysql {
                        floor::<sqlx::Postgres, _>(
                            &stack.pg.url(DATABASE),
                            c,
                            n,
                            round,
                            Arc::new(PgFloor { role: role.clone() }),
                        )
                        .await
                    } else {
                        let my = stack.my.as_ref().unwrap();
                        if round == 0 {
                            my.sql("CREATE DATABASE p0_floor; CREATE TABLE p0_floor.managed (name VARCHAR(64) PRIMARY KEY, kind VARCHAR(8)) ENGINE=InnoDB")
                                .unwrap();
                        }
                        floor::<sqlx::MySql, _>(
                            &my.url(""),
                            c,
                            n,
                            round,
                            Arc::new(MyFloor { role: role.clone() }),
                        )
                        .await
                });
                prov_row.push(provisioner(p.clone(), set.clone(), c, n).await);
                // `P0_LOAD_HTTP=0` leaves the HTTP flow out (a profile of the provisioner).
                http_row.push(if std::env::var("P0_LOAD_HTTP").as_deref() == Ok("0") {
                    Cell { per_sec: f64::NAN, issue_p50_ms: f64::NAN, errors: 0 }
                } else {
                    http_flow(&stack, sql, c, n).await
                });
            }
            rows.push((name.to_string(), "floor (direct DDL)", floor_row));
            rows.push((name.to_string(), "provisioner", prov_row));
            rows.push((name.to_string(), "HTTP flow", http_row));
            p.revoke(&anchor.username).await.unwrap();
            for u in held {
                p.revoke(&u).await.unwrap();
            }
            if std::env::var("P0_LOAD_TRACE").is_ok() && !mysql {
                std::fs::write("/tmp/p0-load-pg.log", stack.pg.log().unwrap()).unwrap();
            }
        }
    });
    let live = env_usize("P0_LOAD_LIVE", 0);
    println!(
        "\nissue+revoke cycles ({n} per cell, one permission set, its shared role kept live, {} other leases live)",
        live
    );
    println!(
        "{:<9}| {:<19}| {:>30} | {:>30} | {:>30}",
        "engine", "path", "c=1: /s (x floor), p50 ms", "c=4", "c=16"
    );
    for chunk in rows.chunks(3) {
        let floor = &chunk[0].2;
        for (engine, path, cells) in chunk {
            let shown: Vec<String> = cells
                .iter()
                .zip(floor)
                .map(|(c, f)| {
                    let errs = if c.errors > 0 {
                        format!(" {}err", c.errors)
                    } else {
                        String::new()
                    };
                    format!(
                        "{:>6.1} ({:.2}x), {:>5.1} ({:.2}x){errs}",
                        c.per_sec,
                        c.per_sec / f.per_sec,
                        c.issue_p50_ms,
                        c.issue_p50_ms / f.issue_p50_ms
                    )
                })
                .collect();
            println!(
                "{engine:<9}| {path:<19}| {:>30} | {:>30} | {:>30}",
                shown[0], shown[1], shown[2]
            );
        }
    }
}
