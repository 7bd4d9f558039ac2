//! What a hostile holder of a PostgreSQL grant tries to escalate through, against a real
//! PostgreSQL 15: an allowlisted role that carries more than it shows, and SECURITY DEFINER
//! functions reachable through schema USAGE. Each case is a test of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::Duration as TimeDelta;
use p0_core::{Access, DatabaseProvisioner, GuardError, ProvisionError, RoleName};
use support::grant_pg::{
    count, grant, login, p0_roles, plan_for, policy, provisioner, read_orders, setup, snapshot, DB,
};

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

/// A lease for `requester`, one read through it by its user (who stays logged in), and its
/// revocation's report.
async fn read_then_revoke(
    pg: &p0_testkit::PgServer,
    p: &p0_core::provision::PostgresProvisioner,
    requester: &str,
) -> p0_core::provision::RevokeReport {
    let c = grant(p, requester, TimeDelta::minutes(5)).await;
    let mut conn = login(pg, &c, DB).await;
    sqlx::query("SELECT * FROM public.orders")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    p.revoke(&c.username).await.unwrap()
}

/// The owner of the managed database (a team's application owner, not the agent) sets the
/// database's default search_path to a schema of theirs that shadows the catalog functions
/// the agent calls. Nothing the agent runs, on any of its connections, may resolve to them:
/// they would run with the agent's rights.
#[tokio::test]
async fn a_hostile_default_search_path_runs_no_code_as_the_agent() {
    let pg = setup();
    pg.psql(
        DB,
        "CREATE ROLE dbowner NOLOGIN; ALTER DATABASE app OWNER TO dbowner; \
         CREATE SCHEMA evil AUTHORIZATION dbowner; \
         CREATE TABLE evil.calls (fn text, at timestamptz DEFAULT now()); \
         GRANT ALL ON evil.calls TO PUBLIC; \
         CREATE FUNCTION evil.shobj_description(oid, name) RETURNS text LANGUAGE sql AS \
           $$ INSERT INTO evil.calls (fn) VALUES ('shobj_description'); \
              SELECT pg_catalog.shobj_description($1, $2) $$; \
         CREATE FUNCTION evil.pg_terminate_backend(integer, bigint) RETURNS boolean LANGUAGE sql AS \
           $$ INSERT INTO evil.calls (fn) VALUES ('pg_terminate_backend'); \
              SELECT pg_catalog.pg_terminate_backend($1, $2) $$; \
         CREATE FUNCTION evil.hashtext(text) RETURNS integer LANGUAGE sql AS \
           $$ INSERT INTO evil.calls (fn) VALUES ('hashtext'); SELECT pg_catalog.hashtext($1) $$; \
         CREATE FUNCTION evil.pg_backend_pid() RETURNS integer LANGUAGE sql AS \
           $$ INSERT INTO evil.calls (fn) VALUES ('pg_backend_pid'); SELECT pg_catalog.pg_backend_pid() $$; \
         CREATE FUNCTION evil.current_database() RETURNS name LANGUAGE sql AS \
           $$ INSERT INTO evil.calls (fn) VALUES ('current_database'); SELECT pg_catalog.current_database() $$; \
         ALTER FUNCTION evil.shobj_description(oid, name) OWNER TO dbowner; \
         ALTER FUNCTION evil.pg_terminate_backend(integer, bigint) OWNER TO dbowner; \
         ALTER FUNCTION evil.hashtext(text) OWNER TO dbowner; \
         ALTER FUNCTION evil.pg_backend_pid() OWNER TO dbowner; \
         ALTER FUNCTION evil.current_database() OWNER TO dbowner; \
         ALTER DATABASE app SET search_path = evil, pg_catalog, public",
    )
    .unwrap();
    // The trap works: a plain session of the agent's user resolves to it.
    pg.psql(DB, "SELECT hashtext('x')").unwrap();
    assert_eq!(count(&pg, DB, "SELECT count(*) FROM evil.calls"), 1);
    pg.psql(DB, "DELETE FROM evil.calls").unwrap();
    let p = provisioner(&pg, policy()).await;
    for requester in ["alice@example.com", "bob@example.com"] {
        read_then_revoke(&pg, &p, requester).await;
    }
    let calls = pg
        .psql(
            DB,
            "SELECT coalesce(string_agg(DISTINCT fn, ', '), '') FROM evil.calls",
        )
        .unwrap();
    assert_eq!(
        calls.trim(),
        "",
        "the agent ran the database owner's functions"
    );
    assert_eq!(p0_roles(&pg), 0);
}

/// The owner of the managed database sets defaults that would make the agent's statements
/// fail (read-only transactions, serializable isolation, a short idle timeout): provisioning
/// and revocation go on as if nothing were set.
#[tokio::test]
async fn a_hostile_database_default_cannot_stop_revocation() {
    let pg = setup();
    pg.psql(
        DB,
        "ALTER DATABASE app SET default_transaction_read_only = on; \
         ALTER DATABASE app SET default_transaction_isolation = 'serializable'; \
         ALTER DATABASE app SET idle_in_transaction_session_timeout = '1ms'",
    )
    .unwrap();
    let p = provisioner(&pg, policy()).await;
    let report = read_then_revoke(&pg, &p, "alice@example.com").await;
    assert!(
        report.user_dropped && report.sessions_terminated == 1,
        "{report:?}"
    );
    assert_eq!(p0_roles(&pg), 0);
}

/// The owner of the managed database makes every session on it act as a role of theirs: the
/// agent refuses to work there rather than act with that role's rights.
#[tokio::test]
async fn a_hostile_database_role_setting_is_refused_at_connect() {
    let pg = setup();
    pg.psql(
        DB,
        "CREATE ROLE dbowner NOLOGIN; ALTER DATABASE app OWNER TO dbowner; \
         ALTER DATABASE app SET role = 'dbowner'",
    )
    .unwrap();
    let e = p0_core::provision::PostgresProvisioner::connect(&pg.url(DB), policy())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("runs as another role than the one that logged in") && !e.contains('\n'),
        "{e}"
    );
}
