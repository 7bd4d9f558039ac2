//! One provisioner suite, run against every back-end: PostgreSQL 15 and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeDelta, Utc};
use p0_core::provision::{MySqlProvisioner, PostgresProvisioner};
use p0_core::{
    Access, Credentials, DatabaseProvisioner, GuardPolicy, ObjectRef, Permission, PermissionSet,
    Privilege, ProvisionPlan, RequestId, ResourceId,
};
use p0_testkit::{MariaDbServer, PgOptions, PgServer};
use sqlx::Connection;
use std::sync::Arc;

enum Db {
    Pg(PgServer),
    My(MariaDbServer),
}

enum Conn {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
}

impl Conn {
    async fn run(&mut self, sql: &str) -> Result<(), String> {
        use sqlx::Executor;
        match self {
            Conn::Pg(c) => c.execute(sql).await.map(|_| ()).map_err(|e| e.to_string()),
            Conn::My(c) => c.execute(sql).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

const APP: &str = "app";

impl Db {
    fn start(mysql: bool, log_all: bool) -> Db {
        if mysql {
            let db = MariaDbServer::start().unwrap();
            db.sql("CREATE DATABASE app; CREATE TABLE app.orders (id int, total int); INSERT INTO app.orders VALUES (1, 2); \
                    CREATE TABLE app.secrets (s text); INSERT INTO app.secrets VALUES ('x');")
                .unwrap();
            Db::My(db)
        } else {
            let settings = if log_all {
                vec![("log_statement".to_string(), "all".to_string())]
            } else {
                vec![]
            };
            let pg = PgServer::start_with(PgOptions { settings }).unwrap();
            pg.create_hardened_db(APP).unwrap();
            pg.psql(APP, "CREATE TABLE orders (id int, total int); INSERT INTO orders VALUES (1, 2); CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('x');").unwrap();
            Db::Pg(pg)
        }
    }

    async fn provisioner(&self) -> Arc<dyn DatabaseProvisioner> {
        match self {
            Db::Pg(pg) => Arc::new(
                PostgresProvisioner::connect(
                    &pg.url(APP),
                    GuardPolicy::for_database(APP, "postgres"),
                )
                .await
                .unwrap(),
            ),
            Db::My(db) => Arc::new(
                MySqlProvisioner::connect(&db.url(""), GuardPolicy::for_database(APP, "root"), "%")
                    .await
                    .unwrap(),
            ),
        }
    }

    /// The provisioner and a fresh user who may read `orders` for five minutes.
    async fn reader(&self) -> (Arc<dyn DatabaseProvisioner>, Credentials) {
        let p = self.provisioner().await;
        let c = p
            .provision(&plan(self.read("orders"), TimeDelta::minutes(5)))
            .await
            .unwrap();
        (p, c)
    }

    fn table(&self, name: &str) -> ObjectRef {
        match self {
            Db::Pg(_) => ObjectRef::table("public", name),
            Db::My(_) => ObjectRef::table(APP, name),
        }
    }

    fn read(&self, table: &str) -> PermissionSet {
        let mut s: PermissionSet = [Permission::new(Privilege::Select, self.table(table))]
            .into_iter()
            .collect();
        if let Db::Pg(_) = self {
            s.insert(Permission::new(
                Privilege::Connect,
                ObjectRef::database(APP),
            ));
            s.insert(Permission::new(
                Privilege::Usage,
                ObjectRef::schema("public"),
            ));
        }
        s
    }

    fn qualified(&self, table: &str) -> String {
        match self {
            Db::Pg(_) => format!("public.\"{}\"", table.replace('"', "\"\"")),
            Db::My(_) => format!("app.`{}`", table.replace('`', "``")),
        }
    }

    async fn login(&self, user: &str, password: &str) -> Result<Conn, String> {
        match self {
            Db::Pg(pg) => sqlx::PgConnection::connect(&pg.url_as(user, password, APP))
                .await
                .map(Conn::Pg)
                .map_err(|e| e.to_string()),
            Db::My(db) => sqlx::MySqlConnection::connect(&format!(
                "mysql://{user}:{password}@127.0.0.1:{}/",
                db.port
            ))
            .await
            .map(Conn::My)
            .map_err(|e| e.to_string()),
        }
    }

    fn managed_accounts(&self) -> usize {
        let out = match self {
            Db::Pg(pg) => pg
                .psql(
                    APP,
                    "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'p0%'",
                )
                .unwrap(),
            Db::My(db) => db
                .sql("SELECT COUNT(*) FROM mysql.user WHERE user LIKE 'p0%'")
                .unwrap(),
        };
        out.trim().parse().unwrap()
    }

    fn log(&self) -> String {
        match self {
            Db::Pg(pg) => pg.log().unwrap(),
            Db::My(db) => db.general_log().unwrap(),
        }
    }

    fn create_table(&self, name: &str) {
        match self {
            Db::Pg(pg) => pg
                .psql(
                    APP,
                    &format!(
                        "CREATE TABLE {} (v int); INSERT INTO {} VALUES (7)",
                        self.qualified(name),
                        self.qualified(name)
                    ),
                )
                .unwrap(),
            Db::My(db) => db
                .sql(&format!(
                    "CREATE TABLE {} (v int); INSERT INTO {} VALUES (7)",
                    self.qualified(name),
                    self.qualified(name)
                ))
                .unwrap(),
        };
    }
}

fn plan(set: PermissionSet, ttl: TimeDelta) -> ProvisionPlan {
    ProvisionPlan {
        request_id: RequestId::generate(),
        requester: "alice@example.com".into(),
        resource: ResourceId::new("db/app").unwrap(),
        access: Access::Permissions(set),
        expires_at: Utc::now() + ttl,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_database_wide_grants() {
    let db = Db::start(true, false);
    let p = db.provisioner().await;
    let set: PermissionSet = [Permission::new(Privilege::Select, ObjectRef::database(APP))]
        .into_iter()
        .collect();
    let c = p
        .provision(&plan(set, TimeDelta::minutes(5)))
        .await
        .unwrap();
    let mut conn = db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    conn.run("SELECT * FROM app.orders").await.unwrap();
    conn.run("SELECT * FROM app.secrets").await.unwrap();
    assert!(conn
        .run("DELETE FROM app.orders")
        .await
        .unwrap_err()
        .contains("denied"));
    for bad in [Privilege::Create, Privilege::Truncate] {
        let set: PermissionSet = [Permission::new(bad, ObjectRef::database(APP))]
            .into_iter()
            .collect();
        assert!(
            p.provision(&plan(set, TimeDelta::minutes(5)))
                .await
                .is_err(),
            "{bad}"
        );
    }
    let set: PermissionSet = [Permission::new(
        Privilege::Select,
        ObjectRef::database("mysql"),
    )]
    .into_iter()
    .collect();
    assert!(p
        .provision(&plan(set, TimeDelta::minutes(5)))
        .await
        .is_err());
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(false).await } )* }
        mod mariadb { $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(true).await } )* }
    };
}

