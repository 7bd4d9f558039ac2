//! The walk's state, its bounds, and what every layer above uses: identifiers, grants, scopes.
//!
//! Every method that walks returns [`Walked`]: the first refusal or bound reached stops the
//! walk at once (`?`), and nothing after it runs. Every recursive descent of the walk passes
//! through [`Walker::enter`], which bounds its depth.

use super::bounds::{Limits, Syntax, PARSER_RECURSION_LIMIT};
use super::catalog::{Catalog, RelKind};
use super::scope::{Binding, RelKey, Scopes};
use crate::error::ExtractError;
use crate::types::{ObjectKind, ObjectRef, Permission, PermissionSet, Privilege};
use sqlparser::ast::{Ident, ObjectName, ObjectNamePart, Query, Statement};
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

/// The provenance of what the SQL itself needs.
pub(crate) const STATEMENT: &str = "the statement";

/// What a step of the walk returns: nothing, or why extraction stops here.
pub(crate) type Walked<T = ()> = Result<T, ExtractError>;

/// How many levels the walk may count for each level of the token pre-scan's estimate.
///
/// The walk counts one level per statement, query, set operation and FROM item it walks by
/// hand, and per expression or query node its visitor enters. The pre-scan
/// (`bounds::nesting`) has already bounded the tree to `Limits::max_depth` levels of its
/// estimate; the walk counts at most two levels for each of those (a subquery is a query
/// under the expression or FROM item that holds it), and a few of its own at the top, which
/// [`PARSER_RECURSION_LIMIT`] more levels cover. So a text the pre-scan let through never
/// reaches this bound (`bounds::tests` walks the deepest text of every shape it allows): the
/// bound is here so that the walk's own recursion is visibly finite, whatever built the tree.
const WALK_LEVELS_PER_LEVEL: usize = 2;

/// The deepest the walk recurses for `limits`: see [`WALK_LEVELS_PER_LEVEL`].
pub(crate) fn walk_depth_bound(limits: &Limits) -> usize {
    limits
        .max_depth
        .saturating_mul(WALK_LEVELS_PER_LEVEL)
        .saturating_add(PARSER_RECURSION_LIMIT)
}

/// What differs between dialects, as data.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Unquoted identifiers fold to lower case (PostgreSQL).
    pub fold_lower: bool,
    /// Objects need USAGE on their schema (PostgreSQL).
    pub schema_usage: bool,
    /// The schema (PostgreSQL) or database (MySQL) of unqualified names when no catalog says.
    pub default_schema: Option<String>,
    /// Which function names are refused outright, and why.
    pub refused_function: fn(&str) -> Option<&'static str>,
    /// Which `SET` statements are refused, and why.
    pub refused_set: fn(&sqlparser::ast::Set) -> Option<ExtractError>,
    /// Which unqualified function names are built in (need no privilege) without a catalog.
    pub builtin_function: fn(&str) -> bool,
    /// Column defaults can need privileges (PostgreSQL: sequences, functions). MySQL's
    /// AUTO_INCREMENT and defaults need none.
    pub defaults_need_privileges: bool,
    /// TRUNCATE has a privilege of its own (PostgreSQL); MySQL needs DROP, which p0 never grants.
    pub truncate_grantable: bool,
    /// In `DELETE FROM a, b USING ...` the FROM list names tables (or aliases) of the USING
    /// list, not tables of those names (MySQL); otherwise FROM names the target (PostgreSQL).
    pub delete_from_names_using: bool,
    /// `SELECT ... FOR UPDATE/SHARE` needs UPDATE (PostgreSQL, MySQL 8; not MariaDB).
    pub lock_needs_update: bool,
    /// Sequences are tables named by identifier, `NEXTVAL(s)` needing SELECT and INSERT on
    /// them (MariaDB); otherwise `nextval('s')` names them in a string (PostgreSQL).
    pub sequences_are_tables: bool,
    /// The syntax sqlparser does not parse (locking clauses, `:=` arguments), read as syntax
    /// it does.
    pub syntax: Syntax,
}

/// A text from the catalog that a statement reached (a function or view body, a column
/// default), walked after that statement, once per extraction.
#[derive(Debug)]
pub(crate) struct Pending {
    /// What it is, for errors: ``body of function `s.f(integer)` ``.
    pub what: String,
    /// `sql` or `plpgsql` for bodies; `None` for a default expression.
    pub lang: Option<String>,
    pub text: String,
    /// The script's search_path where it was reached.
    pub search_path: Option<Vec<String>>,
    /// Reached under `EXPLAIN` without ANALYZE: planned, never run.
    pub explain_only: bool,
    /// Bound by OID when it was stored (a `security_invoker` view's definition): what it
    /// names needs no USAGE on its schema.
    pub bound: bool,
    /// What reached it ([`Walker::origin`] when it was queued).
    pub via: Option<String>,
}

