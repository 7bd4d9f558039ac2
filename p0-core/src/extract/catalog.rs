//! A snapshot of the live catalog that extraction resolves names against.
//!
//! Loaded once (a handful of queries) and then consulted synchronously, so extraction itself
//! stays a pure function of (SQL, snapshot).

use crate::error::ExtractError;
#[cfg(feature = "postgres")]
use sqlx::{Connection, Row};
use std::collections::{HashMap, HashSet};

#[cfg(feature = "postgres")]
mod triggers;
#[cfg(feature = "postgres")]
use triggers::load_triggers;
#[cfg(feature = "postgres")]
mod deps;
#[cfg(feature = "postgres")]
use deps::{load_column_calls, load_view_deps};
#[cfg(feature = "postgres")]
mod casts;
#[cfg(feature = "postgres")]
use casts::load_casts;
#[cfg(feature = "postgres")]
mod policies;
#[cfg(feature = "postgres")]
use policies::load_policies;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "mysql")]
pub use mysql::MYSQL_ROUTINE;
/// The language p0 gives a MariaDB / MySQL routine body (a compound statement).
#[cfg(not(feature = "mysql"))]
pub const MYSQL_ROUTINE: &str = "mysql";

/// What kind of relation a name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelKind {
    /// An ordinary, partitioned or foreign table.
    Table,
    /// A view (`invoker_body` set when it runs with the caller's privileges).
    View,
    /// A materialized view.
    MaterializedView,
    /// A sequence.
    Sequence,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Its name.
    pub name: String,
    /// The default expression, as SQL text, when it has one that is evaluated on insert
    /// (identity and generated columns have none here: they need no privilege).
    pub default: Option<String>,
}

/// One relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelInfo {
    /// Its kind.
    pub kind: RelKind,
    /// Its columns in order.
    pub columns: Vec<ColumnInfo>,
    /// For views that run with the caller's privileges (`security_invoker`): the definition.
    pub invoker_body: Option<String>,
}

/// The language p0 gives a SQL-standard body (`BEGIN ATOMIC ... END`, `RETURN expr`): SQL whose
/// names were bound when the function was created, so they need no schema USAGE.
pub const SQL_STANDARD: &str = "sql-standard";

/// One user-defined function or procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncInfo {
    /// The input argument types, e.g. `integer, integer` (no parameter names: what
    /// `GRANT ... ON FUNCTION` and `to_regprocedure` take).
    pub signature: String,
    /// Number of declared arguments.
    pub nargs: usize,
    /// How many of them have defaults.
    pub ndefaults: usize,
    /// Whether the last argument is VARIADIC.
    pub variadic: bool,
    /// The names of the input arguments in order (empty for an unnamed one), for calls with
    /// named arguments (`f(a => 1)`).
    pub arg_names: Vec<String>,
    /// Whether it runs with its owner's privileges.
    pub security_definer: bool,
    /// Whether it is a procedure (named by CALL) rather than a function.
    pub procedure: bool,
    /// For LANGUAGE sql / plpgsql functions that run with the caller's privileges: the body.
    pub body: Option<(String, String)>,
}

/// What an ordinary view's rule reaches, bound by OID when the view was created: its
/// relations are checked as the view's owner, but the functions it calls as the querying user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewDeps {
    /// The views it reads, by (schema, name).
    pub views: Vec<(String, String)>,
    /// The user functions it calls (aggregates and operators' functions included).
    pub functions: Vec<ViewCall>,
    /// The one relation an INSERT or UPDATE through it writes (an auto-updatable view).
    pub base: Option<(String, String)>,
    /// Its definition (`pg_get_viewdef`) when it calls user functions: which output column
    /// calls which, since the planner drops the columns a query does not read.
    pub definition: Option<String>,
}

/// What writing one column of a table calls for the caller, bound by OID: the functions of
/// its domain's CHECK constraints, or of its expression when it is a stored generated column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnCalls {
    /// The column.
    pub column: String,
    /// The functions called.
    pub functions: Vec<ViewCall>,
    /// For a generated column: the columns it is computed from (an UPDATE of one of them
    /// computes it again).
    pub generated_from: Option<Vec<String>>,
}

/// A row trigger on a table or view (enabled, not internal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerInfo {
    /// Its name.
    pub name: String,
    /// The events that fire it: bits of `pg_trigger.tgtype` (4 INSERT, 8 DELETE, 16 UPDATE,
    /// 32 TRUNCATE).
    pub events: i32,
    /// Its function, `schema.name`, for messages (EXECUTE on it is not checked).
    pub function: String,
    /// The function's language.
    pub language: String,
    /// Its body when it runs with the caller's privileges (not SECURITY DEFINER) in SQL or
    /// PL/pgSQL.
    pub body: Option<String>,
    /// Whether the function is SECURITY DEFINER.
    pub security_definer: bool,
    /// The user functions its WHEN clause calls (as the caller).
    pub when_calls: Vec<ViewCall>,
}

