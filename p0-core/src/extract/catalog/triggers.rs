//! The triggers a write fires, read from the catalog.

use super::{TriggerInfo, ViewCall};
use sqlx::Row;
use std::collections::HashMap;

/// The enabled, user-defined triggers, with their functions and what their WHEN clauses call.
pub(super) async fn load_triggers(
    conn: &mut sqlx::PgConnection,
) -> Result<HashMap<(String, String), Vec<TriggerInfo>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT n.nspname::text, c.relname::text, t.tgname::text, t.tgtype::int4, \
                format('%s.%s', pn.nspname, p.proname), l.lanname::text, p.prosecdef, p.prosrc, \
                ARRAY(SELECT format('%s\x1f%s\x1f%s\x1f%s', wn.nspname, w.proname, oidvectortypes(w.proargtypes), w.provolatile = 'v') \
                      FROM pg_depend d JOIN pg_proc w ON w.oid = d.refobjid JOIN pg_namespace wn ON wn.oid = w.pronamespace \
                      WHERE d.classid = 'pg_trigger'::regclass AND d.objid = t.oid AND d.refclassid = 'pg_proc'::regclass \
                        AND w.oid <> t.tgfoid AND wn.nspname NOT IN ('pg_catalog','information_schema')) \
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace \
         JOIN pg_language l ON l.oid = p.prolang \
         WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' ORDER BY 1, 2, 3",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut triggers: HashMap<(String, String), Vec<TriggerInfo>> = HashMap::new();
    for r in rows {
        let language: String = r.get(5);
        let security_definer: bool = r.get(6);
        let body = (!security_definer && (language == "sql" || language == "plpgsql"))
            .then(|| r.get::<String, _>(7));
        let when_calls = r
            .get::<Vec<String>, _>(8)
            .iter()
            .filter_map(|w| {
                let mut parts = w.split('\u{1f}');
                Some(ViewCall {
                    schema: parts.next()?.into(),
                    name: parts.next()?.into(),
                    signature: parts.next()?.into(),
                    volatile: parts.next()? == "true",
                })
            })
            .collect();
        triggers
            .entry((r.get(0), r.get(1)))
            .or_default()
            .push(TriggerInfo {
                name: r.get(2),
                events: r.get(3),
                function: r.get(4),
                language,
                body,
                security_definer,
                when_calls,
            });
    }
    Ok(triggers)
}
