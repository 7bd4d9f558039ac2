//! The fixture and helpers of the PostgreSQL provisioner tests.

use chrono::{Duration as TimeDelta, Utc};
use p0_core::provision::PostgresProvisioner;
use p0_core::{
    Access, GuardPolicy, ObjectRef, Permission, PermissionSet, Privilege, ProvisionPlan, RequestId,
    ResourceId,
};
use p0_testkit::{PgOptions, PgServer};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

pub const DB: &str = "app";

pub fn setup(opts: PgOptions) -> PgServer {
    let pg = PgServer::start_with(opts).unwrap();
    pg.create_hardened_db(DB).unwrap();
    pg.psql(
        DB,
        "CREATE TABLE public.orders (id serial PRIMARY KEY, total int); INSERT INTO orders (total) VALUES (1), (2);
         CREATE TABLE public.secrets (id int, s text); INSERT INTO secrets VALUES (1, 'top');
         CREATE FUNCTION public.definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
         CREATE FUNCTION public.add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
         CREATE PROCEDURE public.noop(n int) LANGUAGE sql AS 'SELECT n';
         REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA public FROM PUBLIC;",
    )
    .unwrap();
    pg
}

pub async fn provisioner(pg: &PgServer, policy: GuardPolicy) -> PostgresProvisioner {
    PostgresProvisioner::connect(&pg.url(DB), policy)
        .await
        .unwrap()
}

pub fn policy() -> GuardPolicy {
    GuardPolicy::for_database(DB, "postgres")
}

pub fn read_orders() -> PermissionSet {
    [
        Permission::new(Privilege::Connect, ObjectRef::database(DB)),
        Permission::new(Privilege::Usage, ObjectRef::schema("public")),
        Permission::new(Privilege::Select, ObjectRef::table("public", "orders")),
    ]
    .into_iter()
    .collect()
}

pub fn plan(access: Access, ttl: TimeDelta) -> ProvisionPlan {
    ProvisionPlan {
        request_id: RequestId::generate(),
        requester: "alice@example.com".into(),
        resource: ResourceId::new("pg/app").unwrap(),
        access,
        expires_at: Utc::now() + ttl,
    }
}

pub async fn login(pg: &PgServer, user: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnectOptions::new()
        .host("127.0.0.1")
        .port(pg.port)
        .username(user)
        .password(password)
        .database(DB)
        .connect()
        .await
}

pub fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// Everything that a refused plan must leave untouched: roles, memberships, ACLs, comments.
pub fn snapshot(pg: &PgServer) -> String {
    pg.psql(
        DB,
        "SELECT (SELECT string_agg(rolname || ':' || coalesce(shobj_description(oid, 'pg_authid'), ''), ',' ORDER BY rolname) FROM pg_roles)
           || '|' || (SELECT coalesce(string_agg(roleid || '>' || member, ',' ORDER BY roleid, member), '') FROM pg_auth_members)
           || '|' || (SELECT string_agg(relname || '=' || coalesce(relacl::text, ''), ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace)
           || '|' || (SELECT string_agg(proname || '=' || coalesce(proacl::text, ''), ',' ORDER BY proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)
           || '|' || (SELECT coalesce(datacl::text, '') FROM pg_database WHERE datname = current_database())",
    )
    .unwrap()
}
