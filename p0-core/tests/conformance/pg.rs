//! The conformance harness for PostgreSQL 15.

use super::APP;
use async_trait::async_trait;
use p0_core::provision::PostgresProvisioner;
use p0_core::sql::pg::ident;
use p0_core::{DatabaseProvisioner, GuardPolicy, ObjectRef, Permission, PermissionSet, Privilege};
use p0_testkit::conformance::{Capabilities, Error, Harness, Op, OpError, Session, Start};
use p0_testkit::{PgOptions, PgServer};
use sqlx::{Connection, Executor, PgConnection};
use std::sync::Arc;
use std::time::Duration;

pub struct PgHarness(PgServer);

struct PgSession(PgConnection);

fn qualified(table: &str) -> String {
    format!("public.{}", ident(table).unwrap())
}

#[async_trait]
impl Session for PgSession {
    async fn run(&mut self, op: Op<'_>) -> Result<(), OpError> {
        let sql = match op {
            Op::Ping => "SELECT 1".to_string(),
            Op::Read(t) => format!("SELECT * FROM {}", qualified(t)),
            Op::Delete(t) => format!("DELETE FROM {}", qualified(t)),
            _ => unreachable!("no other operation"),
        };
        match self.0.execute(sql.as_str()).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("denied") => Err(OpError::Denied(e.to_string())),
            Err(e) => Err(OpError::Failed(e.to_string())),
        }
    }
}

#[async_trait]
impl Harness for PgHarness {
    async fn start(options: Start) -> Result<Self, Error> {
        let settings = if options.log_statements {
            vec![("log_statement".to_string(), "all".to_string())]
        } else {
            vec![]
        };
        let pg = PgServer::start_with(PgOptions { settings })?;
        pg.create_hardened_db(APP)?;
        pg.psql(APP, "CREATE TABLE orders (id int, total int); INSERT INTO orders VALUES (1, 2); CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('x');")?;
        Ok(Self(pg))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            shared_roles: true,
            expiry_in_database: true,
            expiry_grace: Duration::from_secs(1),
            any_name: true,
            statement_log: true,
            owned_objects: true,
            blockable_removal: true,
            claims_forgotten_by_sweep: true,
        }
    }

    async fn provisioner(&self) -> Arc<dyn DatabaseProvisioner> {
        Arc::new(
            PostgresProvisioner::connect(
                &self.0.url(APP),
                GuardPolicy::for_database(APP, "postgres"),
            )
            .await
            .unwrap(),
        )
    }

    fn schema(&self) -> &str {
        "public"
    }

    fn read(&self, table: &str) -> PermissionSet {
        [
            Permission::new(Privilege::Select, self.table(table)),
            Permission::new(Privilege::Connect, ObjectRef::database(APP)),
            Permission::new(Privilege::Usage, ObjectRef::schema("public")),
        ]
        .into_iter()
        .collect()
    }

    fn service_user(&self) -> &str {
        "postgres"
    }

    fn system_schemas(&self) -> [&str; 2] {
        ["pg_catalog", "pg_toast"]
    }

    async fn login(&self, user: &str, password: &str) -> Result<Box<dyn Session>, String> {
        PgConnection::connect(&self.0.url_as(user, password, APP))
            .await
            .map(|c| Box::new(PgSession(c)) as Box<dyn Session>)
            .map_err(|e| e.to_string())
    }

    async fn admin(&self) -> Box<dyn Session> {
        Box::new(PgSession(
            PgConnection::connect(&self.0.url(APP)).await.unwrap(),
        ))
    }

    fn create_table(&self, name: &str) {
        let t = qualified(name);
        self.0
            .psql(
                APP,
                &format!("CREATE TABLE {t} (v int); INSERT INTO {t} VALUES (7)"),
            )
            .unwrap();
    }

    fn managed_accounts(&self) -> usize {
        let out = self
            .0
            .psql(
                APP,
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'p0%'",
            )
            .unwrap();
        out.trim().parse().unwrap()
    }

    fn create_foreign_user(&self, name: &str) {
        self.0
            .psql(APP, &format!("CREATE ROLE {} LOGIN", ident(name).unwrap()))
            .unwrap();
    }

    fn server_log(&self) -> String {
        self.0.log().unwrap()
    }

    fn prepare_refusals(&self) {
        self.0.psql(APP, "CREATE FUNCTION public.definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'; CREATE ROLE analyst NOLOGIN").unwrap();
    }

    /// PostgreSQL drops what the user owned (`DROP OWNED`) and says so.
    fn leave_owned_object(&self, user: &str) -> String {
        self.0
            .psql(
                APP,
                &format!("CREATE TABLE scratch (v int); ALTER TABLE scratch OWNER TO \"{user}\""),
            )
            .unwrap();
        format!("dropped 1 object(s) owned by `{user}`")
    }

    /// The user owns a large object in a database that takes no connections.
    fn block_removal(&self, user: &str) {
        let pg = &self.0;
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
}