conformance!(
    grants_exactly_the_plan,
    revoke_ends_sessions_removes_everything_twice,
    expired_users_cannot_log_in,
    logs_hold_no_password,
    sixteen_concurrent_loops_are_clean,
    hostile_names_stay_quoted,
    refusals_create_nothing,
    revoke_reports_objects_the_user_owned_or_defined,
    a_sweep_goes_on_past_a_user_it_cannot_remove,
);

/// One expired user that cannot be removed (PostgreSQL: it owns a large object in a database
/// that takes no connections; MariaDB: its account was renamed behind p0's back) does not keep
/// the sweeper from removing the others, and is reported with the reason.
async fn a_sweep_goes_on_past_a_user_it_cannot_remove(mysql: bool) {
    let db = Db::start(mysql, false);
    let p = db.provisioner().await;
    let grant = |requester: &'static str| {
        let p = p.clone();
        let set = db.read("orders");
        async move {
            let mut pl = plan(set, TimeDelta::seconds(2));
            pl.requester = requester.into();
            p.provision(&pl).await.unwrap()
        }
    };
    // `aaa` sorts first: the sweep meets it before the others.
    let stuck = grant("aaa@example.com").await;
    let others = [
        grant("bob@example.com").await,
        grant("carol@example.com").await,
    ];
    let user = stuck.username.as_str();
    match &db {
        Db::Pg(pg) => {
            pg.psql("postgres", "CREATE DATABASE frozen").unwrap();
            pg.psql(
                "frozen",
                &format!("SELECT lo_create(4242); ALTER LARGE OBJECT 4242 OWNER TO \"{user}\""),
            )
            .unwrap();
            pg.psql(
                "postgres",
                "ALTER DATABASE frozen WITH ALLOW_CONNECTIONS false",
            )
            .unwrap();
        }
        Db::My(m) => {
            m.sql(&format!("RENAME USER '{user}'@'%' TO '{user}'@'10.9.9.9'"))
                .unwrap();
        }
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let r = p.sweep(Utc::now()).await.unwrap();
    let mut removed: Vec<String> = r.removed.iter().map(|u| u.to_string()).collect();
    removed.sort();
    let mut expected: Vec<String> = others.iter().map(|c| c.username.to_string()).collect();
    expected.sort();
    assert_eq!(removed, expected, "{r:?}");
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert_eq!(r.failed[0].user, user);
    assert!(
        !r.failed[0].error.is_empty() && !r.failed[0].error.contains('\n'),
        "{r:?}"
    );
    // What is left: the stuck user and the role it still holds.
    assert_eq!(db.managed_accounts(), 2);
}

