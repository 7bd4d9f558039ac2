//! The live half of the MySQL / MariaDB escalation guard: each permission's object exists in
//! an allowed database and is rendered as a grant target with the core's quoting
//! (`crate::sql::mysql`); a pre-existing role reaches nothing privileged.

use crate::error::{GuardError, ProvisionError};
use crate::guard::GuardPolicy;
use crate::sql::mysql::ident;
use crate::types::{ObjectKind, Permission, Privilege, RoleName};
use sqlx::mysql::MySqlConnection;
use sqlx::Row;

/// The live guard: each permission's object exists in an allowed database; renders the grant.
pub(super) async fn render(
    conn: &mut MySqlConnection,
    policy: &GuardPolicy,
    p: &Permission,
) -> Result<String, ProvisionError> {
    let obj = &p.object;
    // A database-wide grant: data privileges only (never CREATE, DROP or ALTER), and only on
    // a database this agent manages.
    if matches!(obj.kind, ObjectKind::Database | ObjectKind::Schema) {
        policy.check_database(&obj.name)?;
        let data = matches!(
            p.privilege,
            Privilege::Select
                | Privilege::Insert
                | Privilege::Update
                | Privilege::Delete
                | Privilege::Execute
        );
        if !data || p.columns.is_some() {
            return Err(GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into());
        }
        return Ok(format!("{} ON {}.*", p.privilege, ident(&obj.name)?));
    }
    let db = obj
        .schema
        .as_deref()
        .ok_or_else(|| GuardError::BadName(format!("{obj} without a database")))?;
    policy.check_database(db)?;
    let cols = match &p.columns {
        Some(c) => format!(
            " ({})",
            c.iter()
                .map(|x| ident(x))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        None => String::new(),
    };
    match obj.kind {
        ObjectKind::Table => {
            if !matches!(
                p.privilege,
                Privilege::Select
                    | Privilege::Insert
                    | Privilege::Update
                    | Privilege::Delete
                    | Privilege::References
                    | Privilege::Trigger
            ) {
                return Err(GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into());
            }
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?")
                .bind(db)
                .bind(&obj.name)
                .fetch_one(&mut *conn)
                .await?;
            if n == 0 {
                return Err(GuardError::Missing(obj.to_string()).into());
            }
            Ok(format!(
                "{}{cols} ON {}.{}",
                p.privilege,
                ident(db)?,
                ident(&obj.name)?
            ))
        }
        ObjectKind::Function | ObjectKind::Procedure => {
            let wanted = if obj.kind == ObjectKind::Procedure {
                "PROCEDURE"
            } else {
                "FUNCTION"
            };
            // A function and a procedure may share a name: the one of the kind asked for.
            let row = sqlx::query("SELECT ROUTINE_TYPE, SECURITY_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? AND ROUTINE_TYPE = ?")
                .bind(db)
                .bind(&obj.name)
                .bind(wanted)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| GuardError::Missing(obj.to_string()))?;
            let (kind, security): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if security.eq_ignore_ascii_case("DEFINER") {
                return Err(GuardError::SecurityDefiner(format!("{db}.{}", obj.name)).into());
            }
            let keyword = if kind.eq_ignore_ascii_case("PROCEDURE") {
                "PROCEDURE"
            } else {
                "FUNCTION"
            };
            Ok(format!(
                "EXECUTE ON {keyword} {}.{}",
                ident(db)?,
                ident(&obj.name)?
            ))
        }
        _ => Err(GuardError::Mismatch(p.privilege.to_string(), obj.to_string()).into()),
    }
}

/// A role may be handed out only if neither it nor any role granted to it, directly or
/// transitively, holds a global privilege (administrative ones included), a GRANT OPTION
/// anywhere, ADMIN OPTION on a role, PROXY, or any privilege in a system database.
pub(super) async fn check_role(
    conn: &mut MySqlConnection,
    role: &RoleName,
) -> Result<(), ProvisionError> {
    let is_role: Option<String> =
        sqlx::query_scalar("SELECT is_role FROM mysql.user WHERE user = ? AND host = ''")
            .bind(role.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    if is_role.as_deref() != Some("Y") {
        return Err(GuardError::Missing(format!("role {role}")).into());
    }
    // The roles it reaches: `SET ROLE` and default roles make every one of them usable.
    let mut closure = vec![role.as_str().to_string()];
    let mut i = 0;
    while i < closure.len() && closure.len() <= 256 {
        let granted: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(Role AS CHAR) FROM mysql.roles_mapping WHERE User = ? AND Host = ''",
        )
        .bind(&closure[i])
        .fetch_all(&mut *conn)
        .await?;
        for g in granted {
            if !closure.contains(&g) {
                closure.push(g);
            }
        }
        i += 1;
    }
    let checks: [(&str, &str); 5] = [
        (
            "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ? AND Host = '' \
             AND CAST(JSON_VALUE(Priv, '$.access') AS UNSIGNED) <> 0",
            "global privileges",
        ),
        (
            "SELECT (SELECT COUNT(*) FROM mysql.db WHERE User = ? AND Host = '' AND Grant_priv = 'Y') \
                  + (SELECT COUNT(*) FROM mysql.tables_priv WHERE User = ? AND Host = '' AND FIND_IN_SET('Grant', Table_priv) > 0) \
                  + (SELECT COUNT(*) FROM mysql.procs_priv WHERE User = ? AND Host = '' AND FIND_IN_SET('Grant', Proc_priv) > 0)",
            "GRANT OPTION",
        ),
        (
            "SELECT COUNT(*) FROM mysql.roles_mapping WHERE User = ? AND Host = '' AND Admin_option = 'Y'",
            "ADMIN OPTION on a role",
        ),
        (
            "SELECT COUNT(*) FROM mysql.proxies_priv WHERE User = ? AND Host = ''",
            "PROXY",
        ),
        (
            "SELECT (SELECT COUNT(*) FROM mysql.db WHERE User = ? AND Host = '' AND LOWER(Db) IN ('mysql', 'sys', 'performance_schema', 'information_schema')) \
                  + (SELECT COUNT(*) FROM mysql.tables_priv WHERE User = ? AND Host = '' AND LOWER(Db) IN ('mysql', 'sys', 'performance_schema', 'information_schema'))",
            "privileges in a system database",
        ),
    ];
    for name in &closure {
        for (sql, what) in checks {
            let mut q = sqlx::query_scalar::<_, i64>(sql);
            for _ in 0..sql.matches('?').count() {
                q = q.bind(name);
            }
            if q.fetch_one(&mut *conn).await? > 0 {
                let through = if name == role.as_str() {
                    String::new()
                } else {
                    format!(" (through `{name}`)")
                };
                return Err(GuardError::PrivilegedRole(
                    role.to_string(),
                    format!("{what}{through}"),
                )
                .into());
            }
        }
    }
    Ok(())
}
