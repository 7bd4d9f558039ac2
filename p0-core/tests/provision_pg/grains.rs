//! Live leases with distinct permission sets on one table: they share grain roles (one per
//! privilege and column), so the table's ACL is bounded by its columns, not by the leases.
//! Before, each set's role had its own entry in every column's ACL, and PostgreSQL refused the
//! row once it outgrew its page (`row is too big`, at ~2,400 sets on one table).

use crate::support::{login, plan, policy, provisioner, setup, DB};
use chrono::Duration as TimeDelta;
use p0_core::{Access, DatabaseProvisioner, ObjectRef, Permission, PermissionSet, Privilege};
use p0_testkit::PgOptions;

const COLUMNS: u32 = 8;

fn columns_of(i: u32) -> Vec<String> {
    (0..COLUMNS)
        .filter(|c| i & (1 << c) != 0)
        .map(|c| format!("c{c}"))
        .collect()
}

#[tokio::test]
async fn distinct_sets_on_one_table_keep_its_acl_bounded_and_each_reads_its_columns() {
    let pg = setup(PgOptions::default());
    let cols: Vec<String> = (0..COLUMNS).map(|c| format!("c{c} int")).collect();
    let vals: Vec<String> = (0..COLUMNS).map(|c| c.to_string()).collect();
    pg.psql(
        DB,
        &format!(
            "CREATE TABLE public.wide ({}); INSERT INTO public.wide VALUES ({});",
            cols.join(", "),
            vals.join(", ")
        ),
    )
    .unwrap();
    let p = provisioner(&pg, policy()).await;
    let mut leases = Vec::new();
    // 60 distinct column sets, so 60 distinct permission sets on one table.
    for i in 1..=60u32 {
        let set: PermissionSet = [
            Permission::new(Privilege::Connect, ObjectRef::database(DB)),
            Permission::new(Privilege::Usage, ObjectRef::schema("public")),
            Permission {
                columns: Some(columns_of(i)),
                ..Permission::new(Privilege::Select, ObjectRef::table("public", "wide"))
            },
        ]
        .into_iter()
        .collect();
        let c = p
            .provision(&plan(Access::Permissions(set), TimeDelta::minutes(5)))
            .await
            .unwrap();
        leases.push((i, c));
    }
    // Each column's ACL names one grain role, whatever the number of sets.
    let longest = pg
        .psql(
            DB,
            "SELECT max(coalesce(array_length(attacl, 1), 0)) FROM pg_attribute \
             WHERE attrelid = 'public.wide'::regclass AND attnum > 0",
        )
        .unwrap();
    assert_eq!(longest.trim(), "1", "longest column ACL");
    // Each user reads exactly its columns.
    for (i, c) in leases.iter().step_by(7) {
        let mut conn = login(&pg, c.username.as_str(), c.password.expose_secret())
            .await
            .unwrap();
        let mine = columns_of(*i).join(", ");
        sqlx::query(&format!("SELECT {mine} FROM public.wide"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let other = (0..COLUMNS).find(|c| i & (1 << c) == 0);
        if let Some(other) = other {
            assert!(sqlx::query(&format!("SELECT c{other} FROM public.wide"))
                .fetch_all(&mut conn)
                .await
                .is_err());
        }
    }
    for (_, c) in &leases {
        p.revoke(&c.username).await.unwrap();
    }
    let left = pg
        .psql(DB, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'p0%'")
        .unwrap();
    assert_eq!(left.trim(), "0", "roles left after every revocation");
}

/// Two databases of one cluster, each with a `public.orders`, each served by its own agent:
/// a lease on one never joins the other's grain role (roles are the cluster's), so it cannot
/// read the other database's table, and reads its own.
#[tokio::test]
async fn a_lease_on_one_database_never_reaches_the_same_named_table_in_another() {
    use p0_core::provision::PostgresProvisioner;
    let pg = setup(PgOptions::default());
    // `other` is left as PostgreSQL makes it: PUBLIC may connect and use `public`.
    pg.psql("postgres", "CREATE DATABASE other").unwrap();
    pg.psql(
        "other",
        "CREATE TABLE public.orders (id int, total int); INSERT INTO orders VALUES (9, 9999);",
    )
    .unwrap();
    let read = |db: &str| -> PermissionSet {
        [
            Permission::new(Privilege::Connect, ObjectRef::database(db)),
            Permission::new(Privilege::Usage, ObjectRef::schema("public")),
            Permission::new(Privilege::Select, ObjectRef::table("public", "orders")),
        ]
        .into_iter()
        .collect()
    };
    let on_other = PostgresProvisioner::connect(
        &pg.url("other"),
        p0_core::GuardPolicy::for_database("other", "postgres"),
    )
    .await
    .unwrap();
    on_other
        .provision(&plan(
            Access::Permissions(read("other")),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    let on_app = provisioner(&pg, policy()).await;
    let c = on_app
        .provision(&plan(Access::Permissions(read(DB)), TimeDelta::minutes(5)))
        .await
        .unwrap();
    let mut mine = login(&pg, c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    sqlx::query("SELECT total FROM public.orders")
        .fetch_all(&mut mine)
        .await
        .expect("the lease reads its own database's table");
    use sqlx::ConnectOptions;
    let mut theirs = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(pg.port)
        .username(c.username.as_str())
        .password(c.password.expose_secret())
        .database("other")
        .connect()
        .await
        .unwrap();
    assert!(
        sqlx::query("SELECT total FROM public.orders")
            .fetch_all(&mut theirs)
            .await
            .is_err(),
        "a lease on `app` read `other`'s orders"
    );
}
