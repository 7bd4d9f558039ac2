//! What a hostile holder of a MariaDB grant, or a server without the expiry backstop, could
//! get past the agent, against a real MariaDB. Each case is a test of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeDelta, Utc};
use p0_core::provision::MySqlProvisioner;
use p0_core::{
    Access, DatabaseProvisioner, GuardError, GuardPolicy, ObjectRef, Permission, PermissionSet,
    Privilege, ProvisionError, ProvisionPlan, RequestId, ResourceId, RoleName,
};
use p0_testkit::MariaDbServer;

fn setup() -> MariaDbServer {
    let db = MariaDbServer::start().unwrap();
    db.sql(
        "CREATE DATABASE app; CREATE TABLE app.orders (id int, total int); \
         CREATE TABLE app.secrets (s text); CREATE USER 'someone'@'%';",
    )
    .unwrap();
    db
}

async fn provisioner(db: &MariaDbServer, allow: &[&str]) -> MySqlProvisioner {
    let mut policy = GuardPolicy::for_database("app", "root");
    policy.role_allowlist = allow.iter().map(|r| RoleName::new(*r).unwrap()).collect();
    MySqlProvisioner::connect(&db.url(""), policy, "%")
        .await
        .unwrap()
}

fn plan(access: Access) -> ProvisionPlan {
    ProvisionPlan {
        request_id: RequestId::generate(),
        requester: "mallory@example.com".into(),
        resource: ResourceId::new("db/app").unwrap(),
        access,
        expires_at: Utc::now() + TimeDelta::minutes(5),
    }
}

fn read_orders() -> Access {
    let set: PermissionSet = [Permission::new(
        Privilege::Select,
        ObjectRef::table("app", "orders"),
    )]
    .into_iter()
    .collect();
    Access::Permissions(set)
}

/// Accounts, roles, role grants and the agent's bookkeeping: what a refusal must not change.
fn snapshot(db: &MariaDbServer) -> String {
    db.sql(
        "SELECT (SELECT GROUP_CONCAT(CONCAT(User, '@', Host) ORDER BY User, Host) FROM mysql.user), \
                (SELECT GROUP_CONCAT(CONCAT(User, '>', Role) ORDER BY User, Role) FROM mysql.roles_mapping), \
                (SELECT COUNT(*) FROM p0_agent.managed), (SELECT COUNT(*) FROM p0_agent.claims), \
                (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'p0_agent')",
    )
    .unwrap()
}

async fn allowlisted_role_is_refused(setup_sql: &str, why: &str) {
    let db = setup();
    db.sql(setup_sql).unwrap();
    let p = provisioner(&db, &["granted"]).await;
    let before = snapshot(&db);
    let e = p
        .provision(&plan(Access::Role(RoleName::new("granted").unwrap())))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, ProvisionError::Guard(GuardError::PrivilegedRole(..))),
        "{msg}"
    );
    assert!(msg.contains(why) && !msg.contains('\n'), "{msg}");
    assert_eq!(snapshot(&db), before, "{msg}");
}

macro_rules! role_cases {
    ($($name:ident: $sql:expr => $why:expr;)*) => {
        $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { allowlisted_role_is_refused($sql, $why).await } )*
    };
}

