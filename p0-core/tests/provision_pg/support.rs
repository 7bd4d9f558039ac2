//! The fixture and helpers of the PostgreSQL provisioner tests.

use chrono::Duration as TimeDelta;
use p0_core::{Access, ProvisionPlan};
use p0_testkit::{PgOptions, PgServer};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

pub use crate::grant_pg::{policy, provisioner, read_orders, DB};

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

/// A plan of alice's for `access`, expiring `ttl` from now.
pub fn plan(access: Access, ttl: TimeDelta) -> ProvisionPlan {
    crate::grant_pg::plan_for("alice@example.com", access, ttl)
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
