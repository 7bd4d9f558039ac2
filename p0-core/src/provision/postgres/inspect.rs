//! The live half of the PostgreSQL escalation guard: what the catalog must show before a
//! pre-existing role is handed out, or before a plan's schema USAGE is granted.

use super::conn::classify;
use crate::error::{GuardError, ProvisionError};
use crate::provision::marker::{Lookup, Marker};
use crate::types::{ObjectKind, PermissionSet, Privilege, RoleName};
use sqlx::{PgConnection, Row};

/// A pre-existing role may be handed out only if neither it nor any role it is a member of,
/// directly or transitively, carries an attribute, is a predefined `pg_*` role, holds ADMIN
/// OPTION on a role, holds a grant option here, or owns anything in any database (an owner
/// may ALTER, DROP or re-grant what it owns). An allowlist, not a list of known-bad roles.
pub(super) async fn check_existing_role(
    conn: &mut PgConnection,
    role: &RoleName,
) -> Result<(), ProvisionError> {
    // Every membership counts, INHERIT or not: a member may `SET ROLE` to any of them.
    let rows = sqlx::query(
        "WITH RECURSIVE up(oid) AS ( \
           SELECT oid FROM pg_roles WHERE rolname = $1 \
           UNION SELECT m.roleid FROM pg_auth_members m JOIN up ON m.member = up.oid) \
         SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, \
                shobj_description(r.oid, 'pg_authid'), \
                (SELECT string_agg(g.rolname::text, ', ' ORDER BY g.rolname) FROM pg_auth_members a \
                   JOIN pg_roles g ON g.oid = a.roleid WHERE a.member = r.oid AND a.admin_option), \
                (SELECT count(*) FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass \
                   AND d.refobjid = r.oid AND d.deptype = 'o'), \
                (SELECT x.obj FROM ( \
                   SELECT c.oid::regclass::text AS obj, a.grantee, a.is_grantable FROM pg_class c, aclexplode(c.relacl) a \
                   UNION ALL SELECT 'schema ' || n.nspname, a.grantee, a.is_grantable FROM pg_namespace n, aclexplode(n.nspacl) a \
                   UNION ALL SELECT 'function ' || p.oid::regprocedure::text, a.grantee, a.is_grantable FROM pg_proc p, aclexplode(p.proacl) a \
                   UNION ALL SELECT 'database ' || d.datname, a.grantee, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a \
                 ) x WHERE x.grantee = r.oid AND x.is_grantable LIMIT 1) \
         FROM up JOIN pg_roles r ON r.oid = up.oid ORDER BY r.rolname",
    )
    .bind(role.as_str())
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Err(GuardError::Missing(format!("role {role}")).into());
    }
    let refuse = |why: String| -> ProvisionError {
        GuardError::PrivilegedRole(role.to_string(), why).into()
    };
    for row in rows {
        let name: String = row.try_get(0)?;
        let through = if name == role.as_str() {
            String::new()
        } else {
            format!(" (through `{name}`)")
        };
        let attrs = [
            (1, "SUPERUSER"),
            (2, "CREATEROLE"),
            (3, "CREATEDB"),
            (4, "REPLICATION"),
            (5, "BYPASSRLS"),
        ];
        for (i, attr) in attrs {
            if row.try_get::<bool, _>(i)? {
                return Err(refuse(format!("{attr}{through}")));
            }
        }
        // `pg_` is reserved for predefined roles: none may be reached, whatever it does.
        if name.starts_with("pg_") {
            return Err(refuse(format!("membership of predefined role `{name}`")));
        }
        let comment: Option<String> = row.try_get(6)?;
        if name == role.as_str() && comment.as_deref().and_then(Marker::parse).is_some() {
            return Err(GuardError::RoleNotAllowed(role.to_string()).into());
        }
        if let Some(admin) = row.try_get::<Option<String>, _>(7)? {
            return Err(refuse(format!("ADMIN OPTION on `{admin}`{through}")));
        }
        let owned: i64 = row.try_get(8)?;
        if owned > 0 {
            return Err(refuse(format!("ownership of {owned} object(s){through}")));
        }
        if let Some(obj) = row.try_get::<Option<String>, _>(9)? {
            return Err(refuse(format!("GRANT OPTION on {obj}{through}")));
        }
    }
    Ok(())
}