/// A statement `PREPARE` named, for the `EXECUTE`s after it.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub statement: Statement,
    /// The search_path at `PREPARE`, where its names were bound.
    pub search_path: Option<Vec<String>>,
    /// Whether an `EXECUTE` walked it.
    pub executed: bool,
}

/// Where the walk goes back up. SQL nests queries in expressions and statements in queries,
/// but the modules that walk expressions and queries sit below the ones that walk queries and
/// statements: they re-enter through this trait, implemented once, for [`Walker`], by the top
/// of the walk (`statement.rs`).
pub(crate) trait Reenter {
    /// A subquery met in an expression, with the enclosing scopes visible to it.
    fn subquery(&mut self, q: &Query) -> Walked;
    /// A statement met in a query (`WITH x AS (INSERT ...)`).
    fn nested_statement(&mut self, s: &Statement) -> Walked;
}

/// The walk's state and output.
pub(crate) struct Walker<'a> {
    pub rules: &'a Rules,
    pub catalog: Option<&'a Catalog>,
    pub columns_mode: bool,
    pub out: PermissionSet,
    pub unresolved: BTreeSet<String>,
    pub scopes: Scopes,
    /// Set by `SET search_path` earlier in the script.
    pub search_path: Option<Vec<String>>,
    /// Tables whose rows the statements lock (`FOR UPDATE/SHARE`).
    pub locked: BTreeSet<ObjectRef>,
    /// Walking the statement of an `EXPLAIN` without ANALYZE: the server checks its
    /// privileges and plans it, but evaluates no default, calls no function at run time and
    /// fires no trigger.
    pub explain_only: bool,
    /// Walking a stored expression (a column default): its names were bound when it was
    /// created, so looking them up needs no schema USAGE.
    pub in_stored_expression: bool,
    /// Resolving the routine `CALL` names: a procedure.
    pub calling_procedure: bool,
    /// The statements `PREPARE` named so far, by name.
    pub prepared: HashMap<String, Prepared>,
    pub limits: Limits,
    deadline: Instant,
    /// Catalog lookups so far.
    pub lookups: usize,
    /// Bodies and defaults reached and not walked yet.
    pub pending: VecDeque<Pending>,
    /// Everything ever queued, so that each body is walked at most once.
    queued: HashSet<String>,
    /// Bodies and defaults walked.
    pub expanded: usize,
    /// Databases `USE` selected (MySQL): each needs some privilege in it.
    pub used_databases: Vec<String>,
    /// Expression nodes visited, to check the clock now and then.
    nodes: usize,
    /// The schemas of the catalog that hold something (for `SET search_path`).
    pub schemas: OnceCell<HashSet<String>>,
    /// Views and tables under row security read, and the columns read of each (`None`:
    /// all), expanded after the statement (`routines`): what their rules and policies call
    /// for the caller.
    pub views_read: Vec<(RelKey, Option<Vec<String>>)>,
    /// Tables written, with the event (bits of `tgtype`), whose write policies run for the
    /// caller, expanded after the statement (`routines`).
    pub rows_written: Vec<(RelKey, i32)>,
    /// Walking a text bound by OID ([`Pending::bound`]): grants add no schema USAGE.
    pub bound: bool,
    /// What the walk is in: `None` for the statement itself, else the catalog object whose
    /// code runs for the caller (``body of function `s.f(integer)` ``), for provenance.
    pub origin: Option<String>,
    /// Why each privilege on each object is needed: the origins that granted it, when
    /// asked for ([`Walker::track_provenance`]).
    pub provenance: BTreeMap<(Privilege, ObjectRef), BTreeSet<String>>,
    /// Whether to note provenance (it costs a clone per grant; routing does not need it).
    pub track_provenance: bool,
    /// Levels of the walk entered and not left.
    depth: usize,
    /// The most levels the walk may enter: [`walk_depth_bound`].
    max_depth: usize,
}

