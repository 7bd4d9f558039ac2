//! One provisioner suite, run against every back-end: PostgreSQL 15 and MariaDB, each through
//! its harness (`conformance/`), one test per case (`p0_testkit::conformance`). What only one
//! engine has stays here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "conformance/mariadb.rs"]
mod mariadb_harness;
#[path = "conformance/pg.rs"]
mod pg_harness;

use chrono::TimeDelta;
use mariadb_harness::MariaDbHarness;
use p0_core::{ObjectRef, Permission, PermissionSet, Privilege};
use p0_testkit::conformance::{cases::plan, Harness, Op, OpError, Session, Start};

const APP: &str = "app";

mod postgres {
    p0_testkit::conformance_tests!(crate::pg_harness::PgHarness);
}

mod mariadb {
    p0_testkit::conformance_tests!(crate::mariadb_harness::MariaDbHarness);

    /// MySQL's database-wide grants: data privileges on `app.*` only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn database_wide_grants() {
        super::mariadb_database_wide_grants().await
    }
}

async fn mariadb_database_wide_grants() {
    let db = MariaDbHarness::start(Start::default()).await.unwrap();
    let p = db.provisioner().await;
    let set: PermissionSet = [Permission::new(Privilege::Select, ObjectRef::database(APP))]
        .into_iter()
        .collect();
    let c = p
        .provision(&plan(set, TimeDelta::minutes(5)))
        .await
        .unwrap();
    let mut conn = db
        .login_as(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    conn.run(Op::Read("orders")).await.unwrap();
    conn.run(Op::Read("secrets")).await.unwrap();
    let e = conn.run(Op::Delete("orders")).await;
    assert!(matches!(e, Err(OpError::Denied(_))), "{e:?}");
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
