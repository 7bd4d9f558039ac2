//! The statements that create users and roles, rendered from typed values with the core's
//! quoting (`crate::sql::pg`); each grant target resolved against the catalog first (the live
//! half of the guard for objects).

use crate::error::{GuardError, ProvisionError};
use crate::guard::is_system_schema;
use crate::provision::backend::NewUser;
use crate::sql::pg::{ident, literal};
use crate::types::{ObjectKind, Permission, PermissionSet};
use sqlx::{PgConnection, Row};

/// The login user: no attribute, a SCRAM verifier (never the password), `VALID UNTIL` the
/// expiry, and the marker as its comment. It joins its role in [`grant_membership`].
pub(super) fn create_user(user: &NewUser, verifier: &str) -> Result<String, ProvisionError> {
    let expires = user
        .expires_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let name = ident(user.username.as_str())?;
    Ok(format!(
        "CREATE ROLE {name} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS \
         PASSWORD {} VALID UNTIL {}; COMMENT ON ROLE {name} IS {}",
        literal(verifier)?,
        literal(&expires)?,
        literal(&user.marker.render())?,
    ))
}

/// `GRANT role TO user`: the user joins its role.
pub(super) fn grant_membership(user: &NewUser) -> Result<String, ProvisionError> {
    Ok(format!(
        "GRANT {} TO {}",
        ident(user.role.as_str())?,
        ident(user.username.as_str())?
    ))
}

/// Every permission of `set` resolved and rendered (see [`target`]), a column privilege once
/// per column: each target is one grain (`grains`), so that an object's ACL is bounded by its
/// columns, not by the column lists asked for.
pub(super) async fn targets(
    tx: &mut PgConnection,
    database: &str,
    set: &PermissionSet,
) -> Result<Vec<String>, ProvisionError> {
    let mut out = Vec::with_capacity(set.len());
    for p in set.iter() {
        match &p.columns {
            Some(cols) if cols.len() > 1 => {
                for c in cols {
                    let one = Permission {
                        columns: Some(vec![c.clone()]),
                        ..p.clone()
                    };
                    out.push(target(tx, database, &one).await?);
                }
            }
            _ => out.push(target(tx, database, &p).await?),
        }
    }
    Ok(out)
}

