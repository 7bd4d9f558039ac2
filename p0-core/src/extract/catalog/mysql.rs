//! The snapshot of a MariaDB / MySQL catalog, read from `information_schema`: relations and
//! their columns, the definitions of `SQL SECURITY INVOKER` views, and stored routines with
//! the bodies of those that run with the caller's privileges.

use super::{Catalog, ColumnInfo, FuncInfo, RelInfo, RelKind};
use crate::error::ExtractError;
use sqlx::{Connection, Executor, Row};
use std::collections::HashMap;

/// The language p0 gives a MariaDB / MySQL routine body (a compound statement).
pub const MYSQL_ROUTINE: &str = "mysql";

/// The databases of the server itself, never the requester's objects.
const SYSTEM: &str = "('mysql','information_schema','performance_schema','sys')";

impl Catalog {
    /// Loads a snapshot from a MariaDB or MySQL server. Only `information_schema` is read.
    /// Unqualified names belong to `database`, or to the URL's database when it is `None`.
    pub async fn load_mysql(url: &str, database: Option<&str>) -> Result<Self, ExtractError> {
        let err = |e: sqlx::Error| {
            ExtractError::Catalog(crate::error::ProvisionError::from(e).to_string())
        };
        let mut conn = sqlx::MySqlConnection::connect(url).await.map_err(err)?;
        let result = read(&mut conn, database).await.map_err(err);
        let _ = conn.close().await;
        result
    }
}