/// A row-level security policy for writes (`FOR INSERT`, `UPDATE`, `DELETE` or `ALL`): its
/// expressions run as the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WritePolicy {
    /// `pg_policy.polcmd`: `a` INSERT, `w` UPDATE, `d` DELETE, `*` ALL.
    pub command: char,
    /// Which existing rows it lets the command see (UPDATE, DELETE, ALL).
    pub using: Option<String>,
    /// What new rows must satisfy (INSERT, UPDATE, ALL).
    pub check: Option<String>,
}

impl WritePolicy {
    /// The expressions an event runs (bits of `tgtype`: 4 INSERT, 8 DELETE, 16 UPDATE):
    /// INSERT its WITH CHECK, UPDATE both, DELETE its USING; a policy FOR ALL without WITH
    /// CHECK uses its USING for both.
    pub fn expressions(&self, event: i32) -> Vec<&str> {
        let applies = match self.command {
            '*' => true,
            'a' => event == 4,
            'w' => event == 16,
            'd' => event == 8,
            _ => false,
        };
        if !applies {
            return Vec::new();
        }
        let check = self.check.as_deref().or(if self.command == '*' {
            self.using.as_deref()
        } else {
            None
        });
        let using = self.using.as_deref();
        let mut out = Vec::new();
        if event != 4 {
            out.extend(using);
        }
        if event != 8 {
            out.extend(check.filter(|c| Some(*c) != using || event == 4));
        }
        out
    }
}

/// A cast that calls a user function (`CREATE CAST ... WITH FUNCTION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CastInfo {
    /// The source type, as `format_type` prints it (`integer`, `imp.money_t`).
    pub source: String,
    /// The target type, likewise.
    pub target: String,
    /// `pg_cast.castcontext`: `e` explicit only, `a` also in assignment, `i` also implicit.
    pub context: char,
    /// The function it calls.
    pub function: ViewCall,
}

/// A user function an ordinary view's rule calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewCall {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Its argument types.
    pub signature: String,
    /// VOLATILE: the planner keeps it even in a column no query reads.
    pub volatile: bool,
}

/// The snapshot: what a fresh session of the requester could name. Other sessions'
/// temporary schemas (`pg_temp_N`, `pg_toast_temp_N`) are left out.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The database connected to.
    pub database: String,
    /// The effective search path (schemas that exist, in order).
    pub search_path: Vec<String>,
    /// Relations by (schema, name).
    pub relations: HashMap<(String, String), RelInfo>,
    /// User functions by (schema, name).
    pub functions: HashMap<(String, String), Vec<FuncInfo>>,
    /// Names of built-in functions (PostgreSQL `pg_catalog`).
    pub builtins: HashSet<String>,
    /// What each view's rule reaches, by (schema, name) of the view.
    pub views: HashMap<(String, String), ViewDeps>,
    /// What writing the columns of each table calls, by (schema, name) of the table.
    pub writes: HashMap<(String, String), Vec<ColumnCalls>>,
    /// The USING expressions of the row-level security policies that apply to every role
    /// (`TO PUBLIC`) when rows are read, by (schema, name) of the table (row security on).
    pub read_policies: HashMap<(String, String), Vec<String>>,
    /// The tables with row security on (their owner aside, a user sees only the rows a
    /// policy that applies to them lets through; p0's users are under `TO PUBLIC` ones only).
    pub row_security: HashSet<(String, String)>,
    /// The row-level security policies that apply to every role (`TO PUBLIC`) when rows are
    /// written, by (schema, name) of the table (row security on).
    pub write_policies: HashMap<(String, String), Vec<WritePolicy>>,
    /// The casts whose function is a user function (the function runs for the caller).
    pub casts: Vec<CastInfo>,
    /// The columns whose type a user cast in assignment or implicit context produces, with
    /// that type, by (schema, name) of their table: writing them may call the cast.
    pub cast_columns: HashMap<(String, String), Vec<(String, String)>>,
    /// The triggers of each table or view, by (schema, name).
    pub triggers: HashMap<(String, String), Vec<TriggerInfo>>,
    /// The server's version (major, minor, patch), where it decides how SQL reads (MariaDB's
    /// versioned executable comments).
    pub server_version: Option<(u32, u32, u32)>,
}

impl Catalog {
    /// Loads a snapshot from a MariaDB or MySQL server. Built without the `mysql` feature, it
    /// refuses: there is no driver to read one with.
    #[cfg(not(feature = "mysql"))]
    pub async fn load_mysql(_url: &str, _database: Option<&str>) -> Result<Self, ExtractError> {
        Err(ExtractError::Catalog(
            "built without the `mysql` feature, p0-core cannot read a live catalog".into(),
        ))
    }

    /// Loads a snapshot from a PostgreSQL database. Only catalog tables are read. Built without
    /// the `postgres` feature, it refuses: there is no driver to read one with.
    #[cfg(not(feature = "postgres"))]
    pub async fn load_postgres(_url: &str) -> Result<Self, ExtractError> {
        Err(ExtractError::Catalog(
            "built without the `postgres` feature, p0-core cannot read a live catalog".into(),
        ))
    }