/// The schemas a plan grants USAGE on.
pub(super) fn usage_schemas(set: &PermissionSet) -> Vec<String> {
    set.iter()
        .filter(|p| p.privilege == Privilege::Usage && p.object.kind == ObjectKind::Schema)
        .map(|p| p.object.name.clone())
        .collect()
}

/// SECURITY DEFINER functions in `schemas` that PUBLIC may execute, minus the ones `allowed`
/// names (`schema.name(argument types)`, resolved by PostgreSQL itself, so any spelling of
/// the types matches). Each as `schema.name(argument types)`, ready for `REVOKE EXECUTE ON
/// FUNCTION ... FROM PUBLIC`.
pub async fn reachable_definer_functions(
    conn: &mut PgConnection,
    schemas: &[String],
    allowed: &[String],
) -> Result<Vec<String>, ProvisionError> {
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    Ok(role_and_definers(conn, None, schemas, allowed).await?.1)
}

/// In one read: what `role` is (when given), and the definer functions of
/// [`reachable_definer_functions`]. Outside any transaction: each `allowed` entry is resolved
/// on its own first, since PostgreSQL 15 raises on a malformed one.
pub(super) async fn role_and_definers(
    conn: &mut PgConnection,
    role: Option<&str>,
    schemas: &[String],
    allowed: &[String],
) -> Result<(Lookup, Vec<String>), ProvisionError> {
    let mut allowed_oids: Vec<i64> = Vec::new();
    if !schemas.is_empty() {
        for a in allowed {
            // An entry that does not name a function allows nothing.
            let oid: Result<Option<i64>, _> =
                sqlx::query_scalar("SELECT pg_catalog.to_regprocedure($1)::oid::bigint")
                    .bind(a)
                    .fetch_one(&mut *conn)
                    .await;
            match oid {
                Ok(oid) => allowed_oids.extend(oid),
                Err(e) => {
                    tracing::warn!(entry = %a, error = %e, "guard.allow_definer_functions entry names no function")
                }
            }
        }
    }
    let (exists, comment, definers): (bool, Option<String>, Vec<String>) = sqlx::query_as(
        "SELECT r.oid IS NOT NULL, pg_catalog.shobj_description(r.oid, 'pg_authid'), \
           ARRAY(SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes)) \
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname OPERATOR(pg_catalog.=) ANY($2) AND p.prosecdef \
               AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') \
               AND NOT (p.oid::bigint OPERATOR(pg_catalog.=) ANY($3)) \
             ORDER BY 1) \
         FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) $1",
    )
    .bind(role)
    .bind(schemas)
    .bind(&allowed_oids)
    .fetch_one(&mut *conn)
    .await?;
    let lookup = classify(exists.then_some(comment));
    Ok((lookup, definers))
}

/// Reads the definer functions a plan's schema USAGE would reach, on a connection of its own
/// (for `p0 explain --database-url`, which warns about them).
pub async fn reachable_definer_functions_at(
    url: &str,
    schemas: &[String],
) -> Result<Vec<String>, ProvisionError> {
    use sqlx::Connection;
    use std::str::FromStr;
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|_| ProvisionError::Database("invalid PostgreSQL connection URL".into()))?;
    // The agent's own session settings: nothing resolved through a search_path the database's
    // owner set.
    let mut conn = PgConnection::connect_with(&super::conn::session_settings(opts)).await?;
    let found = reachable_definer_functions(&mut conn, schemas, &[]).await;
    let _ = conn.close().await;
    found
}
