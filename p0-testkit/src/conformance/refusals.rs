//! The plans every back-end must refuse, one test each: each fails with a one-line error and
//! leaves nothing behind.

use super::cases::{plan, start};
use super::Harness;
use chrono::TimeDelta;
use p0_core::{Access, ObjectRef, Permission, PermissionSet, Privilege, RoleName};

/// Every refusal of the suite, by name: the variants of [`Refusal`].
pub const REFUSALS: &[&str] = &[
    "system_catalog",
    "information_schema",
    "another_system_schema",
    "missing_table",
    "hostile_missing_name",
    "name_too_long",
    "privilege_on_the_wrong_kind",
    "another_database",
    "create",
    "security_definer_function",
    "the_service_users_role",
    "a_role_not_on_the_allowlist",
    "expiry_in_the_past",
    "expiry_too_far_out",
    "empty_plan",
];

/// A plan the guard refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum Refusal {
    /// SELECT on the engine's system catalog (`pg_catalog`, `mysql`).
    system_catalog,
    /// SELECT on `information_schema`.
    information_schema,
    /// SELECT on another system schema.
    another_system_schema,
    /// A table that does not exist.
    missing_table,
    /// A table that does not exist, with quotes and SQL in its name.
    hostile_missing_name,
    /// A name longer than the engine allows.
    name_too_long,
    /// EXECUTE on a table.
    privilege_on_the_wrong_kind,
    /// A table of another database.
    another_database,
    /// CREATE on the schema.
    create,
    /// EXECUTE on a SECURITY DEFINER function.
    security_definer_function,
    /// Membership of the service user's own role.
    the_service_users_role,
    /// A role the agent does not hand out.
    a_role_not_on_the_allowlist,
    /// An expiry that has passed.
    expiry_in_the_past,
    /// An expiry past the policy's longest lease.
    expiry_too_far_out,
    /// Nothing at all.
    empty_plan,
}

/// `which` fails with a one-line error and creates nothing.
pub async fn refused<H: Harness>(which: Refusal) {
    let db: H = start(false).await;
    db.prepare_refusals();
    let p = db.provisioner().await;
    let before = db.managed_accounts();
    let [catalog, other_system] = db.system_schemas();
    let schema = db.schema().to_string();
    let with = |extra: Permission| {
        let mut s = db.read("orders");
        s.insert(extra);
        Access::Permissions(s)
    };
    let role = |r: &str| Access::Role(RoleName::new(r).expect("a role name"));
    let select = |o: ObjectRef| with(Permission::new(Privilege::Select, o));
    let five = TimeDelta::minutes(5);
    let (access, ttl) = match which {
        Refusal::system_catalog => (select(ObjectRef::table(catalog, "user")), five),
        Refusal::information_schema => (
            select(ObjectRef::table("information_schema", "tables")),
            five,
        ),
        Refusal::another_system_schema => (select(ObjectRef::table(other_system, "x")), five),
        Refusal::missing_table => (select(db.table("no_such_table")), five),
        Refusal::hostile_missing_name => {
            (select(db.table("orders`\"; DROP TABLE secrets; --")), five)
        }
        Refusal::name_too_long => (select(db.table(&"o".repeat(70))), five),
        Refusal::privilege_on_the_wrong_kind => (
            with(Permission::new(Privilege::Execute, db.table("orders"))),
            five,
        ),
        Refusal::another_database => (select(ObjectRef::table("otherdb", "orders")), five),
        Refusal::create => (
            with(Permission::new(
                Privilege::Create,
                ObjectRef::schema(&schema),
            )),
            five,
        ),
        Refusal::security_definer_function => (
            with(Permission::new(
                Privilege::Execute,
                ObjectRef::function(&schema, "definer", ""),
            )),
            five,
        ),
        Refusal::the_service_users_role => (role(db.service_user()), five),
        Refusal::a_role_not_on_the_allowlist => (role("analyst"), five),
        Refusal::expiry_in_the_past => (
            Access::Permissions(db.read("orders")),
            TimeDelta::minutes(-1),
        ),
        Refusal::expiry_too_far_out => {
            (Access::Permissions(db.read("orders")), TimeDelta::days(30))
        }
        Refusal::empty_plan => (Access::Permissions(PermissionSet::new()), five),
    };
    let mut pl = plan(PermissionSet::new(), ttl);
    pl.access = access;
    let e = p.provision(&pl).await.expect_err("the plan is refused");
    assert!(!e.to_string().contains('\n'), "{which:?}: {e}");
    assert_eq!(
        db.managed_accounts(),
        before,
        "{which:?} left something behind"
    );
}
