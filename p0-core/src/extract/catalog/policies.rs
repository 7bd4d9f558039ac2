//! The row-level security policies that apply to every role, read from the catalog.

use super::WritePolicy;
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// The policies `TO PUBLIC` of tables with row security on: the USING expressions of those
/// for reading (SELECT, ALL), and every policy for writing (INSERT, UPDATE, DELETE, ALL); and
/// the tables with row security on.
#[allow(clippy::type_complexity)]
pub(super) async fn load_policies(
    conn: &mut sqlx::PgConnection,
) -> Result<
    (
        HashMap<(String, String), Vec<String>>,
        HashMap<(String, String), Vec<WritePolicy>>,
        HashSet<(String, String)>,
    ),
    sqlx::Error,
> {
    let secured: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relrowsecurity",
    )
    .fetch_all(&mut *conn)
    .await?;
    let rows = sqlx::query(
        "SELECT n.nspname::text, c.relname::text, p.polcmd::text, \
                pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relrowsecurity AND p.polroles = '{0}' \
         ORDER BY 1, 2, p.polname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut read: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut write: HashMap<(String, String), Vec<WritePolicy>> = HashMap::new();
    for r in rows {
        let key: (String, String) = (r.get(0), r.get(1));
        let command = r.get::<String, _>(2).chars().next().unwrap_or('?');
        let using: Option<String> = r.get(3);
        let check: Option<String> = r.get(4);
        if matches!(command, 'r' | '*') {
            if let Some(u) = &using {
                read.entry(key.clone()).or_default().push(u.clone());
            }
        }
        if matches!(command, 'a' | 'w' | 'd' | '*') {
            write.entry(key).or_default().push(WritePolicy {
                command,
                using,
                check,
            });
        }
    }
    Ok((read, write, secured.into_iter().collect()))
}
