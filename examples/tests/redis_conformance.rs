//! p0's provisioner conformance suite against the Redis example's back-end
//! (`redis_agent/backend.rs`), one test per case, on Debian's `redis-server`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../redis_agent/backend.rs"]
#[allow(dead_code)]
mod backend;
#[path = "../redis_agent/server.rs"]
#[allow(dead_code)]
mod server;

use async_trait::async_trait;
use backend::{RedisBackend, RedisProvisioner};
use p0_core::{DatabaseProvisioner, GuardPolicy, Permission, PermissionSet, Privilege, RequestId};
use p0_testkit::conformance::{Capabilities, Error, Harness, Op, OpError, Session, Start};
use server::RedisServer;
use std::sync::Arc;
use std::time::Duration;

/// A Redis server whose keys stand for rows: table `t` is the keys `t:*`, its row `t:1`.
struct RedisHarness(RedisServer);

struct RedisSession(redis::aio::MultiplexedConnection);

#[async_trait]
impl Session for RedisSession {
    /// Redis has no command every user may run: [`Op::Ping`] reads `orders`, which every user
    /// of the suite that pings may read.
    async fn run(&mut self, op: Op<'_>) -> Result<(), OpError> {
        let cmd = match op {
            Op::Ping => redis::cmd("GET").arg("orders:1").clone(),
            Op::Read(t) => redis::cmd("GET").arg(format!("{t}:1")).clone(),
            Op::Delete(t) => redis::cmd("DEL").arg(format!("{t}:1")).clone(),
            _ => unreachable!("no other operation"),
        };
        match cmd.query_async::<redis::Value>(&mut self.0).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NOPERM") => Err(OpError::Denied(e.to_string())),
            Err(e) => Err(OpError::Failed(e.to_string())),
        }
    }
}

impl RedisHarness {
    fn admin_sync(&self) -> redis::Connection {
        redis::Client::open(self.0.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

#[async_trait]
impl Harness for RedisHarness {
    async fn start(_: Start) -> Result<Self, Error> {
        let server = RedisServer::start(&RequestId::generate().to_string()).await?;
        let mut con = redis::Client::open(server.url())?.get_connection()?;
        redis::cmd("MSET")
            .arg(&["orders:1", "2", "secrets:1", "x"][..])
            .query::<()>(&mut con)?;
        Ok(Self(server))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // ACL users hold their rules directly: Redis has no roles.
            shared_roles: false,
            // Redis ACL users never expire: the agent's sweeper is the only backstop.
            expiry_in_database: false,
            expiry_grace: Duration::from_secs(1),
            // ACL key patterns hold no whitespace: such names are refused (the others are
            // glob-escaped).
            any_name: false,
            // Redis logs no commands (MONITOR only streams them to a client connected at the
            // time); the password reaches it only as its SHA-256.
            statement_log: false,
            // Keys belong to no user: there is nothing a user owns or defines.
            owned_objects: false,
            // Nothing outside p0 can keep `ACL DELUSER` from removing a user.
            blockable_removal: false,
            // A claim is a key that Redis expires at the claim's end by itself.
            claims_forgotten_by_sweep: false,
        }
    }

    async fn provisioner(&self) -> Arc<dyn DatabaseProvisioner> {
        let backend = RedisBackend::connect(&self.0.url(), vec![]).await.unwrap();
        Arc::new(RedisProvisioner::new(
            backend,
            GuardPolicy::for_database("cache", "default"),
        ))
    }

    fn schema(&self) -> &str {
        "public"
    }

    fn read(&self, table: &str) -> PermissionSet {
        [Permission::new(Privilege::Select, self.table(table))]
            .into_iter()
            .collect()
    }

    fn service_user(&self) -> &str {
        "default"
    }

    fn system_schemas(&self) -> [&str; 2] {
        ["pg_catalog", "performance_schema"]
    }

    async fn login(&self, user: &str, password: &str) -> Result<Box<dyn Session>, String> {
        let client =
            redis::Client::open(self.0.url_as(user, password)).map_err(|e| e.to_string())?;
        client
            .get_multiplexed_async_connection()
            .await
            .map(|c| Box::new(RedisSession(c)) as Box<dyn Session>)
            .map_err(|e| e.to_string())
    }

    async fn admin(&self) -> Box<dyn Session> {
        let client = redis::Client::open(self.0.url()).unwrap();
        Box::new(RedisSession(
            client.get_multiplexed_async_connection().await.unwrap(),
        ))
    }

    fn create_table(&self, name: &str) {
        redis::cmd("SET")
            .arg(format!("{name}:1"))
            .arg("7")
            .query::<()>(&mut self.admin_sync())
            .unwrap();
    }

    fn managed_accounts(&self) -> usize {
        let users: Vec<String> = redis::cmd("ACL")
            .arg("USERS")
            .query(&mut self.admin_sync())
            .unwrap();
        users.iter().filter(|u| u.starts_with("p0")).count()
    }

    fn create_foreign_user(&self, name: &str) {
        redis::cmd("ACL")
            .arg(&["SETUSER", name, "on", "nopass", "+@all"][..])
            .query::<()>(&mut self.admin_sync())
            .unwrap();
    }

    fn server_log(&self) -> String {
        unreachable!("no statement log")
    }

    /// Nothing to create: the back-end grants no functions, and `analyst` is refused as a role
    /// off the allowlist whether or not it exists.
    fn prepare_refusals(&self) {}

    fn leave_owned_object(&self, _: &str) -> String {
        unreachable!("users own nothing")
    }

    fn block_removal(&self, _: &str) {
        unreachable!("nothing blocks a removal")
    }
}

p0_testkit::conformance_tests!(RedisHarness);

#[test]
fn glob_escape_keeps_names_literal() {
    assert_eq!(backend::glob_escape("a*b?[c]\\d"), "a\\*b\\?\\[c\\]\\\\d");
}

/// A table whose keys would be p0's own (`p0:managed`, `p0:claim:…`) is never granted: its
/// holder could otherwise forge or delete p0's markers and request claims.
#[test]
fn a_table_named_like_p0s_own_keys_is_refused() {
    p0_testkit::conformance::run(async {
        let db = RedisHarness::start(Start::default()).await.unwrap();
        let p = db.provisioner().await;
        for name in ["p0", "p0:claim", "p0:managed"] {
            db.create_table(name);
            let set = [Permission::new(
                Privilege::Delete,
                p0_core::ObjectRef::table("public", name),
            )]
            .into_iter()
            .collect();
            let plan = p0_testkit::conformance::cases::plan(set, chrono::TimeDelta::minutes(5));
            let e = p.provision(&plan).await.unwrap_err();
            assert!(e.to_string().contains("not grantable"), "{name}: {e}");
        }
        assert_eq!(db.managed_accounts(), 0);
    });
}
