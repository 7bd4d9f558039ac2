//! Live leases with distinct permission sets on one table (issue 16): every lease reads its
//! own subset of a 16-column table, so no two share a set role. Measures issue and revoke of
//! one more such lease (a set not live, so its role is created and dropped) with 100 and then
//! with `P0_DISTINCT_LIVE` (10,000) distinct leases live, through the provisioner, at
//! concurrency 16. Prints p50 issue and revoke ms, cycles/s and the ratio of each to the run
//! at 100; and the longest column ACL of the table (PostgreSQL). `P0_LOAD_ENGINES` as in
//! `load` (`postgres` by default; `postgres,mysql` for both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use p0_core::provision::{MySqlProvisioner, PostgresProvisioner};
use p0_core::{
    Access, DatabaseProvisioner, Engine, GuardPolicy, ObjectRef, Permission, PermissionSet,
    Privilege, ProvisionPlan, RequestId, ResourceId,
};
use p0_stack::{Stack, DATABASE, DEMO_RULES};
use std::sync::Arc;
use std::time::Instant;

const COLUMNS: u32 = 16;
const CONCURRENCY: usize = 16;

fn columns_of(i: u32) -> Vec<String> {
    (0..COLUMNS)
        .filter(|c| i & (1 << c) != 0)
        .map(|c| format!("c{c}"))
        .collect()
}

/// The set of subset `i` (1 ..= 65,535): SELECT on those columns of `wide`.
fn set_of(mysql: bool, i: u32) -> PermissionSet {
    let (schema, base) = if mysql {
        (DATABASE, vec![])
    } else {
        (
            "sales",
            vec![
                Permission::new(Privilege::Connect, ObjectRef::database(DATABASE)),
                Permission::new(Privilege::Usage, ObjectRef::schema("sales")),
            ],
        )
    };
    base.into_iter()
        .chain([Permission {
            columns: Some(columns_of(i)),
            ..Permission::new(Privilege::Select, ObjectRef::table(schema, "wide"))
        }])
        .collect()
}

fn plan(set: PermissionSet) -> ProvisionPlan {
    ProvisionPlan {
        request_id: RequestId::generate(),
        requester: "distinct@example.com".into(),
        resource: ResourceId::new("load/app").unwrap(),
        access: Access::Permissions(set),
        expires_at: Utc::now() + chrono::TimeDelta::hours(2),
    }
}