impl<'a> Walker<'a> {
    pub fn new(
        rules: &'a Rules,
        catalog: Option<&'a Catalog>,
        columns_mode: bool,
        limits: Limits,
    ) -> Self {
        Self {
            rules,
            catalog,
            columns_mode,
            out: PermissionSet::new(),
            unresolved: BTreeSet::new(),
            scopes: Scopes::default(),
            search_path: None,
            locked: BTreeSet::new(),
            explain_only: false,
            in_stored_expression: false,
            calling_procedure: false,
            prepared: HashMap::new(),
            limits,
            deadline: Instant::now() + limits.time_budget,
            lookups: 0,
            pending: VecDeque::new(),
            queued: HashSet::new(),
            expanded: 0,
            used_databases: Vec::new(),
            nodes: 0,
            schemas: OnceCell::new(),
            views_read: Vec::new(),
            rows_written: Vec::new(),
            bound: false,
            origin: None,
            provenance: BTreeMap::new(),
            track_provenance: false,
            depth: 0,
            max_depth: walk_depth_bound(&limits),
        }
    }

    // ----- bounds -----

    /// The recursion bound: every recursive descent of the walk enters here, and leaves
    /// through [`Walker::leave`]. Past [`walk_depth_bound`] levels the walk stops.
    pub fn enter(&mut self) -> Walked {
        if self.depth >= self.max_depth {
            return Err(ExtractError::TooDeep {
                what: "query".into(),
                max: self.max_depth,
            });
        }
        self.depth += 1;
        Ok(())
    }

    /// Leaves a level entered with [`Walker::enter`].
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The levels entered and not left, to restore after a walk that stopped midway.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Restores the depth saved with [`Walker::depth`].
    pub fn restore_depth(&mut self, depth: usize) {
        self.depth = depth;
    }

    /// Runs `f` one level deeper.
    pub fn descend<T>(&mut self, f: impl FnOnce(&mut Self) -> Walked<T>) -> Walked<T> {
        self.enter()?;
        let result = f(self);
        self.leave();
        result
    }

    /// Stops the walk once the time budget is spent.
    pub fn check_time(&self) -> Walked {
        if Instant::now() > self.deadline {
            let ms = u64::try_from(self.limits.time_budget.as_millis()).unwrap_or(u64::MAX);
            return Err(ExtractError::TooSlow { ms });
        }
        Ok(())
    }

    /// Counts one expression node, and checks the clock every 1,024.
    pub fn tick(&mut self) -> Walked {
        self.nodes += 1;
        if self.nodes.is_multiple_of(1024) {
            self.check_time()?;
        }
        Ok(())
    }

    /// Counts one catalog lookup: past the bound or the budget, the walk stops.
    pub fn lookup(&mut self) -> Walked {
        self.lookups += 1;
        if self.lookups > self.limits.max_catalog_lookups {
            return Err(ExtractError::TooMuchCatalogWork {
                max: self.limits.max_catalog_lookups,
            });
        }
        self.check_time()
    }

    /// Queues a body or default reached from the catalog, unless this extraction already
    /// queued it for the same search_path: each is walked at most once.
    pub fn enqueue(&mut self, what: String, lang: Option<String>, text: &str) {
        let bound = lang.as_deref() == Some(super::catalog::SQL_STANDARD);
        self.enqueue_as(what, lang, text, bound);
    }

    /// Queues a text bound by OID when it was stored ([`Pending::bound`]).
    pub fn enqueue_as(&mut self, what: String, lang: Option<String>, text: &str, bound: bool) {
        let path = self.search_path.clone();
        self.enqueue_with(what, lang, text, bound, path);
    }

    /// Queues a routine body whose unqualified names belong to `schema` (MariaDB's routines
    /// resolve names in their own database, whoever calls them).
    /// `lang` as for [`Pending::lang`].
    pub fn enqueue_in(&mut self, what: String, lang: Option<&str>, text: &str, schema: &str) {
        let path = Some(vec![schema.to_string()]);
        self.enqueue_with(what, lang.map(str::to_string), text, false, path);
    }

    fn enqueue_with(
        &mut self,
        what: String,
        lang: Option<String>,
        text: &str,
        bound: bool,
        search_path: Option<Vec<String>>,
    ) {
        let key = format!("{what}\u{0}{search_path:?}\u{0}{bound}");
        if !self.queued.insert(key) {
            return;
        }
        self.pending.push_back(Pending {
            what,
            lang,
            text: text.to_string(),
            search_path,
            explain_only: self.explain_only,
            bound,
            via: self.origin.clone(),
        });
    }

    /// Whether `what` is met for the first time in this extraction (each catalog object
    /// reached is walked at most once).
    pub fn first_time(&mut self, what: &str) -> bool {
        self.queued.insert(format!("once\u{0}{what}"))
    }