/// PostgreSQL drops what the user owned (`DROP OWNED`) and says so; MySQL cannot drop a view or
/// routine whose DEFINER is the user without losing it, so revocation reports them instead of
/// leaving them to fail silently.
async fn revoke_reports_objects_the_user_owned_or_defined(mysql: bool) {
    let db = Db::start(mysql, false);
    let (p, c) = db.reader().await;
    let user = c.username.as_str();
    match &db {
        Db::Pg(pg) => pg
            .psql(
                APP,
                &format!("CREATE TABLE scratch (v int); ALTER TABLE scratch OWNER TO \"{user}\""),
            )
            .unwrap(),
        Db::My(m) => m
            .sql(&format!(
                "CREATE DEFINER = '{user}'@'%' VIEW app.by_user AS SELECT 1 AS one; \
                 CREATE DEFINER = '{user}'@'%' FUNCTION app.by_user_fn() RETURNS int DETERMINISTIC RETURN 1"
            ))
            .unwrap(),
    };
    let r = p.revoke(&c.username).await.unwrap();
    assert!(r.user_dropped, "{r:?}");
    let expected = if mysql {
        format!("2 object(s) have DEFINER `{user}@%`")
    } else {
        format!("dropped 1 object(s) owned by `{user}`")
    };
    assert!(
        r.notes.iter().any(|n| n.contains(&expected)),
        "{expected} in {r:?}"
    );
    assert_eq!(db.managed_accounts(), 0);
    // A second revocation has nothing left to report.
    assert!(p.revoke(&c.username).await.unwrap().notes.is_empty());
}

async fn grants_exactly_the_plan(mysql: bool) {
    let db = Db::start(mysql, false);
    let (p, c) = db.reader().await;
    assert!(c.username.as_str().len() <= p.max_username_len());
    let mut conn = db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    conn.run(&format!("SELECT * FROM {}", db.qualified("orders")))
        .await
        .unwrap();
    let e = conn
        .run(&format!("SELECT * FROM {}", db.qualified("secrets")))
        .await
        .unwrap_err();
    assert!(e.contains("denied"), "{e}");
    let e = conn
        .run(&format!("DELETE FROM {}", db.qualified("orders")))
        .await
        .unwrap_err();
    assert!(e.contains("denied"), "{e}");
    assert!(db.login(c.username.as_str(), "wrong").await.is_err());
}

async fn revoke_ends_sessions_removes_everything_twice(mysql: bool) {
    let db = Db::start(mysql, false);
    let (p, c) = db.reader().await;
    let mut open = db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    open.run("SELECT 1").await.unwrap();
    let r = p.revoke(&c.username).await.unwrap();
    assert!(
        r.user_dropped && r.role_dropped && r.sessions_terminated >= 1,
        "{r:?}"
    );
    assert!(
        open.run("SELECT 1").await.is_err(),
        "the open session must be ended"
    );
    assert!(db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .is_err());
    assert_eq!(db.managed_accounts(), 0);
    assert!(p.list_managed().await.unwrap().is_empty());
    assert!(!p.revoke(&c.username).await.unwrap().user_dropped);
}

async fn expired_users_cannot_log_in(mysql: bool) {
    let db = Db::start(mysql, false);
    let p = db.provisioner().await;
    let c = p
        .provision(&plan(db.read("orders"), TimeDelta::seconds(2)))
        .await
        .unwrap();
    db.login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    // PostgreSQL: VALID UNTIL; MariaDB: the one-shot event (scheduler resolution one second).
    tokio::time::sleep(std::time::Duration::from_secs(if mysql { 5 } else { 3 })).await;
    assert!(db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .is_err());
}

async fn logs_hold_no_password(mysql: bool) {
    let db = Db::start(mysql, true);
    let (p, c) = db.reader().await;
    let mut conn = db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    conn.run("SELECT 1").await.unwrap();
    p.revoke(&c.username).await.unwrap();
    let log = db.log();
    assert!(
        log.contains(c.username.as_str()),
        "the log must record the statements"
    );
    assert!(
        !log.contains(c.password.expose_secret()),
        "password in the server log"
    );
}

