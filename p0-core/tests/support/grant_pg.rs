//! What the hostile PostgreSQL grant suites share: a PostgreSQL 15 with `app` hardened and two
//! tables, the agent's provisioner over it, plans, logins, and what a refusal must not change.

use chrono::{Duration as TimeDelta, Utc};
use p0_core::provision::PostgresProvisioner;
use p0_core::{
    Access, Credentials, DatabaseProvisioner, GuardPolicy, ObjectRef, Permission, PermissionSet,
    Privilege, ProvisionPlan, RequestId, ResourceId,
};
use p0_testkit::PgServer;
use sqlx::{Connection, PgConnection};

pub const DB: &str = "app";

pub fn setup() -> PgServer {
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

pub fn plan_for(requester: &str, access: Access, ttl: TimeDelta) -> ProvisionPlan {
    ProvisionPlan {
        request_id: RequestId::generate(),
        requester: requester.into(),
        resource: ResourceId::new("pg/app").unwrap(),
        access,
        expires_at: Utc::now() + ttl,
    }
}

pub async fn grant(p: &PostgresProvisioner, requester: &str, ttl: TimeDelta) -> Credentials {
    p.provision(&plan_for(
        requester,
        Access::Permissions(read_orders()),
        ttl,
    ))
    .await
    .unwrap()
}

/// Logs in as the granted user to `database` (CONNECT is PUBLIC's there by default).
pub async fn login(pg: &PgServer, c: &Credentials, database: &str) -> PgConnection {
    PgConnection::connect(&pg.url_as(c.username.as_str(), c.password.expose_secret(), database))
        .await
        .unwrap()
}

pub fn count(pg: &PgServer, database: &str, sql: &str) -> i64 {
    pg.psql(database, sql).unwrap().trim().parse().unwrap()
}

pub fn p0_roles(pg: &PgServer) -> i64 {
    count(
        pg,
        DB,
        // `p0_orphans` stays: it owns what revoked leases left that others depend on.
        "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'p0%' AND rolname <> 'p0_orphans'",
    )
}

/// Everything a refused plan must leave untouched: roles, memberships, ACLs, comments, and
/// request claims (large objects).
pub fn snapshot(pg: &PgServer) -> String {
    pg.psql(
        DB,
        "SELECT (SELECT string_agg(rolname || ':' || coalesce(shobj_description(oid, 'pg_authid'), ''), ',' ORDER BY rolname) FROM pg_roles)
           || '|' || (SELECT coalesce(string_agg(roleid || '>' || member, ',' ORDER BY roleid, member), '') FROM pg_auth_members)
           || '|' || (SELECT string_agg(relname || '=' || coalesce(relacl::text, ''), ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace)
           || '|' || (SELECT coalesce(datacl::text, '') FROM pg_database WHERE datname = current_database())
           || '|' || (SELECT count(*) FROM pg_largeobject_metadata)",
    )
    .unwrap()
}
