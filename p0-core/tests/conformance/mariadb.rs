//! The conformance harness for MariaDB.

use super::APP;
use async_trait::async_trait;
use p0_core::provision::MySqlProvisioner;
use p0_core::sql::mysql::ident;
use p0_core::{DatabaseProvisioner, GuardPolicy, Permission, PermissionSet, Privilege};
use p0_testkit::conformance::{Capabilities, Error, Harness, Op, OpError, Session, Start};
use p0_testkit::MariaDbServer;
use sqlx::{Connection, Executor, MySqlConnection};
use std::sync::Arc;
use std::time::Duration;

pub struct MariaDbHarness(pub MariaDbServer);

pub struct MySqlSession(pub MySqlConnection);

pub fn qualified(table: &str) -> String {
    format!("app.{}", ident(table).unwrap())
}

#[async_trait]
impl Session for MySqlSession {
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

impl MariaDbHarness {
    pub async fn login_as(&self, user: &str, password: &str) -> Result<MySqlSession, String> {
        MySqlConnection::connect(&format!(
            "mysql://{user}:{password}@127.0.0.1:{}/",
            self.0.port
        ))
        .await
        .map(MySqlSession)
        .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Harness for MariaDbHarness {
    /// The general query log is always on.
    async fn start(_: Start) -> Result<Self, Error> {
        let db = MariaDbServer::start()?;
        db.sql("CREATE DATABASE app; CREATE TABLE app.orders (id int, total int); INSERT INTO app.orders VALUES (1, 2); \
                CREATE TABLE app.secrets (s text); INSERT INTO app.secrets VALUES ('x');")?;
        Ok(Self(db))
    }

    /// Expiry: the one-shot event, whose scheduler has a resolution of one second.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            shared_roles: true,
            expiry_in_database: true,
            expiry_grace: Duration::from_secs(3),
            any_name: true,
            statement_log: true,
            owned_objects: true,
            blockable_removal: true,
            claims_forgotten_by_sweep: true,
        }
    }

    async fn provisioner(&self) -> Arc<dyn DatabaseProvisioner> {
        Arc::new(
            MySqlProvisioner::connect(&self.0.url(""), GuardPolicy::for_database(APP, "root"), "%")
                .await
                .unwrap(),
        )
    }

    fn schema(&self) -> &str {
        APP
    }

    fn read(&self, table: &str) -> PermissionSet {
        [Permission::new(Privilege::Select, self.table(table))]
            .into_iter()
            .collect()
    }

    fn service_user(&self) -> &str {
        "root"
    }

    fn system_schemas(&self) -> [&str; 2] {
        ["mysql", "performance_schema"]
    }

    async fn login(&self, user: &str, password: &str) -> Result<Box<dyn Session>, String> {
        self.login_as(user, password)
            .await
            .map(|s| Box::new(s) as Box<dyn Session>)
    }

    async fn admin(&self) -> Box<dyn Session> {
        Box::new(MySqlSession(
            MySqlConnection::connect(&self.0.url("app")).await.unwrap(),
        ))
    }

    fn create_table(&self, name: &str) {
        let t = qualified(name);
        self.0
            .sql(&format!(
                "CREATE TABLE {t} (v int); INSERT INTO {t} VALUES (7)"
            ))
            .unwrap();
    }

    fn managed_accounts(&self) -> usize {
        let out = self
            .0
            .sql("SELECT COUNT(*) FROM mysql.user WHERE user LIKE 'p0%'")
            .unwrap();
        out.trim().parse().unwrap()
    }

    fn create_foreign_user(&self, name: &str) {
        self.0
            .sql(&format!("CREATE USER '{name}'@'%' IDENTIFIED BY 'x'"))
            .unwrap();
    }

    fn server_log(&self) -> String {
        self.0.general_log().unwrap()
    }

    fn prepare_refusals(&self) {
        self.0
            .sql("CREATE FUNCTION app.definer() RETURNS int DETERMINISTIC RETURN 1; CREATE ROLE analyst")
            .unwrap();
    }

    /// MySQL cannot drop a routine or event whose DEFINER is the user without losing it, so
    /// revocation reports them instead of leaving them to fail silently. (Views and triggers
    /// are counted where the user could have made one: `trigger_definer_is_reported`.)
    fn leave_owned_object(&self, user: &str) -> String {
        self.0
            .sql(&format!(
                "CREATE DEFINER = '{user}'@'%' EVENT app.by_user ON SCHEDULE EVERY 1 DAY DO DO 1; \
                 CREATE DEFINER = '{user}'@'%' FUNCTION app.by_user_fn() RETURNS int DETERMINISTIC RETURN 1"
            ))
            .unwrap();
        format!("2 object(s) have DEFINER `{user}@%`")
    }

    /// The account was renamed behind p0's back.
    fn block_removal(&self, user: &str) {
        self.0
            .sql(&format!("RENAME USER '{user}'@'%' TO '{user}'@'10.9.9.9'"))
            .unwrap();
    }
}
