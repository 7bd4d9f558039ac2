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