async fn sixteen_concurrent_loops_are_clean(mysql: bool) {
    let db = Db::start(mysql, false);
    let p = db.provisioner().await;
    let set = db.read("orders");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (p, set) = (p.clone(), set.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for _ in 0..3 {
                match p.provision(&plan(set.clone(), TimeDelta::minutes(5))).await {
                    Ok(c) => {
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
    assert_eq!(db.managed_accounts(), 0);
}

async fn hostile_names_stay_quoted(mysql: bool) {
    let db = Db::start(mysql, false);
    let hostile = "we\"ird`'; DROP TABLE secrets; -- \\ $$ ü";
    db.create_table(hostile);
    let p = db.provisioner().await;
    let mut set = db.read("orders");
    set.insert(Permission::new(Privilege::Select, db.table(hostile)));
    let c = p
        .provision(&plan(set, TimeDelta::minutes(5)))
        .await
        .unwrap();
    let mut conn = db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    conn.run(&format!("SELECT v FROM {}", db.qualified(hostile)))
        .await
        .unwrap();
    let mut missing = db.read("orders");
    missing.insert(Permission::new(
        Privilege::Select,
        db.table("orders`; DROP TABLE secrets; --"),
    ));
    assert!(p
        .provision(&plan(missing, TimeDelta::minutes(5)))
        .await
        .is_err());
    let mut admin = match &db {
        Db::Pg(pg) => Conn::Pg(sqlx::PgConnection::connect(&pg.url(APP)).await.unwrap()),
        Db::My(m) => Conn::My(sqlx::MySqlConnection::connect(&m.url("app")).await.unwrap()),
    };
    admin
        .run(&format!("SELECT * FROM {}", db.qualified("secrets")))
        .await
        .unwrap();
}

async fn refusals_create_nothing(mysql: bool) {
    let db = Db::start(mysql, false);
    match &db {
        Db::Pg(pg) => pg.psql(APP, "CREATE FUNCTION public.definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'; CREATE ROLE analyst NOLOGIN").unwrap(),
        Db::My(m) => m.sql("CREATE FUNCTION app.definer() RETURNS int DETERMINISTIC RETURN 1; CREATE ROLE analyst").unwrap(),
    };
    let p = db.provisioner().await;
    let before = db.managed_accounts();
    let service_user = if mysql { "root" } else { "postgres" };
    let system = if mysql { "mysql" } else { "pg_catalog" };
    let with = |extra: Permission| {
        let mut s = db.read("orders");
        s.insert(extra);
        Access::Permissions(s)
    };
    let role = |r: &str| Access::Role(p0_core::RoleName::new(r).unwrap());
    let cases: Vec<(&str, Access, TimeDelta)> = vec![
        (
            "system catalog",
            with(Permission::new(
                Privilege::Select,
                ObjectRef::table(system, "user"),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "information_schema",
            with(Permission::new(
                Privilege::Select,
                ObjectRef::table("information_schema", "tables"),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "another system schema",
            with(Permission::new(
                Privilege::Select,
                ObjectRef::table(
                    if mysql {
                        "performance_schema"
                    } else {
                        "pg_toast"
                    },
                    "x",
                ),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "missing table",
            with(Permission::new(
                Privilege::Select,
                db.table("no_such_table"),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "hostile missing name",
            with(Permission::new(
                Privilege::Select,
                db.table("orders`\"; DROP TABLE secrets; --"),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "name too long",
            with(Permission::new(
                Privilege::Select,
                db.table(&"o".repeat(70)),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "privilege on the wrong kind",
            with(Permission::new(Privilege::Execute, db.table("orders"))),
            TimeDelta::minutes(5),
        ),
        (
            "another database",
            with(Permission::new(
                Privilege::Select,
                ObjectRef::table("otherdb", "orders"),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "CREATE",
            with(Permission::new(
                Privilege::Create,
                ObjectRef::schema(if mysql { "app" } else { "public" }),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "SECURITY DEFINER function",
            with(Permission::new(
                Privilege::Execute,
                ObjectRef::function(if mysql { APP } else { "public" }, "definer", ""),
            )),
            TimeDelta::minutes(5),
        ),
        (
            "the service user's role",
            role(service_user),
            TimeDelta::minutes(5),
        ),
        (
            "a role not on the allowlist",
            role("analyst"),
            TimeDelta::minutes(5),
        ),
        (
            "expiry in the past",
            Access::Permissions(db.read("orders")),
            TimeDelta::minutes(-1),
        ),
        (
            "expiry too far out",
            Access::Permissions(db.read("orders")),
            TimeDelta::days(30),
        ),
        (
            "empty plan",
            Access::Permissions(PermissionSet::new()),
            TimeDelta::minutes(5),
        ),
    ];
    assert!(cases.len() >= 12);
    for (name, access, ttl) in cases {
        let mut pl = plan(PermissionSet::new(), ttl);
        pl.access = access;
        let e = p.provision(&pl).await.expect_err(name);
        assert!(!e.to_string().contains('\n'), "{name}: {e}");
        assert_eq!(
            db.managed_accounts(),
            before,
            "{name} left something behind"
        );
    }
}
