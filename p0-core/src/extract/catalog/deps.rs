//! What views and written columns call, read from the catalog: the views and functions each
//! view's rule depends on, and the functions of domain CHECKs and generated columns.

use super::{ColumnCalls, ViewCall, ViewDeps};
use sqlx::Row;
use std::collections::HashMap;

/// The views and user functions each view's rule depends on (`pg_depend` of its
/// `pg_rewrite` rule; an operator counts as its function).
pub(super) async fn load_view_deps(
    conn: &mut sqlx::PgConnection,
) -> Result<HashMap<(String, String), ViewDeps>, sqlx::Error> {
    const RULE_DEPS: &str = "SELECT DISTINCT vn.nspname::text AS vs, v.relname::text AS vn, d.refclassid, d.refobjid \
         FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace \
         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
         WHERE v.relkind = 'v' AND vn.nspname NOT IN ('pg_catalog','information_schema') \
           AND vn.nspname NOT LIKE 'pg\\_toast%' AND vn.nspname NOT LIKE 'pg\\_temp\\_%'";
    let mut views: HashMap<(String, String), ViewDeps> = HashMap::new();
    let rels = sqlx::query(&format!(
        "SELECT d.vs, d.vn, n.nspname::text, c.relname::text FROM ({RULE_DEPS}) d \
         JOIN pg_class c ON d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'v' AND NOT (n.nspname = d.vs AND c.relname::text = d.vn) \
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for r in rels {
        views
            .entry((r.get(0), r.get(1)))
            .or_default()
            .views
            .push((r.get(2), r.get(3)));
    }
    let bases = sqlx::query(&format!(
        "SELECT d.vs, d.vn, min(n.nspname::text), min(c.relname::text) FROM ({RULE_DEPS}) d \
         JOIN pg_class c ON d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r','p','f','v') AND NOT (n.nspname = d.vs AND c.relname::text = d.vn) \
         GROUP BY 1, 2 HAVING count(DISTINCT c.oid) = 1"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for r in bases {
        views.entry((r.get(0), r.get(1))).or_default().base = Some((r.get(2), r.get(3)));
    }
    let funcs = sqlx::query(&format!(
        "SELECT d.vs, d.vn, n.nspname::text, p.proname::text, oidvectortypes(p.proargtypes), p.provolatile = 'v', \
                pg_get_viewdef(format('%I.%I', d.vs, d.vn)::regclass) FROM ({RULE_DEPS}) d \
         LEFT JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass AND o.oid = d.refobjid \
         JOIN pg_proc p ON p.oid = CASE WHEN d.refclassid = 'pg_proc'::regclass THEN d.refobjid ELSE o.oprcode END \
         JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname NOT IN ('pg_catalog','information_schema') \
         GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for r in funcs {
        let deps = views.entry((r.get(0), r.get(1))).or_default();
        deps.functions.push(ViewCall {
            schema: r.get(2),
            name: r.get(3),
            signature: r.get(4),
            volatile: r.get(5),
        });
        deps.definition = r.get(6);
    }
    Ok(views)
}

/// What writing each column calls: the functions of its domain's CHECK constraints (through
/// domains over domains), and of its expression when it is a stored generated column.
pub(super) async fn load_column_calls(
    conn: &mut sqlx::PgConnection,
) -> Result<HashMap<(String, String), Vec<ColumnCalls>>, sqlx::Error> {
    const FUNC: &str =
        "pn.nspname::text, p.proname::text, oidvectortypes(p.proargtypes), p.provolatile = 'v'";
    const TABLE: &str =
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace";
    const PROC: &str =
        "JOIN pg_proc p ON p.oid = dp.refobjid JOIN pg_namespace pn ON pn.oid = p.pronamespace";
    const WHERE: &str = "a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','f') \
         AND pn.nspname NOT IN ('pg_catalog','information_schema') \
         AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast%'";
    let domains = sqlx::query(&format!(
        "WITH RECURSIVE dom(top, d) AS ( \
           SELECT t.oid, t.oid FROM pg_type t WHERE t.typtype = 'd' \
           UNION SELECT dom.top, b.oid FROM dom JOIN pg_type t ON t.oid = dom.d \
             JOIN pg_type b ON b.oid = t.typbasetype AND b.typtype = 'd') \
         SELECT DISTINCT n.nspname::text, c.relname::text, a.attname::text, {FUNC}, NULL::text[] \
         FROM pg_attribute a {TABLE} JOIN dom ON dom.top = a.atttypid \
         JOIN pg_constraint k ON k.contypid = dom.d \
         JOIN pg_depend dp ON dp.classid = 'pg_constraint'::regclass AND dp.objid = k.oid \
           AND dp.refclassid = 'pg_proc'::regclass {PROC} \
         WHERE {WHERE}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let generated = sqlx::query(&format!(
        "SELECT DISTINCT n.nspname::text, c.relname::text, a.attname::text, {FUNC}, \
                ARRAY(SELECT ra.attname::text FROM pg_depend dc JOIN pg_attribute ra \
                        ON ra.attrelid = dc.refobjid AND ra.attnum = dc.refobjsubid \
                      WHERE dc.classid = 'pg_attrdef'::regclass AND dc.objid = d.oid \
                        AND dc.refclassid = 'pg_class'::regclass AND dc.refobjsubid > 0 \
                      ORDER BY 1) \
         FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum {TABLE} \
         JOIN pg_depend dp ON dp.classid = 'pg_attrdef'::regclass AND dp.objid = d.oid \
           AND dp.refclassid = 'pg_proc'::regclass {PROC} \
         WHERE a.attgenerated = 's' AND {WHERE}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut writes: HashMap<(String, String), Vec<ColumnCalls>> = HashMap::new();
    for r in domains.into_iter().chain(generated) {
        let column: String = r.get(2);
        let generated_from: Option<Vec<String>> = r.get(7);
        let cols = writes.entry((r.get(0), r.get(1))).or_default();
        let at = match cols
            .iter()
            .position(|c| c.column == column && c.generated_from == generated_from)
        {
            Some(i) => i,
            None => {
                cols.push(ColumnCalls {
                    column,
                    functions: Vec::new(),
                    generated_from,
                });
                cols.len() - 1
            }
        };
        cols[at].functions.push(ViewCall {
            schema: r.get(3),
            name: r.get(4),
            signature: r.get(5),
            volatile: r.get(6),
        });
    }
    Ok(writes)
}