/// `<privilege> [(columns)]`.
fn privilege(p: &Permission) -> Result<String, GuardError> {
    Ok(match &p.columns {
        Some(cols) => format!(
            "{} ({})",
            p.privilege,
            cols.iter()
                .map(|c| ident(c))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        None => p.privilege.to_string(),
    })
}

/// `GRANT <privilege> [(columns)] ON <kind> <name> TO <grantee>` in PostgreSQL's syntax, every
/// name quoted by the core (`crate::sql::pg`): for tools that print the grants a permission
/// set needs. It resolves nothing (a function's argument types are taken as given, and refused
/// if they could end the statement); the agent renders its own grants from the live catalog.
pub fn render_grant(p: &Permission, grantee: &str) -> Result<String, GuardError> {
    let obj = &p.object;
    let qualified = || -> Result<String, GuardError> {
        Ok(format!(
            "{}.{}",
            ident(obj.schema.as_deref().unwrap_or_default())?,
            ident(&obj.name)?
        ))
    };
    let target = match obj.kind {
        ObjectKind::Database => format!("DATABASE {}", ident(&obj.name)?),
        ObjectKind::Schema => format!("SCHEMA {}", ident(&obj.name)?),
        ObjectKind::Table => format!("TABLE {}", qualified()?),
        ObjectKind::Sequence => format!("SEQUENCE {}", qualified()?),
        ObjectKind::Function | ObjectKind::Procedure => {
            let args = obj.signature.as_deref().unwrap_or_default();
            if ["'", ";", "--", "/*", "\0"]
                .iter()
                .any(|bad| args.contains(bad))
            {
                return Err(GuardError::BadName(obj.to_string()));
            }
            let keyword = if obj.kind == ObjectKind::Procedure {
                "PROCEDURE"
            } else {
                "FUNCTION"
            };
            format!("{keyword} {}({args})", qualified()?)
        }
    };
    Ok(format!(
        "GRANT {} ON {target} TO {}",
        privilege(p)?,
        ident(grantee)?
    ))
}

/// Resolves one permission against the catalog and renders `<privilege> [(columns)] ON <kind>
/// <name>`: the object exists and is of the kind the privilege applies to, a routine is
/// neither SECURITY DEFINER nor in a system schema.
async fn target(
    tx: &mut PgConnection,
    database: &str,
    p: &Permission,
) -> Result<String, ProvisionError> {
    let obj = &p.object;
    let privilege = privilege(p)?;
    match obj.kind {
        ObjectKind::Database => {
            if obj.name != database {
                return Err(GuardError::ForeignDatabase(obj.name.clone()).into());
            }
            Ok(format!("{privilege} ON DATABASE {}", ident(&obj.name)?))
        }
        ObjectKind::Schema => {
            let found: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
                    .bind(&obj.name)
                    .fetch_optional(&mut *tx)
                    .await?;
            found.ok_or_else(|| GuardError::Missing(obj.to_string()))?;
            Ok(format!("{privilege} ON SCHEMA {}", ident(&obj.name)?))
        }
        ObjectKind::Table | ObjectKind::Sequence => {
            let schema = obj.schema.as_deref().unwrap_or_default();
            let relkind: Option<String> = sqlx::query_scalar(
                "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
            )
            .bind(schema)
            .bind(&obj.name)
            .fetch_optional(&mut *tx)
            .await?;
            let relkind = relkind.ok_or_else(|| GuardError::Missing(obj.to_string()))?;
            let (ok, keyword) = match obj.kind {
                ObjectKind::Sequence => (relkind == "S", "SEQUENCE"),
                _ => (
                    matches!(relkind.as_str(), "r" | "v" | "m" | "p" | "f"),
                    "TABLE",
                ),
            };
            if !ok {
                return Err(GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into());
            }
            Ok(format!(
                "{privilege} ON {keyword} {}.{}",
                ident(schema)?,
                ident(&obj.name)?
            ))
        }
        ObjectKind::Function | ObjectKind::Procedure => {
            let text = format!(
                "{}.{}({})",
                ident(obj.schema.as_deref().unwrap_or_default())?,
                ident(&obj.name)?,
                obj.signature.as_deref().unwrap_or_default()
            );
            // The signature is parsed by PostgreSQL from a bound parameter, and the name
            // rendered back by the catalog (schema-qualified: search_path is pg_catalog).
            let row = sqlx::query(
                "SELECT p.oid::regprocedure::text AS name, p.prosecdef, n.nspname::text AS nspname, \
                        p.prokind = 'p' AS procedure \
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = to_regprocedure($1)",
            )
            .bind(&text)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| GuardError::Missing(obj.to_string()))?;
            let (name, secdef, nsp, procedure): (String, bool, String, bool) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
            // A procedure is granted as one, and a function as a function: never one for
            // the other.
            if procedure != (obj.kind == ObjectKind::Procedure) {
                return Err(GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into());
            }
            if is_system_schema(&nsp) {
                return Err(GuardError::SystemSchema(nsp).into());
            }
            if secdef {
                return Err(GuardError::SecurityDefiner(name).into());
            }
            let keyword = if procedure { "PROCEDURE" } else { "ROUTINE" };
            Ok(format!("{privilege} ON {keyword} {name}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ObjectRef, Privilege};

    #[test]
    fn printed_grants_quote_every_name() {
        let p = Permission {
            privilege: Privilege::Update,
            object: ObjectRef::table("sa\"les", "orders"),
            columns: Some(vec!["total".into()]),
        };
        assert_eq!(
            render_grant(&p, "mig").unwrap(),
            r#"GRANT UPDATE ("total") ON TABLE "sa""les"."orders" TO "mig""#
        );
        let f = Permission::new(
            Privilege::Execute,
            ObjectRef::function("public", "add", "int); DROP TABLE t; --"),
        );
        assert!(render_grant(&f, "mig").is_err());
    }

    #[test]
    fn procedures_are_granted_as_procedures() {
        let p = Permission::new(
            Privilege::Execute,
            ObjectRef::procedure("app", "add_log", "text"),
        );
        assert_eq!(
            render_grant(&p, "mig").unwrap(),
            r#"GRANT EXECUTE ON PROCEDURE "app"."add_log"(text) TO "mig""#
        );
        let f = Permission::new(
            Privilege::Execute,
            ObjectRef::function("app", "f", "integer"),
        );
        assert_eq!(
            render_grant(&f, "mig").unwrap(),
            r#"GRANT EXECUTE ON FUNCTION "app"."f"(integer) TO "mig""#
        );
    }
}
