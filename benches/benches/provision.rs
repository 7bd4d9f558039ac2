//! Provision + revoke through `PostgresProvisioner`, next to the same DDL sent directly over one
//! connection (the floor: what the database itself costs). Prints the ratio at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use criterion::Criterion;
use p0_core::provision::PostgresProvisioner;
use p0_core::{
    Access, DatabaseProvisioner, GuardPolicy, ObjectRef, Password, Permission, PermissionSet,
    Privilege, ProvisionPlan, RequestId, ResourceId,
};
use p0_testkit::PgServer;
use sqlx::{Connection, Executor, PgConnection};
use std::time::{Duration, Instant};

fn plan_set() -> PermissionSet {
    [
        Permission::new(Privilege::Connect, ObjectRef::database("app")),
        Permission::new(Privilege::Usage, ObjectRef::schema("public")),
        Permission::new(Privilege::Select, ObjectRef::table("public", "orders")),
        Permission::new(Privilege::Insert, ObjectRef::table("public", "orders")),
        Permission::new(
            Privilege::Usage,
            ObjectRef::sequence("public", "orders_id_seq"),
        ),
    ]
    .into_iter()
    .collect()
}

/// The same statements the provisioner ends up running, without guard, lock or catalog checks.
async fn floor_once(conn: &mut PgConnection, i: u64) {
    let password = Password::generate();
    let verifier = p0_core::provision::scram_verifier(&password).unwrap();
    let until = (Utc::now() + chrono::TimeDelta::minutes(5)).to_rfc3339();
    let (r, u) = (format!("floor_r{i}"), format!("floor_u{i}"));
    let create = format!(
        "BEGIN; CREATE ROLE {r} NOLOGIN; GRANT CONNECT ON DATABASE app TO {r}; GRANT USAGE ON SCHEMA public TO {r}; \
         GRANT SELECT, INSERT ON TABLE public.orders TO {r}; GRANT USAGE ON SEQUENCE public.orders_id_seq TO {r}; \
         CREATE ROLE {u} LOGIN PASSWORD '{verifier}' VALID UNTIL '{until}' IN ROLE {r}; COMMIT"
    );
    conn.execute(create.as_str()).await.expect("floor create");
    let drop = format!(
        "ALTER ROLE {u} NOLOGIN; BEGIN; DROP OWNED BY {u}; DROP ROLE {u}; DROP OWNED BY {r}; DROP ROLE {r}; COMMIT"
    );
    conn.execute(drop.as_str()).await.expect("floor drop");
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    let pg = PgServer::start().expect("start PostgreSQL");
    pg.create_hardened_db("app").expect("create db");
    pg.psql(
        "app",
        "CREATE TABLE orders (id serial PRIMARY KEY, total int)",
    )
    .expect("schema");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let p = rt
        .block_on(PostgresProvisioner::connect(
            &pg.url("app"),
            GuardPolicy::for_database("app", "postgres"),
        ))
        .expect("provisioner");
    let mut conn = rt
        .block_on(PgConnection::connect(&pg.url("app")))
        .expect("connect");
    let resource = ResourceId::new("pg/app").expect("resource");

    let mut totals = [(Duration::ZERO, 0u64); 2];
    let mut g = c.benchmark_group("provision_revoke");
    g.bench_function("floor_direct_ddl", |b| {
        b.iter_custom(|iters| {
            let t = rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    floor_once(&mut conn, i).await;
                }
                start.elapsed()
            });
            totals[0].0 += t;
            totals[0].1 += iters;
            t
        })
    });
    g.bench_function("postgres_provisioner", |b| {
        b.iter_custom(|iters| {
            let t = rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let plan = ProvisionPlan {
                        request_id: RequestId::generate(),
                        requester: "bench@example.com".into(),
                        resource: resource.clone(),
                        access: Access::Permissions(plan_set()),
                        expires_at: Utc::now() + chrono::TimeDelta::minutes(5),
                    };
                    let creds = p.provision(&plan).await.expect("provision");
                    p.revoke(&creds.username).await.expect("revoke");
                }
                start.elapsed()
            });
            totals[1].0 += t;
            totals[1].1 += iters;
            t
        })
    });
    g.finish();
    let per = |(t, n): (Duration, u64)| t.as_secs_f64() * 1e3 / n.max(1) as f64;
    let (floor, ours) = (per(totals[0]), per(totals[1]));
    println!("\nprovision+revoke | floor (direct DDL) | p0 PostgresProvisioner | ratio");
    println!(
        "mean ms/iter     | {floor:>18.2} | {ours:>22.2} | {:.2}x",
        ours / floor
    );
    c.final_summary();
}
