//! What a hostile holder of a PostgreSQL grant tries, against a real PostgreSQL 15: outlive
//! the lease through other databases, escalate through an allowlisted role, reach SECURITY
//! DEFINER functions through schema USAGE. Each case is a test of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration as TimeDelta, Utc};
use p0_core::provision::{PostgresProvisioner, Sweeper};
use p0_core::{
    Access, Credentials, DatabaseProvisioner, GuardError, GuardPolicy, ObjectRef, Permission,
    PermissionSet, Privilege, ProvisionError, ProvisionPlan, RequestId, ResourceId, RoleName,
};
use p0_testkit::PgServer;
use sqlx::{Connection, Executor, PgConnection};

const DB: &str = "app";

fn setup() -> PgServer {
    let pg = PgServer::start().unwrap();
    pg.create_hardened_db(DB).unwrap();
    pg.psql(
        DB,
        "CREATE TABLE public.orders (id int, total int); INSERT INTO orders VALUES (1, 2);
         CREATE TABLE public.secrets (s text); INSERT INTO secrets VALUES ('top');",
    )
    .unwrap();
    pg
}

async fn provisioner(pg: &PgServer, policy: GuardPolicy) -> PostgresProvisioner {
    PostgresProvisioner::connect(&pg.url(DB), policy)
        .await
        .unwrap()
}

fn policy() -> GuardPolicy {
    GuardPolicy::for_database(DB, "postgres")
}

fn read_orders() -> PermissionSet {
    [
        Permission::new(Privilege::Connect, ObjectRef::database(DB)),
        Permission::new(Privilege::Usage, ObjectRef::schema("public")),
        Permission::new(Privilege::Select, ObjectRef::table("public", "orders")),
    ]
    .into_iter()
    .collect()
}

fn plan_for(requester: &str, access: Access, ttl: TimeDelta) -> ProvisionPlan {
    ProvisionPlan {
        request_id: RequestId::generate(),
        requester: requester.into(),
        resource: ResourceId::new("pg/app").unwrap(),
        access,
        expires_at: Utc::now() + ttl,
    }
}

async fn grant(p: &PostgresProvisioner, requester: &str, ttl: TimeDelta) -> Credentials {
    p.provision(&plan_for(
        requester,
        Access::Permissions(read_orders()),
        ttl,
    ))
    .await
    .unwrap()
}

/// Logs in as the granted user to `database` (CONNECT is PUBLIC's there by default).
async fn login(pg: &PgServer, c: &Credentials, database: &str) -> PgConnection {
    PgConnection::connect(&pg.url_as(c.username.as_str(), c.password.expose_secret(), database))
        .await
        .unwrap()
}

fn count(pg: &PgServer, database: &str, sql: &str) -> i64 {
    pg.psql(database, sql).unwrap().trim().parse().unwrap()
}

fn p0_roles(pg: &PgServer) -> i64 {
    count(
        pg,
        DB,
        "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'p0%'",
    )
}

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

#[tokio::test]
async fn a_large_object_owned_through_the_shared_role_does_not_outlive_revoke() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let a = grant(&p, "alice@example.com", TimeDelta::minutes(5)).await;
    // A member may act as its role: what it makes then belongs to the shared role.
    let mut conn = login(&pg, &a, "template1").await;
    conn.execute(format!("SET ROLE \"{}\"", a.role).as_str())
        .await
        .unwrap();
    let oid: i64 = sqlx::query_scalar("SELECT lo_create(0)::oid::int8")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let r = p.revoke(&a.username).await.unwrap();
    assert!(r.user_dropped && r.role_dropped, "{r:?}");
    assert_eq!(p0_roles(&pg), 0);
    nothing_left_in_template1(&pg, oid as u32);
}

#[tokio::test]
async fn an_object_others_depend_on_is_kept_and_revocation_still_completes() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let a = grant(&p, "alice@example.com", TimeDelta::minutes(5)).await;
    // The user owns a table that someone else's view depends on: DROP OWNED alone fails.
    pg.psql(
        DB,
        &format!(
            "CREATE TABLE public.scratch (v int); ALTER TABLE public.scratch OWNER TO \"{}\"; \
             CREATE VIEW public.on_scratch AS SELECT v FROM public.scratch",
            a.username
        ),
    )
    .unwrap();
    let r = p.revoke(&a.username).await.unwrap();
    assert!(r.user_dropped && r.role_dropped, "{r:?}");
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("to the agent's user: other objects depend on them")),
        "{r:?}"
    );
    assert_eq!(p0_roles(&pg), 0);
    assert_eq!(
        pg.psql(
            DB,
            "SELECT tableowner FROM pg_tables WHERE tablename = 'scratch'"
        )
        .unwrap()
        .trim(),
        "postgres"
    );
    assert_eq!(count(&pg, DB, "SELECT count(*) FROM public.on_scratch"), 0);
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

