//! Least-privilege extraction: which permissions a piece of SQL needs.
//!
//! A permission set is **sound** when a fresh role holding exactly it can run the SQL, and
//! **minimal** when dropping any one permission makes the SQL fail. Statements that need
//! ownership or superuser are refused, never approximated with broader grants.
//!
//! The modules, each using only those listed before it (methods on the walker included);
//! where SQL nests upwards (a subquery in an expression, a statement in a query) the walk
//! re-enters through `walker::Reenter`, which only `statement` implements:
//!
//! - `bounds`: size, nesting-depth pre-scan and parser limits, checked before parsing.
//! - `catalog`: the snapshot of the live catalog that names resolve against.
//! - `functions`: which function names are built in, and which are refused.
//! - `refuse`: which statements are refused, and why.
//! - `plpgsql`: the SQL statements inside a PL/pgSQL body, as text.
//! - `compound`: the SQL statements inside a MariaDB routine's compound statement, as text.
//! - `scope`: the relations each query level binds, and the columns read through them.
//! - `walker`: the walk's state, output and bounds (time, catalog lookups, recursion depth).
//! - `names`: relations and functions by name, through schemas and the search path.
//! - `calls`: function calls: refused, built in, sequences, overloads and their bodies.
//! - `implicit`: what the catalog runs for the caller: views' calls and definitions, and
//!   what writes run (defaults through views, domain CHECKs, generated columns, triggers,
//!   write policies).
//! - `casts`: user-defined casts, explicit and in assignment.
//! - `expr`: expressions (sqlparser's visitor): column references and calls.
//! - `query`: queries by hand: CTEs, set operations, SELECT, FROM items, joins, locks.
//! - `insert`: INSERT and COPY, and the column defaults they reach.
//! - `dml`: UPDATE, DELETE, MERGE and TRUNCATE.
//! - `statement`: one statement, dispatched by kind; anything else refused.
//! - `routines`: the function bodies, view definitions and defaults statements reached.

mod bounds;
mod calls;
mod casts;
mod catalog;
mod compound;
mod dml;
mod expr;
mod functions;
mod implicit;
mod insert;
mod names;
mod plpgsql;
mod query;
mod refuse;
mod routines;
mod scope;
mod statement;
mod walker;

pub use bounds::Limits;
pub use catalog::{
    CastInfo, Catalog, ColumnCalls, ColumnInfo, FuncInfo, RelInfo, RelKind, TriggerInfo, ViewCall,
    ViewDeps, WritePolicy, MYSQL_ROUTINE, SQL_STANDARD,
};

use crate::error::ExtractError;
use crate::types::{Engine, ObjectRef, Permission, PermissionSet, Privilege};
use bounds::{ServerVersion, Syntax};
use serde::{Deserialize, Serialize};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use std::sync::Arc;
use walker::{Rules, Walker};

/// The result of extraction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extraction {
    /// The permissions the SQL needs.
    pub permissions: PermissionSet,
    /// Parts that could not be resolved without the live catalog (e.g. whether a name is a
    /// view, which sequence backs a column default). Empty when a catalog was used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
    /// Tables whose rows the SQL locks (`SELECT ... FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE /
    /// FOR KEY SHARE`, MySQL's `LOCK IN SHARE MODE`), including through the bodies of functions
    /// it calls. Locking a row blocks writers: routing treats these as writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<ObjectRef>,
    /// Why each permission is needed: the statement itself, or the catalog objects whose code
    /// runs for the caller (a view, a function's body, a default, a trigger, a policy, a
    /// domain, a cast), for approvers to read. Empty unless asked for (`with_provenance`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provenance: Vec<Provenance>,
}

/// Why one permission (a privilege on an object, whatever its columns) is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The privilege.
    pub privilege: Privilege,
    /// The object.
    pub object: ObjectRef,
    /// What needs it: `the statement`, ``view `s.v` ``, ``body of function `s.f(integer)` ``,
    /// ``default of `s.t.c` ``, each once.
    pub because: Vec<String>,
}

impl Extraction {
    /// What routing decides on: the permissions, plus UPDATE on every table whose rows the SQL
    /// locks — a locking read blocks writers, so rules treat it as a write. Only routing sees
    /// these; the grant holds [`Extraction::permissions`].
    pub fn routing_set(&self) -> PermissionSet {
        let mut set = self.permissions.clone();
        for table in &self.locked {
            set.insert(Permission::new(Privilege::Update, table.clone()));
        }
        set
    }
}

/// What one extraction cost, whether it succeeded or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtractStats {
    /// Lookups in the catalog snapshot: relations, functions, views, column defaults.
    pub catalog_lookups: usize,
    /// Function bodies, view definitions and column defaults walked (each at most once).
    pub bodies_expanded: usize,
}

/// SQL text → the permissions it needs.
pub trait PermissionExtractor: Send + Sync {
    /// The dialect this extractor reads.
    fn engine(&self) -> Engine;

    /// Extracts the permissions needed by `sql` (one or more statements).
    fn extract(&self, sql: &str) -> Result<Extraction, ExtractError>;
}