async fn read(
    conn: &mut sqlx::MySqlConnection,
    database: Option<&str>,
) -> Result<Catalog, sqlx::Error> {
    let (current, version): (Option<String>, String) =
        sqlx::query_as("SELECT CAST(DATABASE() AS CHAR), CAST(VERSION() AS CHAR)")
            .fetch_one(&mut *conn)
            .await?;
    let database = database.map(str::to_string).or(current).unwrap_or_default();
    let mut relations: HashMap<(String, String), RelInfo> = HashMap::new();
    let rows = sqlx::query(&format!(
        "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(TABLE_TYPE AS CHAR) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN {SYSTEM}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let kind = match r.get::<String, _>(2).as_str() {
            "VIEW" => RelKind::View,
            "SEQUENCE" => RelKind::Sequence,
            _ => RelKind::Table,
        };
        relations.insert(
            (r.get(0), r.get(1)),
            RelInfo {
                kind,
                columns: Vec::new(),
                invoker_body: None,
            },
        );
    }
    // An INVOKER view's definition runs as the caller. One the reader may not see (no SHOW
    // VIEW) is kept as a body that does not parse: reported, never taken as needing nothing.
    let views = sqlx::query(&format!(
        "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(VIEW_DEFINITION AS CHAR) \
         FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN {SYSTEM} AND SECURITY_TYPE = 'INVOKER'"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for r in views {
        if let Some(rel) = relations.get_mut(&(r.get(0), r.get(1))) {
            let body: Option<String> = r.get(2);
            rel.invoker_body = Some(
                body.filter(|b| !b.trim().is_empty())
                    .unwrap_or_else(|| "(definition not readable by p0)".into()),
            );
        }
    }
    let cols = sqlx::query(&format!(
        "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), \
                CASE WHEN IS_GENERATED = 'NEVER' THEN CAST(COLUMN_DEFAULT AS CHAR) END \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN {SYSTEM} \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for r in cols {
        if let Some(rel) = relations.get_mut(&(r.get(0), r.get(1))) {
            rel.columns.push(ColumnInfo {
                name: r.get(2),
                default: r.get(3),
            });
        }
    }
    let mut params: HashMap<(String, String, String), Vec<String>> = HashMap::new();
    let rows = sqlx::query(&format!(
        "SELECT CAST(SPECIFIC_SCHEMA AS CHAR), CAST(SPECIFIC_NAME AS CHAR), CAST(ROUTINE_TYPE AS CHAR), \
                CAST(PARAMETER_NAME AS CHAR) \
         FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA NOT IN {SYSTEM} AND ORDINAL_POSITION > 0 \
         ORDER BY SPECIFIC_SCHEMA, SPECIFIC_NAME, ROUTINE_TYPE, ORDINAL_POSITION"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        params
            .entry((r.get(0), r.get(1), r.get(2)))
            .or_default()
            .push(r.get::<Option<String>, _>(3).unwrap_or_default());
    }
    let mut functions: HashMap<(String, String), Vec<FuncInfo>> = HashMap::new();
    let rows = sqlx::query(&format!(
        "SELECT CAST(ROUTINE_SCHEMA AS CHAR), CAST(ROUTINE_NAME AS CHAR), CAST(ROUTINE_TYPE AS CHAR), \
                SECURITY_TYPE = 'DEFINER', CAST(ROUTINE_DEFINITION AS CHAR) \
         FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN {SYSTEM}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let (schema, name, kind): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let security_definer = r.get::<i64, _>(3) != 0;
        let arg_names = params
            .remove(&(schema.clone(), name.clone(), kind.clone()))
            .unwrap_or_default();
        // An INVOKER routine's body runs as the caller; one the reader may not see is kept
        // as a body that does not parse, so that it is reported.
        let body = (!security_definer).then(|| {
            let text: Option<String> = r.get(4);
            (
                MYSQL_ROUTINE.to_string(),
                text.filter(|b| !b.trim().is_empty())
                    .unwrap_or_else(|| "(body not readable by p0)".into()),
            )
        });
        // Routine names are case-insensitive: kept in lower case, looked up so.
        let name = name.to_lowercase();
        functions.entry((schema, name)).or_default().push(FuncInfo {
            signature: String::new(),
            nargs: arg_names.len(),
            ndefaults: 0,
            variadic: false,
            arg_names,
            security_definer,
            procedure: kind == "PROCEDURE",
            body,
        });
    }
    let builtins = natives(conn, &functions).await?;
    Ok(Catalog {
        builtins,
        search_path: if database.is_empty() {
            Vec::new()
        } else {
            vec![database.clone()]
        },
        database,
        relations,
        functions,
        server_version: server_version(&version),
        ..Catalog::default()
    })
}

/// The stored functions' names that are also native functions: unqualified, a call of one of
/// them calls the native function. The server says: preparing (never running) a call of a
/// native function with thirteen arguments fails with "incorrect parameter count in the call
/// to native function" (1582) or a name collision (1630); a stored function's call prepares.
/// A native function that takes thirteen arguments is taken as stored: EXECUTE it does not
/// need is granted, never less than the call needs.
async fn natives(
    conn: &mut sqlx::MySqlConnection,
    functions: &HashMap<(String, String), Vec<FuncInfo>>,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let mut names: Vec<String> = functions
        .iter()
        .filter(|(_, fs)| fs.iter().any(|f| !f.procedure))
        .map(|((_, name), _)| name.clone())
        .collect();
    names.sort();
    names.dedup();
    let mut natives = std::collections::HashSet::new();
    for name in names {
        let call = format!(
            "SELECT `{}`({})",
            name.replace('`', "``"),
            ["NULL"; 13].join(",")
        );
        let probe = format!(
            "PREPARE p0_probe FROM '{}'",
            call.replace('\\', "\\\\").replace('\'', "''")
        );
        // Text protocol (no arguments): PREPARE cannot itself be prepared.
        match conn.execute(probe.as_str()).await {
            Ok(_) => {
                conn.execute("DEALLOCATE PREPARE p0_probe").await?;
            }
            Err(sqlx::Error::Database(e)) => {
                let number = e
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .map(|e| e.number());
                if matches!(number, Some(1582 | 1630)) {
                    natives.insert(name);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(natives)
}

/// `10.11.6-MariaDB-0+deb12u1` → `(10, 11, 6)`.
fn server_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

#[cfg(test)]
mod tests {
    use super::server_version;

    #[test]
    fn versions_are_read_from_the_servers_text() {
        assert_eq!(
            server_version("10.11.6-MariaDB-0+deb12u1"),
            Some((10, 11, 6))
        );
        assert_eq!(server_version("8.0.36"), Some((8, 0, 36)));
        assert_eq!(server_version("garbage"), None);
    }
}
