//! Every plan the guard refuses, one test each: the refusal is a one-line error, and the
//! database is unchanged (roles, memberships, ACLs, comments), `secrets` intact, no user made.

use crate::support::{plan, policy, provisioner, read_orders, setup, snapshot, DB};
use chrono::Duration as TimeDelta;
use p0_core::provision::AccountKind;
use p0_core::{
    Access, DatabaseProvisioner, ObjectRef, Permission, PermissionSet, Privilege, ResourceId,
    RoleName,
};
use p0_testkit::PgOptions;

/// Starts the fixture (privileged roles, a squatted role name), refuses `access` and checks
/// that nothing changed.
async fn refused(name: &str, access: Access, ttl: TimeDelta) {
    let pg = setup(PgOptions::default());
    pg.psql(
        DB,
        "CREATE ROLE boss SUPERUSER NOLOGIN; CREATE ROLE filer NOLOGIN; GRANT pg_execute_server_program TO filer;
         CREATE ROLE sneaky NOLOGIN; GRANT filer TO sneaky; CREATE ROLE rls BYPASSRLS NOLOGIN; CREATE ROLE plain NOLOGIN;",
    )
    .unwrap();
    // Someone pre-creates the role name p0 would use for this set, to capture the grants.
    let squat = p0_core::provision::role_name_for(&ResourceId::new("pg/app").unwrap(), &{
        let mut s = read_orders();
        s.insert(Permission::new(
            Privilege::Delete,
            ObjectRef::table("public", "orders"),
        ));
        s
    });
    pg.psql(DB, &format!("CREATE ROLE {squat} NOLOGIN"))
        .unwrap();
    let mut pol = policy();
    pol.role_allowlist = ["boss", "sneaky", "rls", "postgres"]
        .iter()
        .map(|r| RoleName::new(*r).unwrap())
        .collect();
    let p = provisioner(&pg, pol).await;
    let before = snapshot(&pg);
    let e = p.provision(&plan(access, ttl)).await.expect_err(name);
    let msg = e.to_string();
    assert!(!msg.is_empty() && !msg.contains('\n'), "{name}: {msg}");
    assert_eq!(snapshot(&pg), before, "{name} changed the database ({msg})");
    assert_eq!(
        pg.psql(DB, "SELECT count(*) FROM secrets").unwrap().trim(),
        "1"
    );
    assert!(p
        .list_managed()
        .await
        .unwrap()
        .iter()
        .all(|a| a.kind != AccountKind::User));
}

fn with(extra: Permission) -> Access {
    let mut s = read_orders();
    s.insert(extra);
    Access::Permissions(s)
}

fn table(schema: &str, name: &str) -> ObjectRef {
    ObjectRef::table(schema, name)
}

fn role(r: &str) -> Access {
    Access::Role(RoleName::new(r).unwrap())
}

macro_rules! refuses {
    ($($case:ident: $access:expr $(, $ttl:expr)?;)*) => {
        $(
            #[tokio::test]
            async fn $case() {
                #[allow(unused_variables)]
                let ttl = TimeDelta::minutes(5);
                $(let ttl = $ttl;)?
                refused(stringify!($case), $access, ttl).await
            }
        )*
        /// How many cases there are (at least twelve).
        const CASES: usize = [$(stringify!($case)),*].len();
    };
}

refuses! {
    system_catalog: with(Permission::new(Privilege::Select, table("pg_catalog", "pg_authid")));
    information_schema: with(Permission::new(Privilege::Select, table("information_schema", "tables")));
    other_database: with(Permission::new(Privilege::Connect, ObjectRef::database("postgres")));
    template_database: with(Permission::new(Privilege::Connect, ObjectRef::database("template1")));
    create_on_schema: with(Permission::new(Privilege::Create, ObjectRef::schema("public")));
    privilege_on_wrong_kind: with(Permission::new(Privilege::Execute, table("public", "orders")));
    service_users_role: role("postgres");
    role_not_on_allowlist: role("plain");
    superuser_role: role("boss");
    bypassrls_role: role("rls");
    role_inheriting_pg_execute_server_program: role("sneaky");
    function_grant_on_a_procedure: with(Permission::new(
        Privilege::Execute,
        ObjectRef::function("public", "noop", "integer"),
    ));
    procedure_grant_on_a_function: with(Permission::new(
        Privilege::Execute,
        ObjectRef::procedure("public", "add", "integer, integer"),
    ));
    security_definer_function: with(Permission::new(
        Privilege::Execute,
        ObjectRef::function("public", "definer", ""),
    ));
    injection_via_table_name: with(Permission::new(
        Privilege::Select,
        table("public", "orders\"; DROP TABLE secrets; --"),
    ));
    injection_via_dollar_quotes: with(Permission::new(
        Privilege::Select,
        table("public", "$$; DROP TABLE secrets; $$"),
    ));
    injection_via_schema_name: with(Permission::new(
        Privilege::Usage,
        ObjectRef::schema("public\\'; DROP TABLE secrets; --"),
    ));
    injection_via_function_signature: with(Permission::new(
        Privilege::Execute,
        ObjectRef::function("public", "add", "int, int); DROP TABLE secrets; --"),
    ));
    injection_via_column_name: with(Permission {
        privilege: Privilege::Update,
        object: table("public", "orders"),
        columns: Some(vec!["total\") ON secrets TO PUBLIC; --".into()]),
    });
    unicode_lookalike_table: with(Permission::new(Privilege::Select, table("public", "ordеrs")));
    name_longer_than_63_bytes: with(Permission::new(
        Privilege::Select,
        table("public", &"o".repeat(64)),
    ));
    squatted_role_name: with(Permission::new(Privilege::Delete, table("public", "orders")));
    expiry_in_the_past: Access::Permissions(read_orders()), TimeDelta::minutes(-1);
    expiry_too_far_out: Access::Permissions(read_orders()), TimeDelta::days(30);
    empty_plan: Access::Permissions(PermissionSet::new());
}

#[test]
fn there_are_at_least_twelve_cases() {
    const { assert!(CASES >= 12) };
}