role_cases! {
    an_allowlisted_role_with_a_global_privilege_is_refused:
        "CREATE ROLE granted; GRANT PROCESS ON *.* TO granted" => "global privileges";
    an_allowlisted_role_with_an_administrative_privilege_is_refused:
        "CREATE ROLE granted; GRANT BINLOG ADMIN ON *.* TO granted" => "global privileges";
    an_allowlisted_role_inheriting_a_global_privilege_is_refused:
        "CREATE ROLE super_ish; GRANT SUPER ON *.* TO super_ish; CREATE ROLE granted; GRANT super_ish TO granted"
        => "global privileges (through `super_ish`)";
    an_allowlisted_role_with_grant_option_on_a_table_is_refused:
        "CREATE ROLE granted; GRANT SELECT ON app.orders TO granted WITH GRANT OPTION" => "GRANT OPTION";
    an_allowlisted_role_with_grant_option_on_a_database_is_refused:
        "CREATE ROLE granted; GRANT SELECT ON app.* TO granted WITH GRANT OPTION" => "GRANT OPTION";
    an_allowlisted_role_with_admin_option_on_another_role_is_refused:
        "CREATE ROLE other; CREATE ROLE granted; GRANT other TO granted WITH ADMIN OPTION" => "ADMIN OPTION";
    an_allowlisted_role_with_proxy_is_refused:
        // MariaDB's GRANT cannot name a role for PROXY; a row written behind its back can.
        "CREATE ROLE granted; INSERT INTO mysql.proxies_priv (Host, User, Proxied_host, Proxied_user, With_grant, Grantor) \
         VALUES ('', 'granted', '%', 'someone', 0, 'root@localhost'); FLUSH PRIVILEGES" => "PROXY";
    an_allowlisted_role_with_privileges_on_the_mysql_database_is_refused:
        "CREATE ROLE granted; GRANT SELECT ON mysql.* TO granted" => "system database";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_allowlisted_role_is_still_granted() {
    let db = setup();
    db.sql("CREATE ROLE granted; GRANT SELECT ON app.orders TO granted")
        .unwrap();
    let p = provisioner(&db, &["granted"]).await;
    let c = p
        .provision(&plan(Access::Role(RoleName::new("granted").unwrap())))
        .await
        .unwrap();
    p.revoke(&c.username).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_is_refused_while_event_scheduler_is_off_and_resumes_when_on() {
    let db = setup();
    db.sql("SET GLOBAL event_scheduler = OFF").unwrap();
    // The agent starts (revocation and the sweeper must keep working) but provisions nothing.
    let p = provisioner(&db, &[]).await;
    let before = snapshot(&db);
    let e = p.provision(&plan(read_orders())).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ProvisionError::NoBackstop(_)), "{msg}");
    assert!(
        msg.contains("`event_scheduler` is OFF")
            && msg.contains("SET GLOBAL event_scheduler = ON")
            && !msg.contains('\n'),
        "{msg}"
    );
    assert_eq!(snapshot(&db), before);
    db.sql("SET GLOBAL event_scheduler = ON").unwrap();
    let c = p.provision(&plan(read_orders())).await.unwrap();
    // Turned off again later: checked on each provision, not only at start.
    db.sql("SET GLOBAL event_scheduler = OFF").unwrap();
    assert!(matches!(
        p.provision(&plan(read_orders())).await,
        Err(ProvisionError::NoBackstop(_))
    ));
    // Revocation does not need the scheduler.
    assert!(p.revoke(&c.username).await.unwrap().user_dropped);
}

/// A holder of TRIGGER creates a trigger, which runs as its DEFINER: revocation reports it,
/// though it reads `information_schema` only for users that could have made one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_definer_is_reported() {
    use sqlx::{Connection, Executor};
    let db = setup();
    let p = provisioner(&db, &[]).await;
    let set: PermissionSet = [
        Permission::new(Privilege::Select, ObjectRef::table("app", "orders")),
        Permission::new(Privilege::Trigger, ObjectRef::table("app", "orders")),
    ]
    .into_iter()
    .collect();
    let c = p.provision(&plan(Access::Permissions(set))).await.unwrap();
    let url = format!(
        "mysql://{}:{}@127.0.0.1:{}/app",
        c.username,
        c.password.expose_secret(),
        db.port
    );
    let mut conn = sqlx::MySqlConnection::connect(&url).await.unwrap();
    conn.execute(
        "CREATE TRIGGER app.planted BEFORE INSERT ON app.orders FOR EACH ROW SET NEW.total = 0",
    )
    .await
    .unwrap();
    let r = p.revoke(&c.username).await.unwrap();
    let expected = format!("1 object(s) have DEFINER `{}@%`", c.username);
    assert!(r.notes.iter().any(|n| n.contains(&expected)), "{r:?}");
    // A reader of the same table could not have made one: nothing to report.
    let c = p.provision(&plan(read_orders())).await.unwrap();
    assert!(p.revoke(&c.username).await.unwrap().notes.is_empty());
}

/// Someone pre-creates the role name p0 would use for a set, to capture its grants: refused,
/// and nothing changes (their role included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatted_role_name_is_refused_and_left_alone() {
    let db = setup();
    let Access::Permissions(set) = read_orders() else {
        unreachable!()
    };
    let squat = p0_core::provision::role_name_for(&ResourceId::new("db/app").unwrap(), &set);
    db.sql(&format!("CREATE ROLE {squat}")).unwrap();
    let p = provisioner(&db, &[]).await;
    let before = snapshot(&db);
    let e = p.provision(&plan(read_orders())).await.unwrap_err();
    assert!(
        matches!(e, ProvisionError::Guard(GuardError::ExistingRole(_))),
        "{e}"
    );
    assert_eq!(snapshot(&db), before, "{e}");
}

/// A user made before claims existed (its request has no claim): the agent's next start
/// claims its request, so once revoked it is not provisioned again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_provisioned_before_claims_is_claimed_at_the_next_start() {
    let db = setup();
    let p = provisioner(&db, &[]).await;
    let plan = plan(read_orders());
    let c = p.provision(&plan).await.unwrap();
    db.sql("DELETE FROM p0_agent.claims").unwrap();
    let restarted = provisioner(&db, &[]).await;
    restarted.revoke(&c.username).await.unwrap();
    let e = restarted.provision(&plan).await.unwrap_err();
    assert!(matches!(e, ProvisionError::Replayed(_)), "{e}");
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM p0_agent.managed")
            .unwrap()
            .trim(),
        "0"
    );
}