    /// Loads a snapshot from a PostgreSQL database. Only catalog tables are read.
    #[cfg(feature = "postgres")]
    pub async fn load_postgres(url: &str) -> Result<Self, ExtractError> {
        let err = |e: sqlx::Error| {
            ExtractError::Catalog(crate::error::ProvisionError::from(e).to_string())
        };
        let mut conn = sqlx::PgConnection::connect(url).await.map_err(err)?;
        let database: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
        let search_path: Vec<String> =
            sqlx::query_scalar("SELECT unnest(current_schemas(false))::text")
                .fetch_all(&mut conn)
                .await
                .map_err(err)?;
        let mut relations = HashMap::new();
        let rows = sqlx::query(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text, \
                    CASE WHEN c.relkind = 'v' AND coalesce(c.reloptions::text[] && ARRAY['security_invoker=true','security_invoker=on','security_invoker=1','security_invoker=yes'], false) \
                         THEN pg_get_viewdef(c.oid) END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r','p','f','v','m','S') AND n.nspname NOT IN ('pg_catalog','information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(err)?;
        for r in rows {
            let kind = match r.get::<String, _>(2).as_str() {
                "v" => RelKind::View,
                "m" => RelKind::MaterializedView,
                "S" => RelKind::Sequence,
                _ => RelKind::Table,
            };
            relations.insert(
                (r.get::<String, _>(0), r.get::<String, _>(1)),
                RelInfo {
                    kind,
                    columns: Vec::new(),
                    invoker_body: r.get(3),
                },
            );
        }
        let cols = sqlx::query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, \
                    CASE WHEN a.attidentity = '' AND a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','f','v','m') \
               AND n.nspname NOT IN ('pg_catalog','information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
             ORDER BY n.nspname, c.relname, a.attnum",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(err)?;
        for r in cols {
            if let Some(rel) = relations.get_mut(&(r.get::<String, _>(0), r.get::<String, _>(1))) {
                rel.columns.push(ColumnInfo {
                    name: r.get(2),
                    default: r.get(3),
                });
            }
        }
        let mut functions: HashMap<(String, String), Vec<FuncInfo>> = HashMap::new();
        // A SQL-standard body (PostgreSQL 14+: `BEGIN ATOMIC`, `RETURN`) is in `prosqlbody`.
        let v14: bool =
            sqlx::query_scalar("SELECT current_setting('server_version_num')::int4 >= 140000")
                .fetch_one(&mut conn)
                .await
                .map_err(err)?;
        let (lang, src) = match v14 {
            true => (
                format!(
                    "CASE WHEN p.prosqlbody IS NULL THEN l.lanname::text ELSE '{SQL_STANDARD}' END"
                ),
                "coalesce(pg_get_function_sqlbody(p.oid), p.prosrc)",
            ),
            false => ("l.lanname::text".to_string(), "p.prosrc"),
        };
        let funcs = sqlx::query(&format!(
            "SELECT n.nspname::text, p.proname::text, oidvectortypes(p.proargtypes), p.pronargs::int4, \
                    p.pronargdefaults::int4, p.provariadic <> 0, p.prosecdef, {lang}, {src}, \
                    ARRAY(SELECT coalesce(a.name, '') \
                          FROM unnest(p.proargnames, coalesce(p.proargmodes, array_fill('i'::\"char\", ARRAY[cardinality(coalesce(p.proargnames, ARRAY[]::text[]))]))) \
                               WITH ORDINALITY AS a(name, mode, ord) \
                          WHERE a.mode IN ('i','b','v') ORDER BY a.ord)::text[], p.prokind = 'p' \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang \
             WHERE n.nspname NOT IN ('pg_catalog','information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'",
        ))
        .fetch_all(&mut conn)
        .await
        .map_err(err)?;
        for r in funcs {
            let secdef: bool = r.get(6);
            let lang: String = r.get(7);
            let body = (!secdef && ["sql", "plpgsql", SQL_STANDARD].contains(&lang.as_str()))
                .then(|| (lang, r.get::<String, _>(8)));
            functions
                .entry((r.get(0), r.get(1)))
                .or_default()
                .push(FuncInfo {
                    signature: r.get(2),
                    nargs: r.get::<i32, _>(3).max(0) as usize,
                    ndefaults: r.get::<i32, _>(4).max(0) as usize,
                    variadic: r.get(5),
                    arg_names: r.get(9),
                    security_definer: secdef,
                    procedure: r.get(10),
                    body,
                });
        }
        let builtins: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT proname::text FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(err)?;
        let views = load_view_deps(&mut conn).await.map_err(err)?;
        let writes = load_column_calls(&mut conn).await.map_err(err)?;
        let triggers = load_triggers(&mut conn).await.map_err(err)?;
        let (read_policies, write_policies, row_security) =
            load_policies(&mut conn).await.map_err(err)?;
        let (casts, cast_columns) = load_casts(&mut conn).await.map_err(err)?;
        let _ = conn.close().await;
        Ok(Self {
            database,
            search_path,
            relations,
            functions,
            builtins: builtins.into_iter().collect(),
            views,
            writes,
            read_policies,
            row_security,
            write_policies,
            casts,
            cast_columns,
            triggers,
            server_version: None,
        })
    }
}