    /// Whether the SQL is MySQL's (MariaDB's) rather than PostgreSQL's.
    pub fn mysql(&self) -> bool {
        matches!(self.rules.syntax, Syntax::MySql(_))
    }

    // ----- identifiers -----

    /// An identifier as the server names it: unquoted, PostgreSQL folds only ASCII `A`–`Z`
    /// to lower case (in UTF8, `Ä` stays `Ä`); quoted, it is exact.
    pub fn ident(&self, id: &Ident) -> String {
        if id.quote_style.is_none() && self.rules.fold_lower {
            id.value.to_ascii_lowercase()
        } else {
            id.value.clone()
        }
    }

    pub fn name_parts(&self, name: &ObjectName) -> Vec<String> {
        name.0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(id) => self.ident(id),
                other => other.to_string(),
            })
            .collect()
    }

    // ----- permissions -----

    pub fn grant(
        &mut self,
        privilege: Privilege,
        mut object: ObjectRef,
        columns: Option<Vec<String>>,
    ) {
        // MariaDB grants on a sequence as on a table.
        if self.rules.sequences_are_tables && object.kind == ObjectKind::Sequence {
            object.kind = ObjectKind::Table;
        }
        if self.rules.schema_usage && !self.bound {
            match object.kind {
                ObjectKind::Table
                | ObjectKind::Sequence
                | ObjectKind::Function
                | ObjectKind::Procedure => {
                    if let Some(s) = &object.schema {
                        if !crate::guard::is_system_schema(s) {
                            let schema = ObjectRef::schema(s.clone());
                            self.note_origin(Privilege::Usage, &schema);
                            self.out.insert(Permission::new(Privilege::Usage, schema));
                        }
                    }
                }
                _ => {}
            }
        }
        self.note_origin(privilege, &object);
        let columns = if self.columns_mode { columns } else { None };
        self.out.insert(Permission {
            privilege,
            object,
            columns,
        });
    }

    /// Records why `privilege` on `object` is granted when the walk is in a catalog object
    /// (the statement's own grants are noted after it, [`Walker::note_statement`]: nothing
    /// on the common path).
    fn note_origin(&mut self, privilege: Privilege, object: &ObjectRef) {
        let Some(origin) = self.origin.as_deref().filter(|_| self.track_provenance) else {
            return;
        };
        let reasons = self
            .provenance
            .entry((privilege, object.clone()))
            .or_default();
        if !reasons.contains(origin) {
            reasons.insert(origin.to_string());
        }
    }

    /// Notes every permission granted so far that no catalog object gave as the statement's
    /// own: called after a statement's walk, before what it reached in the catalog.
    pub fn note_statement(&mut self) {
        if !self.track_provenance {
            return;
        }
        for p in self.out.iter() {
            let reasons = self
                .provenance
                .entry((p.privilege, p.object.clone()))
                .or_default();
            if reasons.is_empty() {
                reasons.insert(STATEMENT.into());
            }
        }
    }

    /// Runs `f` with the walk in `origin` (a catalog object whose code runs for the caller).
    pub fn within_origin<T>(&mut self, origin: String, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = self.origin.replace(origin);
        let result = f(self);
        self.origin = saved;
        result
    }

    // ----- scopes -----

    /// Runs `f` inside a fresh scope; the scope's reads are granted when it closes.
    pub fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> Walked<T>) -> Walked<T> {
        self.scopes.push();
        let result = f(self);
        for (rel, cols) in self.scopes.pop() {
            let view = self.catalog.is_some_and(|c| {
                let k = (rel.schema.clone(), rel.name.clone());
                c.read_policies.contains_key(&k)
                    || c.row_security.contains(&k)
                    || c.relations.get(&k).is_some_and(|r| r.kind == RelKind::View)
            });
            if view {
                self.views_read.push((rel.clone(), cols.clone()));
            }
            self.grant(
                Privilege::Select,
                ObjectRef::table(rel.schema, rel.name),
                cols,
            );
        }
        result
    }

    /// Runs `f` with no enclosing scopes (function and view bodies see none of the caller's).
    pub fn isolated<T>(&mut self, f: impl FnOnce(&mut Self) -> Walked<T>) -> Walked<T> {
        let saved = std::mem::take(&mut self.scopes);
        let result = f(self);
        self.scopes = saved;
        result
    }

    /// Adds a binding with no privileges (a derived table, a function in FROM, EXCLUDED, ...).
    pub fn bind_pseudo(&mut self, alias: &str) {
        self.scopes.bind(Binding::pseudo(alias.into()));
    }
}