/// Options shared by both extractors.
#[derive(Debug, Clone, Default)]
struct Options {
    catalog: Option<Arc<Catalog>>,
    columns: bool,
    /// Whether to say why each permission is needed ([`Extraction::provenance`]).
    provenance: bool,
    database: Option<String>,
    limits: Limits,
}

fn run(
    sql: &str,
    dialect: &dyn Dialect,
    rules: &Rules,
    opts: &Options,
    connect: bool,
) -> (Result<Extraction, ExtractError>, ExtractStats) {
    let mut w = Walker::new(rules, opts.catalog.as_deref(), opts.columns, opts.limits);
    w.track_provenance = opts.provenance;
    let result = walk_all(sql, dialect, opts, connect, &mut w);
    let stats = ExtractStats {
        catalog_lookups: w.lookups,
        bodies_expanded: w.expanded,
    };
    (result, stats)
}

fn walk_all(
    sql: &str,
    dialect: &dyn Dialect,
    opts: &Options,
    connect: bool,
    w: &mut Walker,
) -> Result<Extraction, ExtractError> {
    let statements =
        match bounds::parse_statements(dialect, sql, "query", &opts.limits, w.rules.syntax) {
            Ok(s) => s,
            // A statement the parser does not know may still be one p0 refuses by its keywords.
            Err(ExtractError::Parse(e)) => {
                let code = bounds::code_text(sql, w.rules.syntax);
                return Err(refuse::refusal_for_text(&code).unwrap_or(ExtractError::Parse(e)));
            }
            Err(e) => return Err(e),
        };
    if statements.is_empty() {
        return Err(ExtractError::Parse("no SQL statement".into()));
    }
    for s in &statements {
        w.statement(s)?;
        w.note_statement();
        // Bodies and defaults the statement reached, one after the other (never nested, so
        // the stack stays as shallow as one text allows), each at most once.
        w.expand_all_pending()?;
    }
    w.unexecuted_prepared()?;
    w.note_statement();
    w.expand_all_pending()?;
    w.note_statement();
    let database = opts
        .catalog
        .as_ref()
        .map(|c| c.database.clone())
        .or_else(|| opts.database.clone());
    let mut permissions = std::mem::take(&mut w.out);
    // `USE db` needs some privilege in `db`: one the rest of the SQL needs, since p0 has
    // no smaller one to choose.
    for db in &w.used_databases {
        let covered = permissions
            .iter()
            .any(|p| p.object.schema.as_deref() == Some(db.as_str()) || p.object.name == *db);
        if !covered {
            return Err(ExtractError::Unsupported(format!(
                "`USE {db}` needs a privilege in `{db}`, and nothing else the SQL does needs one"
            )));
        }
    }
    if connect {
        match database {
            Some(db) => {
                let object = ObjectRef::database(db);
                if w.track_provenance {
                    w.provenance
                        .entry((Privilege::Connect, object.clone()))
                        .or_default()
                        .insert("connecting to the database".into());
                }
                permissions.insert(Permission::new(Privilege::Connect, object))
            }
            None => {
                w.unresolved.insert("database name (for CONNECT)".into());
            }
        }
    }
    let provenance = if !w.track_provenance {
        Vec::new()
    } else {
        permissions
            .iter()
            .map(|p| Provenance {
                privilege: p.privilege,
                object: p.object.clone(),
                because: w
                    .provenance
                    .get(&(p.privilege, p.object.clone()))
                    .map(|b| b.iter().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect()
    };
    Ok(Extraction {
        permissions,
        unresolved: std::mem::take(&mut w.unresolved).into_iter().collect(),
        locked: std::mem::take(&mut w.locked).into_iter().collect(),
        provenance,
    })
}

/// PostgreSQL extraction (sqlparser's PostgreSQL dialect).
#[derive(Debug, Clone)]
pub struct PostgresExtractor {
    opts: Options,
    rules: Rules,
}

impl Default for PostgresExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl PostgresExtractor {
    /// An extractor without a catalog: unqualified names resolve to `public`.
    pub fn new() -> Self {
        Self {
            opts: Options::default(),
            rules: Rules {
                fold_lower: true,
                schema_usage: true,
                default_schema: Some("public".into()),
                refused_function: functions::pg_refused,
                refused_set: refuse::set_refusal,
                builtin_function: functions::pg_builtin,
                defaults_need_privileges: true,
                truncate_grantable: true,
                delete_from_names_using: false,
                lock_needs_update: true,
                sequences_are_tables: false,
                syntax: Syntax::Postgres,
            },
        }
    }

    /// Resolves names against a snapshot of the live catalog.
    pub fn with_catalog(mut self, catalog: Arc<Catalog>) -> Self {
        self.rules.default_schema = catalog
            .search_path
            .first()
            .cloned()
            .or(self.rules.default_schema);
        self.opts.catalog = Some(catalog);
        self
    }

    /// Column-level grants where they are smaller than table grants.
    pub fn with_columns(mut self, columns: bool) -> Self {
        self.opts.columns = columns;
        self
    }

    /// Says why each permission is needed ([`Extraction::provenance`]), for approvers.
    pub fn with_provenance(mut self, provenance: bool) -> Self {
        self.opts.provenance = provenance;
        self
    }

    /// The database name for CONNECT when there is no catalog.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.opts.database = Some(database.into());
        self
    }

    /// The schema of unqualified names when there is no catalog (the first of search_path).
    pub fn with_default_schema(mut self, schema: impl Into<String>) -> Self {
        self.rules.default_schema = Some(schema.into());
        self
    }

    /// Bounds on size, nesting, time and catalog work other than the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.opts.limits = limits;
        self
    }

    /// Extracts, and says what it cost (also when it failed).
    pub fn extract_with_stats(
        &self,
        sql: &str,
    ) -> (Result<Extraction, ExtractError>, ExtractStats) {
        run(sql, &PostgreSqlDialect {}, &self.rules, &self.opts, true)
    }
}

impl PermissionExtractor for PostgresExtractor {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn extract(&self, sql: &str) -> Result<Extraction, ExtractError> {
        self.extract_with_stats(sql).0
    }
}

/// MySQL / MariaDB extraction (sqlparser's MySQL dialect). Objects are `database.table`;
/// MySQL has no CONNECT or schema USAGE privilege.
#[derive(Debug, Clone)]
pub struct MySqlExtractor {
    opts: Options,
    rules: Rules,
}

impl MySqlExtractor {
    /// An extractor for `database` (the default database of unqualified names), if known.
    pub fn new(database: Option<String>) -> Self {
        Self {
            opts: Options {
                database: database.clone(),
                ..Options::default()
            },
            rules: Rules {
                fold_lower: false,
                schema_usage: false,
                default_schema: database,
                refused_function: functions::mysql_refused,
                refused_set: refuse::mysql_set_refusal,
                builtin_function: functions::mysql_builtin,
                defaults_need_privileges: false,
                truncate_grantable: false,
                delete_from_names_using: true,
                lock_needs_update: false,
                sequences_are_tables: true,
                syntax: Syntax::MySql(ServerVersion::DEFAULT),
            },
        }
    }

    /// Column-level grants where they are smaller than table grants.
    pub fn with_columns(mut self, columns: bool) -> Self {
        self.opts.columns = columns;
        self
    }

    /// Says why each permission is needed ([`Extraction::provenance`]), for approvers.
    pub fn with_provenance(mut self, provenance: bool) -> Self {
        self.opts.provenance = provenance;
        self
    }

    /// Resolves names against a snapshot of the live catalog ([`Catalog::load_mysql`]): its
    /// database is the default one, and its server's version decides how comments read.
    pub fn with_catalog(mut self, catalog: Arc<Catalog>) -> Self {
        if !catalog.database.is_empty() {
            self.rules.default_schema = Some(catalog.database.clone());
            self.opts.database = Some(catalog.database.clone());
        }
        if let Some((major, minor, patch)) = catalog.server_version {
            // MySQL is 5.x, 8.x and 9.x; MariaDB 10 and later.
            if (8..10).contains(&major) {
                self = self.for_mysql8();
            }
            self = self.with_server_version(major, minor, patch);
        }
        self.opts.catalog = Some(catalog);
        self
    }

    /// MySQL 8 rules where they differ from MariaDB's (the default): `SELECT ... FOR UPDATE`
    /// also needs UPDATE.
    pub fn for_mysql8(mut self) -> Self {
        self.rules.lock_needs_update = true;
        self
    }

    /// Bounds on size, nesting, time and catalog work other than the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.opts.limits = limits;
        self
    }

    /// The MariaDB version the SQL runs on (`10, 11, 5`), which decides which versioned
    /// executable comments (`/*!100500 ... */`, `/*M!... */`) run. By default MariaDB 10.11
    /// with its patch level unknown: a comment versioned within 10.11 is refused.
    pub fn with_server_version(mut self, major: u32, minor: u32, patch: u32) -> Self {
        self.rules.syntax = Syntax::MySql(ServerVersion {
            id: major
                .saturating_mul(10_000)
                .saturating_add(minor.min(99) * 100 + patch.min(99)),
            patch_known: true,
        });
        self
    }

    /// Extracts, and says what it cost (also when it failed).
    pub fn extract_with_stats(
        &self,
        sql: &str,
    ) -> (Result<Extraction, ExtractError>, ExtractStats) {
        run(sql, &MySqlDialect {}, &self.rules, &self.opts, false)
    }
}

impl PermissionExtractor for MySqlExtractor {
    fn engine(&self) -> Engine {
        Engine::MySql
    }

    fn extract(&self, sql: &str) -> Result<Extraction, ExtractError> {
        self.extract_with_stats(sql).0
    }
}

#[cfg(test)]
mod implicit_tests;
#[cfg(test)]
mod mysql_tests;
#[cfg(test)]
mod stmt_tests;
#[cfg(test)]
mod tests;
