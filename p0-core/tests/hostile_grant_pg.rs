//! What a hostile holder of a PostgreSQL grant tries to outlive its lease with, against a real
//! PostgreSQL 15: objects in other databases, objects others depend on, a user the sweeper
//! cannot remove, databases open to any user. Each case is a test of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{Duration as TimeDelta, Utc};
use p0_core::provision::Sweeper;
use p0_core::{Credentials, DatabaseProvisioner};
use p0_testkit::PgServer;
use sqlx::{Connection, Executor, PgConnection};
use support::grant_pg::{count, grant, login, p0_roles, policy, provisioner, setup, DB};

/// `a` plants what would make DROP ROLE fail forever: a large object in `template1`, whose
/// rights it grants to `b`, and default privileges there for `b`.
async fn plant_in_template1(pg: &PgServer, a: &Credentials, b: &Credentials) -> u32 {
    let mut conn = login(pg, a, "template1").await;
    let oid: u32 = sqlx::query_scalar("SELECT lo_create(0)::oid::int8")
        .fetch_one(&mut conn)
        .await
        .map(|o: i64| o as u32)
        .unwrap();
    let b = b.username.as_str();
    conn.execute(
        format!(
            "GRANT SELECT, UPDATE ON LARGE OBJECT {oid} TO \"{b}\"; \
             ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO \"{b}\""
        )
        .as_str(),
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
    oid
}

fn nothing_left_in_template1(pg: &PgServer, oid: u32) {
    assert_eq!(
        count(
            pg,
            "template1",
            &format!("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = {oid}")
        ),
        0,
        "the large object stays in template1"
    );
    assert_eq!(
        count(pg, "template1", "SELECT count(*) FROM pg_default_acl"),
        0
    );
    assert_eq!(
        count(pg, DB, "SELECT count(*) FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'template1'"),
        0
    );
}

#[tokio::test]
async fn a_large_object_in_template1_granted_to_a_second_user_does_not_outlive_revoke() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let a = grant(&p, "alice@example.com", TimeDelta::minutes(5)).await;
    let b = grant(&p, "bob@example.com", TimeDelta::minutes(5)).await;
    let oid = plant_in_template1(&pg, &a, &b).await;
    // A session of `b` in template1 is ended too.
    let mut open = login(&pg, &b, "template1").await;
    sqlx::query("SELECT 1").execute(&mut open).await.unwrap();
    // Both orders work: the holder of the rights first, then the owner.
    let rb = p.revoke(&b.username).await.unwrap();
    assert!(rb.user_dropped && rb.sessions_terminated == 1, "{rb:?}");
    assert!(sqlx::query("SELECT 1").execute(&mut open).await.is_err());
    let ra = p.revoke(&a.username).await.unwrap();
    assert!(ra.user_dropped && ra.role_dropped, "{ra:?}");
    assert!(
        ra.notes
            .iter()
            .any(|n| n.contains("in database `template1`")),
        "{ra:?}"
    );
    assert_eq!(p0_roles(&pg), 0);
    nothing_left_in_template1(&pg, oid);
}

/// Acting as `role` (the user's set role, or one of its grain roles), `user` makes a large
/// object in `template1`; revocation must leave nothing there.
async fn a_large_object_made_as(
    pg: &PgServer,
    p: &impl DatabaseProvisioner,
    user: &Credentials,
    role: &str,
) {
    let mut conn = login(pg, user, "template1").await;
    conn.execute(format!("SET ROLE \"{role}\"").as_str())
        .await
        .unwrap();
    let oid: i64 = sqlx::query_scalar("SELECT lo_create(0)::oid::int8")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let r = p.revoke(&user.username).await.unwrap();
    assert!(r.user_dropped && r.role_dropped, "{r:?}");
    assert_eq!(p0_roles(pg), 0);
    nothing_left_in_template1(pg, oid as u32);
}

#[tokio::test]
async fn a_large_object_owned_through_the_shared_role_does_not_outlive_revoke() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let a = grant(&p, "alice@example.com", TimeDelta::minutes(5)).await;
    // A member may act as its role: what it makes then belongs to the shared role.
    a_large_object_made_as(&pg, &p, &a, &a.role.to_string()).await;
}

