//! The PostgreSQL provisioner against a real PostgreSQL 15. The guard's refusals, one test
//! each, are in `provision_pg/guard.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "provision_pg/grains.rs"]
mod grains;
#[path = "support/grant_pg.rs"]
#[allow(dead_code)]
mod grant_pg;
#[path = "provision_pg/guard.rs"]
mod guard;
#[path = "provision_pg/support.rs"]
mod support;

use chrono::{Duration as TimeDelta, Utc};
use p0_core::{
    Access, DatabaseProvisioner, ObjectRef, Permission, PermissionSet, Privilege, ProvisionError,
    RoleName,
};
use p0_testkit::PgOptions;
use sqlx::Connection;
use std::sync::Arc;
use support::{login, plan, policy, provisioner, read_orders, setup, sqlstate, DB};

#[tokio::test]
async fn granted_select_works_and_other_tables_are_denied() {
    let pg = setup(PgOptions::default());
    let p = provisioner(&pg, policy()).await;
    let creds = p
        .provision(&plan(
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    assert!(creds.password.expose_secret().len() >= 32);
    let mut conn = login(&pg, creds.username.as_str(), creds.password.expose_secret())
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let e = sqlx::query("SELECT * FROM secrets")
        .fetch_all(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e).as_deref(), Some("42501"), "{e}");
    let e = sqlx::query("INSERT INTO orders (total) VALUES (3)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e).as_deref(), Some("42501"), "{e}");
    // A wrong password is refused: the server checks SCRAM for real.
    assert!(login(&pg, creds.username.as_str(), "wrong").await.is_err());
}

#[tokio::test]
async fn revoke_ends_sessions_removes_everything_and_is_idempotent() {
    let pg = setup(PgOptions::default());
    let p = provisioner(&pg, policy()).await;
    let creds = p
        .provision(&plan(
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    let mut open = login(&pg, creds.username.as_str(), creds.password.expose_secret())
        .await
        .unwrap();
    sqlx::query("SELECT 1").execute(&mut open).await.unwrap();
    // The user, its set's role, and that role's three grain roles (CONNECT, USAGE, SELECT).
    assert_eq!(
        p.list_managed().await.unwrap().len(),
        5,
        "one user, one set role, three grain roles"
    );

    let report = p.revoke(&creds.username).await.unwrap();
    assert!(report.user_dropped && report.role_dropped);
    assert_eq!(report.sessions_terminated, 1);
    assert!(
        sqlx::query("SELECT 1").execute(&mut open).await.is_err(),
        "open session must be terminated"
    );
    assert!(
        login(&pg, creds.username.as_str(), creds.password.expose_secret())
            .await
            .is_err()
    );
    assert!(p.list_managed().await.unwrap().is_empty());
    assert_eq!(
        pg.psql(DB, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'p0%'")
            .unwrap()
            .trim(),
        "0"
    );

    let again = p.revoke(&creds.username).await.unwrap();
    assert!(!again.user_dropped);
}

#[tokio::test]
async fn shared_role_survives_until_its_last_member_is_revoked() {
    let pg = setup(PgOptions::default());
    let p = provisioner(&pg, policy()).await;
    let a = p
        .provision(&plan(
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    let b = p
        .provision(&plan(
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    assert_eq!(a.role, b.role);
    assert_ne!(a.username, b.username);
    assert!(!p.revoke(&a.username).await.unwrap().role_dropped);
    let mut conn = login(&pg, b.username.as_str(), b.password.expose_secret())
        .await
        .unwrap();
    sqlx::query("SELECT * FROM orders")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(p.revoke(&b.username).await.unwrap().role_dropped);
}

#[tokio::test]
async fn expired_user_cannot_log_in_without_any_revoke() {
    let pg = setup(PgOptions::default());
    let p = provisioner(&pg, policy()).await;
    let creds = p
        .provision(&plan(
            Access::Permissions(read_orders()),
            TimeDelta::seconds(2),
        ))
        .await
        .unwrap();
    login(&pg, creds.username.as_str(), creds.password.expose_secret())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let e = login(&pg, creds.username.as_str(), creds.password.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    // The sweeper removes it.
    let swept = p.sweep(Utc::now()).await.unwrap();
    assert_eq!(swept.removed, vec![creds.username]);
    assert!(swept.failed.is_empty());
    assert!(p.list_managed().await.unwrap().is_empty());
}

#[tokio::test]
async fn server_log_holds_no_password() {
    let pg = setup(PgOptions {
        settings: vec![
            ("log_statement".into(), "all".into()),
            ("log_connections".into(), "on".into()),
        ],
    });
    let p = provisioner(&pg, policy()).await;
    let creds = p
        .provision(&plan(
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    let mut conn = login(&pg, creds.username.as_str(), creds.password.expose_secret())
        .await
        .unwrap();
    sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
    p.revoke(&creds.username).await.unwrap();
    let log = pg.log().unwrap();
    assert!(
        log.contains("CREATE ROLE"),
        "log_statement=all must log the DDL"
    );
    assert!(log.contains("SCRAM-SHA-256$"), "only a verifier is sent");
    assert!(
        !log.contains(creds.password.expose_secret()),
        "password found in the server log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_loops_on_one_table_are_clean() {
    let pg = setup(PgOptions::default());
    let p = Arc::new(provisioner(&pg, policy()).await);
    let mut tasks = Vec::new();
    let pg = Arc::new(pg);
    for i in 0..16 {
        let (p, pg) = (p.clone(), pg.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for j in 0..4 {
                // Half the loops share one permission set, half add a column grant of their own.
                let mut set = read_orders();
                if (i + j) % 2 == 1 {
                    set.insert(Permission {
                        privilege: Privilege::Update,
                        object: ObjectRef::table("public", "orders"),
                        columns: Some(vec!["total".into()]),
                    });
                }
                match p
                    .provision(&plan(Access::Permissions(set), TimeDelta::minutes(5)))
                    .await
                {
                    Ok(c) => {
                        // Every user holds its grant: none joined a role dropped meanwhile.
                        let pw = c.password.expose_secret().to_string();
                        match login(&pg, c.username.as_str(), &pw).await {
                            Ok(mut conn) => {
                                if let Err(e) = sqlx::query("SELECT count(*) FROM public.orders")
                                    .execute(&mut conn)
                                    .await
                                {
                                    errors.push(format!("{}: {e}", c.username));
                                }
                            }
                            Err(e) => errors.push(format!("{}: {e}", c.username)),
                        }
                        if let Err(e) = p.revoke(&c.username).await {
                            errors.push(e.to_string());
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    assert!(errors.is_empty(), "{errors:?}");
    assert!(p.list_managed().await.unwrap().is_empty());
    assert_eq!(
        pg.psql(DB, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'p0%'")
            .unwrap()
            .trim(),
        "0"
    );
    let acl = pg
        .psql(
            DB,
            "SELECT coalesce(relacl::text, '') FROM pg_class WHERE relname = 'orders'",
        )
        .unwrap();
    assert!(!acl.contains("p0"), "ACL entries left behind: {acl}");
}

#[tokio::test]
async fn role_requests_hand_out_only_safe_allowlisted_roles() {
    let pg = setup(PgOptions::default());
    pg.psql(DB, "CREATE ROLE analyst NOLOGIN; GRANT CONNECT ON DATABASE app TO analyst; GRANT USAGE ON SCHEMA public TO analyst; GRANT SELECT ON orders TO analyst;").unwrap();
    let mut pol = policy();
    pol.role_allowlist = vec![RoleName::new("analyst").unwrap()];
    let p = provisioner(&pg, pol).await;
    let creds = p
        .provision(&plan(
            Access::Role(RoleName::new("analyst").unwrap()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    let mut conn = login(&pg, creds.username.as_str(), creds.password.expose_secret())
        .await
        .unwrap();
    sqlx::query("SELECT * FROM orders")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let r = p.revoke(&creds.username).await.unwrap();
    assert!(!r.role_dropped, "an allowlisted role is never dropped");
    assert_eq!(
        pg.psql(
            DB,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'analyst'"
        )
        .unwrap()
        .trim(),
        "1"
    );
}

#[tokio::test]
async fn revoke_refuses_users_p0_did_not_create() {
    let pg = setup(PgOptions::default());
    pg.psql(DB, "CREATE ROLE p0_imposter LOGIN").unwrap();
    let p = provisioner(&pg, policy()).await;
    let e = p.revoke(&"p0_imposter".parse().unwrap()).await.unwrap_err();
    assert!(matches!(e, ProvisionError::NotManaged(_)), "{e}");
    assert_eq!(
        pg.psql(
            DB,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'p0_imposter'"
        )
        .unwrap()
        .trim(),
        "1"
    );
}

#[tokio::test]
async fn hostile_names_stay_inside_their_quotes() {
    let pg = setup(PgOptions::default());
    let hostile = r#"we"ird'; DROP TABLE secrets; -- \ $$ $q$ ü"#;
    pg.psql(
        DB,
        &format!(
            "CREATE TABLE public.\"{}\" (\"c\"\"ol\" int); INSERT INTO public.\"{}\" VALUES (7)",
            hostile.replace('"', "\"\""),
            hostile.replace('"', "\"\"")
        ),
    )
    .unwrap();
    let p = provisioner(&pg, policy()).await;
    let mut set = read_orders();
    set.insert(Permission {
        privilege: Privilege::Select,
        object: ObjectRef::table("public", hostile),
        columns: Some(vec!["c\"ol".into()]),
    });
    let creds = p
        .provision(&plan(Access::Permissions(set), TimeDelta::minutes(5)))
        .await
        .unwrap();
    let mut conn = login(&pg, creds.username.as_str(), creds.password.expose_secret())
        .await
        .unwrap();
    let q = format!(
        "SELECT \"c\"\"ol\" FROM public.\"{}\"",
        hostile.replace('"', "\"\"")
    );
    let v: i32 = sqlx::query_scalar(&q).fetch_one(&mut conn).await.unwrap();
    assert_eq!(v, 7);
    assert_eq!(
        pg.psql(DB, "SELECT count(*) FROM secrets").unwrap().trim(),
        "1"
    );
}

#[test]
fn role_attributes_and_grant_option_cannot_reach_the_provisioner() {
    // The wire form of a plan cannot express them: the agent refuses at parse time.
    let superuser = r#"[{"privilege":"SUPERUSER","object":{"type":"database","name":"app"}}]"#;
    let e = serde_json::from_str::<PermissionSet>(superuser)
        .unwrap_err()
        .to_string();
    assert!(e.contains("never granted"), "{e}");
    let grant_option = r#"[{"privilege":"SELECT","object":{"type":"table","schema":"public","name":"t"},"grant_option":true}]"#;
    assert!(serde_json::from_str::<PermissionSet>(grant_option).is_err());
}

/// A procedure is granted as one: `CALL` runs with the grant, and not without it.
#[tokio::test]
async fn procedures_are_granted_as_procedures() {
    let pg = setup(PgOptions::default());
    let p = provisioner(&pg, policy()).await;
    let mut with_call = read_orders();
    with_call.insert(Permission::new(
        Privilege::Execute,
        ObjectRef::procedure("public", "noop", "integer"),
    ));
    let creds = p
        .provision(&plan(Access::Permissions(with_call), TimeDelta::minutes(5)))
        .await
        .unwrap();
    let mut conn = login(&pg, creds.username.as_str(), creds.password.expose_secret())
        .await
        .unwrap();
    sqlx::query("CALL noop(1)")
        .execute(&mut conn)
        .await
        .unwrap();
    let without = p
        .provision(&plan(
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    let mut conn = login(
        &pg,
        without.username.as_str(),
        without.password.expose_secret(),
    )
    .await
    .unwrap();
    let e = sqlx::query("CALL noop(1)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e).as_deref(), Some("42501"), "{e}");
}