/// Everything a refused plan must leave untouched: roles, memberships, ACLs, comments.
fn snapshot(pg: &PgServer) -> String {
    pg.psql(
        DB,
        "SELECT (SELECT string_agg(rolname || ':' || coalesce(shobj_description(oid, 'pg_authid'), ''), ',' ORDER BY rolname) FROM pg_roles)
           || '|' || (SELECT coalesce(string_agg(roleid || '>' || member, ',' ORDER BY roleid, member), '') FROM pg_auth_members)
           || '|' || (SELECT string_agg(relname || '=' || coalesce(relacl::text, ''), ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace)
           || '|' || (SELECT coalesce(datacl::text, '') FROM pg_database WHERE datname = current_database())",
    )
    .unwrap()
}

/// An allowlisted role `granted`, set up by `setup_sql`, is refused with `why` in the error;
/// nothing changes.
async fn allowlisted_role_is_refused(setup_sql: &str, why: &str) {
    let pg = setup();
    pg.psql(DB, setup_sql).unwrap();
    let mut pol = policy();
    pol.role_allowlist = vec![RoleName::new("granted").unwrap()];
    let p = provisioner(&pg, pol).await;
    let before = snapshot(&pg);
    let e = p
        .provision(&plan_for(
            "mallory@example.com",
            Access::Role(RoleName::new("granted").unwrap()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, ProvisionError::Guard(GuardError::PrivilegedRole(..))),
        "{msg}"
    );
    assert!(msg.contains(why) && !msg.contains('\n'), "{msg}");
    assert_eq!(snapshot(&pg), before, "{msg}");
    assert_eq!(p0_roles(&pg), 0);
}

macro_rules! role_cases {
    ($($name:ident: $sql:expr => $why:expr;)*) => {
        $( #[tokio::test] async fn $name() { allowlisted_role_is_refused($sql, $why).await } )*
    };
}

role_cases! {
    an_allowlisted_role_in_pg_write_all_data_is_refused:
        "CREATE ROLE granted NOLOGIN; GRANT pg_write_all_data TO granted" => "`pg_write_all_data`";
    an_allowlisted_role_inheriting_pg_read_all_data_is_refused:
        "CREATE ROLE middle NOLOGIN; GRANT pg_read_all_data TO middle; CREATE ROLE granted NOLOGIN; GRANT middle TO granted"
        => "`pg_read_all_data`";
    an_allowlisted_role_in_pg_monitor_is_refused:
        "CREATE ROLE granted NOLOGIN; GRANT pg_monitor TO granted" => "`pg_monitor`";
    an_allowlisted_role_in_pg_checkpoint_is_refused:
        "CREATE ROLE granted NOLOGIN; GRANT pg_checkpoint TO granted" => "`pg_checkpoint`";
    an_allowlisted_role_a_member_of_pg_monitor_without_inherit_is_refused:
        "CREATE ROLE middle NOLOGIN NOINHERIT; GRANT pg_monitor TO middle; CREATE ROLE granted NOLOGIN; GRANT middle TO granted"
        => "`pg_monitor`";
    an_allowlisted_role_with_admin_option_on_another_role_is_refused:
        "CREATE ROLE other NOLOGIN; CREATE ROLE granted NOLOGIN; GRANT other TO granted WITH ADMIN OPTION" => "ADMIN OPTION on `other`";
    an_allowlisted_role_inheriting_admin_option_is_refused:
        "CREATE ROLE other NOLOGIN; CREATE ROLE middle NOLOGIN; GRANT other TO middle WITH ADMIN OPTION; \
         CREATE ROLE granted NOLOGIN; GRANT middle TO granted" => "ADMIN OPTION on `other` (through `middle`)";
    an_allowlisted_role_that_owns_a_table_is_refused:
        "CREATE ROLE granted NOLOGIN; ALTER TABLE public.orders OWNER TO granted" => "ownership of 1 object(s)";
    an_allowlisted_role_inheriting_ownership_is_refused:
        "CREATE ROLE owner NOLOGIN; ALTER TABLE public.secrets OWNER TO owner; CREATE ROLE granted NOLOGIN; GRANT owner TO granted"
        => "ownership of 1 object(s) (through `owner`)";
    an_allowlisted_role_with_a_grant_option_is_refused:
        "CREATE ROLE granted NOLOGIN; GRANT SELECT ON public.secrets TO granted WITH GRANT OPTION" => "GRANT OPTION on public.secrets";
}

#[tokio::test]
async fn a_plain_allowlisted_role_is_still_granted() {
    let pg = setup();
    pg.psql(
        DB,
        "CREATE ROLE granted NOLOGIN; GRANT CONNECT ON DATABASE app TO granted; \
         GRANT USAGE ON SCHEMA public TO granted; GRANT SELECT ON orders TO granted",
    )
    .unwrap();
    let mut pol = policy();
    pol.role_allowlist = vec![RoleName::new("granted").unwrap()];
    let p = provisioner(&pg, pol).await;
    let c = p
        .provision(&plan_for(
            "alice@example.com",
            Access::Role(RoleName::new("granted").unwrap()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    let mut conn = login(&pg, &c, DB).await;
    sqlx::query("SELECT * FROM orders")
        .fetch_all(&mut conn)
        .await
        .unwrap();
}

/// A SECURITY DEFINER function owned by the superuser, that PUBLIC may execute (PostgreSQL's
/// default for a function created where no default privileges say otherwise).
const DEFINER: &str = "CREATE FUNCTION public.read_secret(i int) RETURNS text LANGUAGE sql SECURITY DEFINER \
     AS 'SELECT s FROM public.secrets'; GRANT EXECUTE ON FUNCTION public.read_secret(int) TO PUBLIC";

#[tokio::test]
async fn a_definer_function_reachable_through_schema_usage_is_refused_naming_it_and_the_fix() {
    let pg = setup();
    pg.psql(DB, DEFINER).unwrap();
    let p = provisioner(&pg, policy()).await;
    let before = snapshot(&pg);
    let e = p
        .provision(&plan_for(
            "mallory@example.com",
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, ProvisionError::Guard(GuardError::ReachableDefiner(_))),
        "{msg}"
    );
    assert!(msg.contains("`public.read_secret(integer)`"), "{msg}");
    assert!(
        msg.contains("REVOKE EXECUTE ON FUNCTION public.read_secret(integer) FROM PUBLIC"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
    assert_eq!(snapshot(&pg), before);
    // With the fix applied, the same plan is granted.
    pg.psql(
        DB,
        "REVOKE EXECUTE ON FUNCTION public.read_secret(int) FROM PUBLIC",
    )
    .unwrap();
    p.provision(&plan_for(
        "mallory@example.com",
        Access::Permissions(read_orders()),
        TimeDelta::minutes(5),
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn a_definer_function_named_in_the_agents_setting_is_allowed() {
    let pg = setup();
    pg.psql(DB, DEFINER).unwrap();
    let mut pol = policy();
    // Any spelling PostgreSQL resolves to the same function.
    pol.allow_definer_functions =
        vec!["public.read_secret(int4)".into(), "not a function((".into()];
    let p = provisioner(&pg, pol).await;
    let c = p
        .provision(&plan_for(
            "alice@example.com",
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap();
    let mut conn = login(&pg, &c, DB).await;
    sqlx::query("SELECT * FROM orders")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    // Another definer function in the same schema is still refused.
    pg.psql(
        DB,
        "CREATE FUNCTION public.other() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'; \
         GRANT EXECUTE ON FUNCTION public.other() TO PUBLIC",
    )
    .unwrap();
    let e = p
        .provision(&plan_for(
            "alice@example.com",
            Access::Permissions(read_orders()),
            TimeDelta::minutes(5),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`public.other()`") && !e.contains("read_secret"),
        "{e}"
    );
}

#[tokio::test]
async fn explain_lists_reachable_definer_functions() {
    let pg = setup();
    pg.psql(DB, DEFINER).unwrap();
    let found =
        p0_core::provision::reachable_definer_functions_at(&pg.url(DB), &["public".to_string()])
            .await
            .unwrap();
    assert_eq!(found, ["public.read_secret(integer)"]);
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