#[tokio::test]
async fn a_large_object_owned_through_a_grain_role_does_not_outlive_revoke() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let a = grant(&p, "alice@example.com", TimeDelta::minutes(5)).await;
    // The set role's grain roles are its; a member may act as any of them, anywhere.
    let grain = pg
        .psql(
            DB,
            &format!(
                "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
                 JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '{}' LIMIT 1",
                a.role
            ),
        )
        .unwrap();
    let grain = grain.trim();
    assert!(grain.starts_with("p0g_"), "{grain}");
    a_large_object_made_as(&pg, &p, &a, grain).await;
}

/// `user` owns a table that someone else's view depends on: DROP OWNED alone fails.
fn owns_what_a_view_depends_on(pg: &PgServer, user: &Credentials) {
    pg.psql(
        DB,
        &format!(
            "CREATE TABLE public.scratch (v int); ALTER TABLE public.scratch OWNER TO \"{}\"; \
             CREATE VIEW public.on_scratch AS SELECT v FROM public.scratch",
            user.username
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn an_object_others_depend_on_is_kept_and_revocation_still_completes() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let a = grant(&p, "alice@example.com", TimeDelta::minutes(5)).await;
    owns_what_a_view_depends_on(&pg, &a);
    let r = p.revoke(&a.username).await.unwrap();
    assert!(r.user_dropped && r.role_dropped, "{r:?}");
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("to `p0_orphans`") && n.contains("other objects depend on them")),
        "{r:?}"
    );
    assert_eq!(p0_roles(&pg), 0);
    // Its new owner is powerless: never the agent's admin (a SECURITY DEFINER function would
    // run as its owner), no login, no attribute, a member of nothing.
    assert_eq!(
        pg.psql(
            DB,
            "SELECT tableowner FROM pg_tables WHERE tablename = 'scratch'"
        )
        .unwrap()
        .trim(),
        "p0_orphans"
    );
    assert_eq!(
        count(
            &pg,
            DB,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'p0_orphans' AND NOT rolcanlogin \
             AND NOT rolsuper AND NOT rolcreaterole AND NOT rolcreatedb AND NOT rolreplication \
             AND NOT rolbypassrls AND NOT EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = pg_roles.oid)"
        ),
        1
    );
    assert_eq!(count(&pg, DB, "SELECT count(*) FROM public.on_scratch"), 0);
}

#[tokio::test]
async fn a_p0_orphans_role_with_rights_never_inherits_objects() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let a = grant(&p, "alice@example.com", TimeDelta::minutes(5)).await;
    // Someone made a role of that name that can log in: objects given to it would be theirs.
    pg.psql(DB, "CREATE ROLE p0_orphans LOGIN PASSWORD 'x'")
        .unwrap();
    owns_what_a_view_depends_on(&pg, &a);
    let e = p.revoke(&a.username).await.unwrap_err().to_string();
    assert!(e.contains("`p0_orphans`") && !e.contains('\n'), "{e}");
    assert_eq!(
        pg.psql(
            DB,
            "SELECT tableowner FROM pg_tables WHERE tablename = 'scratch'"
        )
        .unwrap()
        .trim(),
        a.username.as_str()
    );
}

#[tokio::test]
async fn a_large_object_in_template1_does_not_outlive_the_sweeper() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let a = grant(&p, "alice@example.com", TimeDelta::seconds(3)).await;
    let b = grant(&p, "bob@example.com", TimeDelta::seconds(3)).await;
    let oid = plant_in_template1(&pg, &a, &b).await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let r = p.sweep(Utc::now()).await.unwrap();
    assert!(r.failed.is_empty(), "{r:?}");
    assert_eq!(r.removed.len(), 2, "{r:?}");
    assert_eq!(p0_roles(&pg), 0);
    nothing_left_in_template1(&pg, oid);
}