/// Makes leases of subsets `from..to` live, 16 at a time.
async fn make_live(p: &Arc<dyn DatabaseProvisioner>, mysql: bool, from: u32, to: u32) {
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for i in from..to {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let p = p.clone();
        tasks.spawn(async move {
            p.provision(&plan(set_of(mysql, i))).await.unwrap();
            drop(permit);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

/// `n` issue+revoke cycles of subsets `first..first+n` (none live), 16 at a time: p50 issue
/// ms, p50 revoke ms, cycles/s, errors.
async fn cycles(
    p: &Arc<dyn DatabaseProvisioner>,
    mysql: bool,
    first: u32,
    n: u32,
) -> (f64, f64, f64, usize) {
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in first..first + n {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let p = p.clone();
        tasks.spawn(async move {
            let t = Instant::now();
            let c = p
                .provision(&plan(set_of(mysql, i)))
                .await
                .map_err(|e| e.to_string())?;
            let issued = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            p.revoke(&c.username).await.map_err(|e| e.to_string())?;
            drop(permit);
            Ok::<_, String>((issued, t.elapsed().as_secs_f64() * 1e3))
        });
    }
    let (mut issue, mut revoke, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok((i, v)) => {
                issue.push(i);
                revoke.push(v);
            }
            Err(e) => errors.push(e),
        }
    }
    let per_sec = issue.len() as f64 / start.elapsed().as_secs_f64();
    if let Some(e) = errors.first() {
        eprintln!("{} error(s), the first: {e}", errors.len());
    }
    for v in [&mut issue, &mut revoke] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let p50 = |v: &Vec<f64>| v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
    (p50(&issue), p50(&revoke), per_sec, errors.len())
}

fn main() {
    let live: u32 = std::env::var("P0_DISTINCT_LIVE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let engines = std::env::var("P0_LOAD_ENGINES").unwrap_or_else(|_| "postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "distinct permission sets on one 16-column table, issue+revoke at concurrency {CONCURRENCY}"
        );
        println!("engine | live | issue p50 ms | revoke p50 ms | cycles/s | errors | longest column ACL");
        for name in engines.split(',') {
            let engine = match name {
                "postgres" => Engine::Postgres,
                "mysql" => Engine::MySql,
                other => panic!("unknown engine {other}"),
            };
            let mysql = engine == Engine::MySql;
            let stack = Stack::start_engine(engine, DEMO_RULES, 3600).await.unwrap();
            let cols: Vec<String> = (0..COLUMNS).map(|c| format!("c{c} int")).collect();
            let p: Arc<dyn DatabaseProvisioner> = if mysql {
                let my = stack.my.as_ref().unwrap();
                my.sql(&format!("CREATE TABLE app.wide ({})", cols.join(", ")))
                    .unwrap();
                Arc::new(
                    MySqlProvisioner::connect(
                        &my.url(""),
                        GuardPolicy::for_database(DATABASE, "root"),
                        "%",
                    )
                    .await
                    .unwrap(),
                )
            } else {
                stack
                    .pg
                    .psql(DATABASE, &format!("CREATE TABLE sales.wide ({})", cols.join(", ")))
                    .unwrap();
                Arc::new(
                    PostgresProvisioner::connect(
                        &stack.pg.url(DATABASE),
                        GuardPolicy::for_database(DATABASE, "postgres"),
                    )
                    .await
                    .unwrap(),
                )
            };
            let acl = || {
                if mysql {
                    return "-".to_string();
                }
                stack
                    .pg
                    .psql(
                        DATABASE,
                        "SELECT max(coalesce(array_length(attacl, 1), 0)) FROM pg_attribute \
                         WHERE attrelid = 'sales.wide'::regclass AND attnum > 0",
                    )
                    .unwrap()
                    .trim()
                    .to_string()
            };
            // Live subsets are 1..=live; the measured cycles use subsets above 60,000.
            let mut base = None;
            let mut made = 1;
            let trace = std::env::var("P0_DISTINCT_TRACE").is_ok() && !mysql;
            for target in [100, live] {
                let t = Instant::now();
                make_live(&p, mysql, made, target + 1).await;
                made = target + 1;
                let making = t.elapsed().as_secs_f64();
                if trace {
                    stack
                        .pg
                        .psql(DATABASE, "ALTER SYSTEM SET log_min_duration_statement = 0")
                        .unwrap();
                    stack.pg.psql(DATABASE, "SELECT pg_reload_conf()").unwrap();
                }
                let (issue, revoke, per_sec, errors) = cycles(&p, mysql, 60_000, 160).await;
                let (bi, br, bs) = *base.get_or_insert((issue, revoke, per_sec));
                println!(
                    "{name} | {target} (made in {making:.0} s) | {issue:.1} ({:.2}x) | {revoke:.1} ({:.2}x) | {per_sec:.0} ({:.2}x) | {errors} | {}",
                    issue / bi,
                    revoke / br,
                    per_sec / bs,
                    acl()
                );
                if trace {
                    stack
                        .pg
                        .psql(DATABASE, "ALTER SYSTEM SET log_min_duration_statement = -1")
                        .unwrap();
                    stack.pg.psql(DATABASE, "SELECT pg_reload_conf()").unwrap();
                    slowest(&stack.pg.log().unwrap());
                }
            }
        }
    });
}

/// The statements of the log (`log_min_duration_statement = 0`) that took the most time in
/// all, by their first 90 characters; the log is emptied after.
fn slowest(log: &str) {
    let mut by: std::collections::HashMap<String, (f64, usize)> = Default::default();
    for line in log.lines() {
        let Some(rest) = line.split("duration: ").nth(1) else {
            continue;
        };
        let Some((ms, stmt)) = rest.split_once(" ms  ") else {
            continue;
        };
        let key: String = stmt.chars().take(90).collect();
        let e = by.entry(key).or_default();
        e.0 += ms.parse::<f64>().unwrap_or(0.0);
        e.1 += 1;
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    for (stmt, (total, n)) in v.into_iter().take(8) {
        println!("    {total:>8.0} ms in {n:>5} | {stmt}");
    }
}
