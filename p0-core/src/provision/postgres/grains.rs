//! Shared roles at the grain of one privilege on one object (one column, for column
//! privileges). A permission set's role (`p0r_…`) holds no privilege of its own: it is a
//! member of one grain role (`p0g_…`) per rendered target, and each grain role holds that one
//! privilege. An object's ACL then names at most one grain role per privilege (and per column),
//! however many distinct permission sets are live on it: PostgreSQL keeps an object's ACL in
//! its catalog row, and one entry per set role made the row outgrow its page (`row is too
//! big`) after a few thousand distinct sets on one table.
//!
//! Grain roles are created, joined and dropped only under the ACL lock (`Admin::lock_acls`),
//! like the set roles whose creation and removal need them.

use super::conn::exec;
use crate::error::{GuardError, ProvisionError};
use crate::provision::marker::Marker;
use crate::provision::plan::{AccountKind, RevokeReport};
use crate::sql::pg::{ident, literal};
use crate::types::RoleName;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::collections::HashMap;

/// `p0g_<24 hex of SHA-256(database, target)>`: the grain role that holds `target`
/// (`<privilege> [(column)] ON <kind> <name>`, rendered from the catalog, so equal grants
/// share it) in `database`. Roles are the cluster's and targets name no database: without it,
/// a lease on one database would join the grain of the same-named table in another.
pub(super) fn grain_name(database: &str, target: &str) -> String {
    let mut h = Sha256::new();
    h.update(database.as_bytes());
    h.update([0]);
    h.update(target.as_bytes());
    format!("p0g_{}", &hex::encode(h.finalize())[..24])
}

/// Creates the set role `role`, marked, as a member of the grain role of each of `targets`,
/// creating the grain roles that do not exist yet. Under the ACL lock. A grain role's name
/// taken by a role p0 did not create is refused, as a set role's is.
pub(super) async fn create_role(
    tx: &mut PgConnection,
    database: &str,
    role: &RoleName,
    targets: &[String],
) -> Result<(), ProvisionError> {
    // One grain per target, even where two spellings of a permission render alike.
    let grains: Vec<(String, &String)> = targets
        .iter()
        .map(|t| (grain_name(database, t), t))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let names: Vec<&str> = grains.iter().map(|(g, _)| g.as_str()).collect();
    let found: HashMap<String, Option<String>> = sqlx::query_as(
        "SELECT rolname::text, shobj_description(oid, 'pg_authid') FROM pg_catalog.pg_roles \
         WHERE rolname = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let marker = literal(&Marker::role().render())?;
    let grantee = ident(role.as_str())?;
    let mut sql = format!("CREATE ROLE {grantee} NOLOGIN; COMMENT ON ROLE {grantee} IS {marker};");
    for (grain, target) in &grains {
        match found.get(grain) {
            None => {
                let g = ident(grain)?;
                sql.push_str(&format!(
                    "CREATE ROLE {g} NOLOGIN; COMMENT ON ROLE {g} IS {marker}; GRANT {target} TO {g};"
                ));
            }
            Some(comment)
                if comment
                    .as_deref()
                    .and_then(Marker::parse)
                    .is_some_and(|m| m.kind == AccountKind::Role) => {}
            Some(_) => return Err(GuardError::ExistingRole(grain.clone()).into()),
        }
    }
    if !grains.is_empty() {
        let list = names
            .iter()
            .map(|g| ident(g))
            .collect::<Result<Vec<_>, _>>()?
            .join(", ");
        sql.push_str(&format!("GRANT {list} TO {grantee};"));
    }
    exec(tx, &sql).await
}

/// The grain roles `role` is a member of.
pub(super) async fn grains_of(
    tx: &mut PgConnection,
    role: &str,
) -> Result<Vec<String>, ProvisionError> {
    Ok(sqlx::query_scalar(
        // By the member's oid, so the index on (member, roleid) answers, however many roles
        // and memberships the cluster has (a join on names scanned them all).
        "SELECT g.rolname::text FROM pg_catalog.pg_auth_members m \
         JOIN pg_catalog.pg_roles g ON g.oid = m.roleid \
         WHERE m.member = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = $1) \
           AND g.rolname LIKE 'p0g\\_%'",
    )
    .bind(role)
    .fetch_all(&mut *tx)
    .await?)
}

/// The grain roles whose only member is `role`: they go when it goes.
pub(super) async fn grains_alone<'c, C>(conn: C, role: &str) -> Result<Vec<String>, ProvisionError>
where
    C: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    Ok(sqlx::query_scalar(
        "SELECT g.rolname::text FROM pg_catalog.pg_auth_members m \
         JOIN pg_catalog.pg_roles g ON g.oid = m.roleid \
         WHERE m.member = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = $1) \
           AND g.rolname LIKE 'p0g\\_%' \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members o \
             WHERE o.roleid = m.roleid AND o.member <> m.member)",
    )
    .bind(role)
    .fetch_all(conn)
    .await?)
}

/// Drops those of `grains` that are p0's and have no member left (their set roles are gone),
/// with what was granted to them. Under the ACL lock.
pub(super) async fn drop_unused(
    tx: &mut PgConnection,
    grains: &[String],
    report: &mut RevokeReport,
) -> Result<(), ProvisionError> {
    if grains.is_empty() {
        return Ok(());
    }
    let unused: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT g.rolname::text, shobj_description(g.oid, 'pg_authid') FROM pg_catalog.pg_roles g \
         WHERE g.rolname = ANY($1) \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.roleid = g.oid)",
    )
    .bind(grains)
    .fetch_all(&mut *tx)
    .await?;
    for (grain, comment) in unused {
        let ours = comment
            .as_deref()
            .and_then(Marker::parse)
            .is_some_and(|m| m.kind == AccountKind::Role);
        if !ours {
            continue;
        }
        super::conn::drop_owned(tx, &grain, "", report).await?;
        exec(tx, &format!("DROP ROLE {}", ident(&grain)?)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_targets_share_a_grain_and_names_fit() {
        let t = r#"SELECT ("total") ON TABLE "sales"."orders""#;
        let a = grain_name("app", t);
        assert_eq!(a, grain_name("app", t));
        assert_ne!(
            a,
            grain_name("app", r#"SELECT ("id") ON TABLE "sales"."orders""#)
        );
        // The same table name in another database of the cluster is another grain.
        assert_ne!(a, grain_name("staging", t));
        assert!(a.starts_with("p0g_") && a.len() == 28);
    }
}