#[tokio::test]
async fn a_sweep_goes_on_past_a_user_it_cannot_remove_and_reports_it() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    // `aaa` sorts first: the sweep meets it before the others.
    let stuck = grant(&p, "aaa@example.com", TimeDelta::seconds(3)).await;
    let others = [
        grant(&p, "bob@example.com", TimeDelta::seconds(3)).await,
        grant(&p, "carol@example.com", TimeDelta::seconds(3)).await,
    ];
    // It owns a large object in a database nobody can connect to.
    pg.psql("postgres", "CREATE DATABASE frozen").unwrap();
    pg.psql(
        "frozen",
        &format!(
            "SELECT lo_create(4242); ALTER LARGE OBJECT 4242 OWNER TO \"{}\"",
            stuck.username
        ),
    )
    .unwrap();
    pg.psql(
        "postgres",
        "ALTER DATABASE frozen WITH ALLOW_CONNECTIONS false",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;

    let sweeper = Sweeper::new(TimeDelta::seconds(60), TimeDelta::minutes(10));
    let r = sweeper.run(&p, Utc::now()).await.unwrap();
    let mut removed: Vec<String> = r.removed.iter().map(|u| u.to_string()).collect();
    removed.sort();
    let mut expected: Vec<String> = others.iter().map(|c| c.username.to_string()).collect();
    expected.sort();
    assert_eq!(removed, expected, "{r:?}");
    assert_eq!(r.failed.len(), 1, "{r:?}");
    let f = &r.failed[0];
    assert_eq!(f.user, stuck.username.as_str());
    assert!(
        f.error.contains("`frozen`") && !f.error.contains('\n'),
        "{f:?}"
    );
    assert_eq!(f.attempts, 1);
    assert!(f.retry_at.is_some());
    assert_eq!(sweeper.failing(), 1);
    // It cannot log in meanwhile, and the next sweep leaves it to its backoff.
    assert!(PgConnection::connect(&pg.url_as(
        stuck.username.as_str(),
        stuck.password.expose_secret(),
        DB
    ))
    .await
    .is_err());
    let r = sweeper.run(&p, Utc::now()).await.unwrap();
    assert_eq!(r.deferred, [stuck.username.to_string()]);
    // Once the database takes connections again, the retry removes it.
    pg.psql(
        "postgres",
        "ALTER DATABASE frozen WITH ALLOW_CONNECTIONS true",
    )
    .unwrap();
    let r = sweeper
        .run(&p, Utc::now() + TimeDelta::seconds(61))
        .await
        .unwrap();
    assert_eq!(r.removed, vec![stuck.username.clone()], "{r:?}");
    assert_eq!(p0_roles(&pg), 0);
    assert_eq!(sweeper.failing(), 0);
}

#[tokio::test]
async fn databases_any_user_can_connect_to_outside_the_grant_are_reported() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    // `app` is hardened; `template0` takes no connections.
    assert_eq!(
        p.databases_open_to_public().await.unwrap(),
        ["postgres", "template1"]
    );
    pg.psql(
        "postgres",
        "REVOKE CONNECT ON DATABASE template1 FROM PUBLIC",
    )
    .unwrap();
    assert_eq!(p.databases_open_to_public().await.unwrap(), ["postgres"]);
}

/// The holder logs in again and again, from many connections at once, while its lease is
/// revoked: a login that passed authentication just before `NOLOGIN` committed must not leave
/// a session behind. Every connection it holds afterwards is dead.
#[tokio::test]
async fn logins_racing_the_revocation_leave_no_session_behind() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let mut ended = 0;
    for round in 0..3 {
        let c = grant(
            &p,
            &format!("mallory{round}@example.com"),
            TimeDelta::minutes(5),
        )
        .await;
        let url = pg.url_as(c.username.as_str(), c.password.expose_secret(), DB);
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (url, stop) = (url.clone(), stop.clone());
            tasks.spawn(async move {
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(conn) = PgConnection::connect(&url).await {
                        held.push(conn);
                    }
                }
                held
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let report = p.revoke(&c.username).await.unwrap();
        assert!(report.user_dropped, "{report:?}");
        ended += report.sessions_terminated;
        stop.store(true, Ordering::Relaxed);
        while let Some(held) = tasks.join_next().await {
            for mut conn in held.unwrap() {
                let alive = sqlx::query("SELECT 1").execute(&mut conn).await.is_ok();
                assert!(
                    !alive,
                    "round {round}: a session of the revoked user is still alive"
                );
            }
        }
    }
    assert!(
        ended > 0,
        "no session was open when the leases were revoked"
    );
    assert_eq!(p0_roles(&pg), 0);
}
