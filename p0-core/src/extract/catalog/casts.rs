//! User-defined casts, read from the catalog: the function a cast calls runs for the caller.

use super::{CastInfo, ViewCall};
use sqlx::Row;
use std::collections::HashMap;

/// The casts whose function is a user function, and the columns whose type such a cast
/// (in assignment or implicit context) produces, by (schema, name) of their table.
#[allow(clippy::type_complexity)]
pub(super) async fn load_casts(
    conn: &mut sqlx::PgConnection,
) -> Result<
    (
        Vec<CastInfo>,
        HashMap<(String, String), Vec<(String, String)>>,
    ),
    sqlx::Error,
> {
    const USER_CASTS: &str = "FROM pg_cast k JOIN pg_proc p ON p.oid = k.castfunc \
         JOIN pg_namespace pn ON pn.oid = p.pronamespace \
         WHERE pn.nspname NOT IN ('pg_catalog','information_schema')";
    let rows = sqlx::query(&format!(
        "SELECT format_type(k.castsource, NULL), format_type(k.casttarget, NULL), k.castcontext::text, \
                pn.nspname::text, p.proname::text, oidvectortypes(p.proargtypes), p.provolatile = 'v' \
         {USER_CASTS} ORDER BY 1, 2"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let casts = rows
        .into_iter()
        .map(|r| CastInfo {
            source: r.get(0),
            target: r.get(1),
            context: r.get::<String, _>(2).chars().next().unwrap_or('e'),
            function: ViewCall {
                schema: r.get(3),
                name: r.get(4),
                signature: r.get(5),
                volatile: r.get(6),
            },
        })
        .collect();
    let rows = sqlx::query(&format!(
        "SELECT n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, NULL) \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','f','v') \
           AND a.atttypid IN (SELECT k.casttarget {USER_CASTS} AND k.castcontext IN ('a','i')) \
         ORDER BY 1, 2, a.attnum"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut typed: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
    for r in rows {
        typed
            .entry((r.get(0), r.get(1)))
            .or_default()
            .push((r.get(2), r.get(3)));
    }
    Ok((casts, typed))
}
