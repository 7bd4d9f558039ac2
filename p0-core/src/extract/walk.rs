//! The scope-aware walk over a parsed statement shared by both dialects.
//!
//! Queries, FROM items and DML targets are walked by hand, so that every column reference is
//! attributed to the relation it names (CTE names, aliases, correlated subqueries). Expressions
//! are walked with sqlparser's visitor; a subquery met inside an expression is walked by hand,
//! with the enclosing scopes visible to it.

use super::bounds::{Limits, Syntax};
use super::catalog::{Catalog, RelKind};
use crate::error::ExtractError;
use crate::types::{ObjectRef, Permission, PermissionSet, Privilege};
use sqlparser::ast::{
    Assignment, AssignmentTarget, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, TableFactor, TableWithJoins, Value, Visit, Visitor,
};
use std::cell::OnceCell;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::ops::ControlFlow;
use std::time::Instant;

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
    /// Which unqualified function names are built in (need no privilege) without a catalog.
    pub builtin_function: fn(&str) -> bool,
    /// Column defaults can need privileges (PostgreSQL: sequences, functions). MySQL's
    /// AUTO_INCREMENT and defaults need none.
    pub defaults_need_privileges: bool,
    /// TRUNCATE has a privilege of its own (PostgreSQL); MySQL needs DROP, which p0 never grants.
    pub truncate_grantable: bool,
    /// `SELECT ... FOR UPDATE/SHARE` needs UPDATE (PostgreSQL, MySQL 8; not MariaDB).
    pub lock_needs_update: bool,
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
}

/// A resolved relation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RelKey {
    pub schema: String,
    pub name: String,
}

/// Columns read through one binding.
#[derive(Debug, Clone, Default)]
struct ColUse {
    all: bool,
    cols: BTreeSet<String>,
}

impl ColUse {
    fn any(&self) -> bool {
        self.all || !self.cols.is_empty()
    }
}

#[derive(Debug)]
struct Binding {
    alias: String,
    rel: Option<RelKey>,
    columns: Option<Vec<String>>,
    reads: ColUse,
    /// A DML target: SELECT is needed only when its columns are read.
    target: bool,
}

#[derive(Debug, Default)]
struct Scope {
    bindings: Vec<Binding>,
    ctes: Vec<String>,
}

/// The walk's state and output.
pub(crate) struct Walker<'a> {
    pub rules: &'a Rules,
    pub catalog: Option<&'a Catalog>,
    pub columns_mode: bool,
    pub out: PermissionSet,
    pub unresolved: BTreeSet<String>,
    scopes: Vec<Scope>,
    pub error: Option<ExtractError>,
    /// Set by `SET search_path` earlier in the script.
    pub search_path: Option<Vec<String>>,
    /// Tables whose rows the statements lock (`FOR UPDATE/SHARE`).
    pub locked: BTreeSet<ObjectRef>,
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
    /// Expression nodes visited, to check the clock now and then.
    nodes: usize,
    /// The schemas of the catalog that hold something (for `SET search_path`).
    schemas: OnceCell<HashSet<String>>,
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
            scopes: Vec::new(),
            error: None,
            search_path: None,
            locked: BTreeSet::new(),
            limits,
            deadline: Instant::now() + limits.time_budget,
            lookups: 0,
            pending: VecDeque::new(),
            queued: HashSet::new(),
            expanded: 0,
            nodes: 0,
            schemas: OnceCell::new(),
        }
    }

    /// Whether to go on: no error yet and the time budget not spent.
    pub fn in_time(&mut self) -> bool {
        if self.error.is_some() {
            return false;
        }
        if Instant::now() > self.deadline {
            let ms = u64::try_from(self.limits.time_budget.as_millis()).unwrap_or(u64::MAX);
            self.fail(ExtractError::TooSlow { ms });
            return false;
        }
        true
    }

    /// Counts one catalog lookup. False (with the error set) past the bound or the budget.
    pub fn lookup(&mut self) -> bool {
        self.lookups += 1;
        if self.lookups > self.limits.max_catalog_lookups {
            self.fail(ExtractError::TooMuchCatalogWork {
                max: self.limits.max_catalog_lookups,
            });
            return false;
        }
        self.in_time()
    }

    /// Queues a body or default reached from the catalog, unless this extraction already
    /// queued it for the same search_path: each is walked at most once.
    pub fn enqueue(&mut self, what: String, lang: Option<String>, text: &str) {
        let key = format!("{what}\u{0}{:?}", self.search_path);
        if !self.queued.insert(key) {
            return;
        }
        self.pending.push_back(Pending {
            what,
            lang,
            text: text.to_string(),
            search_path: self.search_path.clone(),
        });
    }

    pub fn fail(&mut self, e: ExtractError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    pub fn ident(&self, id: &Ident) -> String {
        if id.quote_style.is_none() && self.rules.fold_lower {
            id.value.to_lowercase()
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

    pub fn grant(&mut self, privilege: Privilege, object: ObjectRef, columns: Option<Vec<String>>) {
        if self.rules.schema_usage {
            match object.kind {
                crate::types::ObjectKind::Table
                | crate::types::ObjectKind::Sequence
                | crate::types::ObjectKind::Function => {
                    if let Some(s) = &object.schema {
                        if !crate::guard::is_system_schema(s) {
                            self.out.insert(Permission::new(
                                Privilege::Usage,
                                ObjectRef::schema(s.clone()),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        let columns = if self.columns_mode { columns } else { None };
        self.out.insert(Permission {
            privilege,
            object,
            columns,
        });
    }

    /// Resolves a relation name: `(key, kind, columns)`. Unknown names without a catalog are
    /// assumed to be tables in the default schema.
    pub fn resolve_rel(
        &mut self,
        parts: &[String],
    ) -> Option<(RelKey, Option<RelKind>, Option<Vec<String>>)> {
        let (schema, name) = match parts {
            [name] => (None, name.clone()),
            [.., schema, name] => (Some(schema.clone()), name.clone()),
            [] => return None,
        };
        if let Some(cat) = self.catalog {
            if !self.lookup() {
                return None;
            }
            let found = match &schema {
                Some(s) if is_temp_schema(s) => None,
                Some(s) => cat
                    .relations
                    .get(&(s.clone(), name.clone()))
                    .map(|r| (s.clone(), r)),
                None => self.effective_path(cat).into_iter().find_map(|s| {
                    cat.relations
                        .get(&(s.clone(), name.clone()))
                        .map(|r| (s, r))
                }),
            };
            return match found {
                Some((s, r)) => Some((
                    RelKey { schema: s, name },
                    Some(r.kind),
                    Some(r.columns.iter().map(|c| c.name.clone()).collect()),
                )),
                None => {
                    self.fail(ExtractError::Unsupported(format!(
                        "relation `{}` does not exist",
                        parts.join(".")
                    )));
                    None
                }
            };
        }
        let first = self.search_path.as_ref().and_then(|p| p.first().cloned());
        let schema = match schema
            .or(first)
            .or_else(|| self.rules.default_schema.clone())
        {
            Some(s) => s,
            None => {
                self.unresolved.insert(format!("schema of `{name}`"));
                "?".into()
            }
        };
        Some((RelKey { schema, name }, None, None))
    }

    /// The schemas unqualified names resolve through: never another session's temporary
    /// schema (a fresh session of the requester has none of its own).
    pub fn effective_path(&self, cat: &Catalog) -> Vec<String> {
        match &self.search_path {
            Some(p) => {
                let schemas = self.schemas.get_or_init(|| {
                    cat.relations
                        .keys()
                        .chain(cat.functions.keys())
                        .map(|(s, _)| s.clone())
                        .collect()
                });
                p.iter()
                    .filter(|s| schemas.contains(*s) && !is_temp_schema(s))
                    .cloned()
                    .collect()
            }
            None => cat
                .search_path
                .iter()
                .filter(|s| !is_temp_schema(s))
                .cloned()
                .collect(),
        }
    }

    fn table_privilege_object(key: &RelKey, kind: Option<RelKind>) -> ObjectRef {
        match kind {
            Some(RelKind::Sequence) => ObjectRef::sequence(key.schema.clone(), key.name.clone()),
            _ => ObjectRef::table(key.schema.clone(), key.name.clone()),
        }
    }

    // ----- scopes -----

    fn push(&mut self) {
        self.scopes.push(Scope::default());
    }

    fn pop(&mut self) {
        let Some(scope) = self.scopes.pop() else {
            return;
        };
        for b in scope.bindings {
            let Some(rel) = b.rel else { continue };
            if b.target && !b.reads.any() {
                continue;
            }
            let cols = if b.reads.all || b.reads.cols.is_empty() {
                None
            } else {
                Some(b.reads.cols.into_iter().collect())
            };
            self.grant(
                Privilege::Select,
                ObjectRef::table(rel.schema, rel.name),
                cols,
            );
        }
    }

    fn cte_visible(&self, name: &str) -> bool {
        self.scopes
            .iter()
            .rev()
            .any(|s| s.ctes.iter().any(|c| c == name))
    }

    fn bind(&mut self, b: Binding) {
        if let Some(s) = self.scopes.last_mut() {
            s.bindings.push(b);
        }
    }

    /// Adds a DML target to the current scope. Returns its key.
    pub fn bind_target(
        &mut self,
        name: &ObjectName,
        alias: Option<&Ident>,
    ) -> Option<(RelKey, Option<RelKind>, Option<Vec<String>>)> {
        let parts = self.name_parts(name);
        let resolved = self.resolve_rel(&parts)?;
        if matches!(
            resolved.1,
            Some(RelKind::Sequence | RelKind::MaterializedView)
        ) {
            self.fail(ExtractError::Refused(format!(
                "`{}` cannot be modified",
                parts.join(".")
            )));
        }
        let alias = alias
            .map(|a| self.ident(a))
            .unwrap_or_else(|| resolved.0.name.clone());
        self.bind(Binding {
            alias,
            rel: Some(resolved.0.clone()),
            columns: resolved.2.clone(),
            reads: ColUse::default(),
            target: true,
        });
        Some(resolved)
    }

    /// Adds another name for a DML target (PostgreSQL's EXCLUDED): reads through it are reads
    /// of the target's columns.
    pub fn bind_alias_of_target(&mut self, alias: &str, key: &RelKey) {
        if self.catalog.is_some() && !self.lookup() {
            return;
        }
        let columns = self
            .catalog
            .and_then(|c| c.relations.get(&(key.schema.clone(), key.name.clone())))
            .map(|r| r.columns.iter().map(|c| c.name.clone()).collect());
        self.bind(Binding {
            alias: alias.into(),
            rel: Some(key.clone()),
            columns,
            reads: ColUse::default(),
            target: true,
        });
    }

    /// Adds a binding that has no privileges (EXCLUDED, NEW, ...).
    pub fn bind_pseudo(&mut self, alias: &str) {
        self.bind(Binding {
            alias: alias.into(),
            rel: None,
            columns: None,
            reads: ColUse::default(),
            target: false,
        });
    }

    /// Runs `f` with no enclosing scopes (function and view bodies see none of the caller's).
    pub fn isolated(&mut self, f: impl FnOnce(&mut Self)) {
        let saved = std::mem::take(&mut self.scopes);
        f(self);
        self.scopes = saved;
    }

    /// Marks the binding called `alias` in the current scope as a DML target.
    pub fn mark_target(&mut self, alias: &str) -> Option<RelKey> {
        let b = self
            .scopes
            .last_mut()?
            .bindings
            .iter_mut()
            .find(|b| b.alias == alias)?;
        b.target = true;
        b.rel.clone()
    }

    /// Runs `f` inside a fresh scope; the scope's reads are granted when it closes.
    pub fn scoped(&mut self, f: impl FnOnce(&mut Self)) {
        self.push();
        f(self);
        self.pop();
    }

    // ----- column references -----

    fn resolve_column(&mut self, parts: &[String]) {
        match parts {
            [] => {}
            [col] => {
                for scope in self.scopes.iter_mut().rev() {
                    if scope.bindings.is_empty() {
                        continue;
                    }
                    if let Some(b) = scope.bindings.iter_mut().find(|b| {
                        b.columns
                            .as_ref()
                            .is_some_and(|c| c.iter().any(|x| x == col))
                    }) {
                        b.reads.cols.insert(col.clone());
                        return;
                    }
                    let unknown: Vec<&mut Binding> = scope
                        .bindings
                        .iter_mut()
                        .filter(|b| b.columns.is_none())
                        .collect();
                    if !unknown.is_empty() {
                        // Without a catalog the owner is unknown: attribute to every candidate
                        // (sound; the catalog makes it exact).
                        for b in unknown {
                            b.reads.cols.insert(col.clone());
                        }
                        return;
                    }
                }
            }
            [.., qual, col] => {
                for scope in self.scopes.iter_mut().rev() {
                    if let Some(b) = scope.bindings.iter_mut().find(|b| &b.alias == qual) {
                        b.reads.cols.insert(col.clone());
                        return;
                    }
                }
            }
        }
    }

    fn read_all(&mut self, qualifier: Option<&str>) {
        if let Some(scope) = self.scopes.last_mut() {
            for b in scope.bindings.iter_mut() {
                if qualifier.is_none_or(|q| q == b.alias) {
                    b.reads.all = true;
                }
            }
        }
    }

    // ----- queries -----

    pub fn query(&mut self, q: &Query) {
        if !self.in_time() {
            return;
        }
        self.push();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = self.ident(&cte.alias.name);
                if with.recursive {
                    if let Some(s) = self.scopes.last_mut() {
                        s.ctes.push(name.clone());
                    }
                }
                self.query(&cte.query);
                if !with.recursive {
                    if let Some(s) = self.scopes.last_mut() {
                        s.ctes.push(name);
                    }
                }
            }
        }
        match q.body.as_ref() {
            // ORDER BY of a plain SELECT may read columns the SELECT list does not.
            SetExpr::Select(sel) => self.select(sel, Some(q)),
            body => {
                self.set_expr(body);
                if let Some(ob) = &q.order_by {
                    self.expr_visit(ob);
                }
            }
        }
        if let Some(l) = &q.limit_clause {
            self.expr_visit(l);
        }
        if !q.locks.is_empty() {
            self.locks(q);
        }
        self.pop();
    }

    /// `SELECT ... FOR UPDATE/SHARE` locks rows of the tables it reads (or those named by
    /// `OF`): they are reported as locked, and need UPDATE where the database says so.
    fn locks(&mut self, q: &Query) {
        let mut names: Vec<ObjectName> = Vec::new();
        for lock in &q.locks {
            if let Some(of) = &lock.of {
                names.push(of.clone());
            }
        }
        if let SetExpr::Select(sel) = q.body.as_ref() {
            let mut rels = Vec::new();
            for twj in &sel.from {
                collect_plain_tables(&twj.relation, &mut rels);
                for j in &twj.joins {
                    collect_plain_tables(&j.relation, &mut rels);
                }
            }
            for (name, alias) in rels {
                let alias_s = alias.as_ref().map(|a| self.ident(a));
                let parts = self.name_parts(&name);
                let wanted = names.is_empty()
                    || names.iter().any(|n| {
                        let np = self.name_parts(n);
                        Some(np.last()) == Some(alias_s.as_ref().or(parts.last()))
                    });
                if wanted && !(parts.len() == 1 && self.cte_visible(&parts[0])) {
                    if let Some((key, kind, _)) = self.resolve_rel(&parts) {
                        let object = Self::table_privilege_object(&key, kind);
                        self.locked.insert(object.clone());
                        if self.rules.lock_needs_update {
                            self.grant(Privilege::Update, object, None);
                        }
                    }
                }
            }
        }
    }

    pub fn set_expr(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Select(sel) => self.select(sel, None),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left);
                self.set_expr(right);
            }
            SetExpr::Values(v) => {
                for row in &v.rows {
                    for e in &row.content {
                        self.expr(e);
                    }
                }
            }
            SetExpr::Table(t) => {
                if let Some(name) = &t.table_name {
                    let mut parts: Vec<String> = Vec::new();
                    if let Some(s) = &t.schema_name {
                        parts.push(s.clone());
                    }
                    parts.push(name.clone());
                    self.scoped(|w| {
                        w.relation_by_parts(&parts, None, true);
                        w.read_all(None);
                    });
                }
            }
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
                super::stmt::statement(self, s);
            }
        }
    }

    fn select(&mut self, sel: &Select, outer: Option<&Query>) {
        self.push();
        for twj in &sel.from {
            self.table_with_joins(twj);
        }
        self.select_items(&sel.projection);
        if let Some(into) = &sel.into {
            let targets: Vec<String> = into.targets.iter().map(ToString::to_string).collect();
            self.fail(ExtractError::Refused(format!(
                "SELECT INTO `{}` creates a table; p0 does not grant CREATE",
                targets.join(", ")
            )));
        }
        for e in [&sel.selection, &sel.having, &sel.qualify, &sel.prewhere]
            .into_iter()
            .flatten()
        {
            self.expr(e);
        }
        self.expr_visit(&sel.group_by);
        for w in &sel.named_window {
            self.expr_visit(w);
        }
        if let Some(d) = &sel.distinct {
            self.expr_visit(d);
        }
        if let Some(ob) = outer.and_then(|q| q.order_by.as_ref()) {
            self.expr_visit(ob);
        }
        self.pop();
    }

    /// A SELECT list or RETURNING list.
    pub fn select_items(&mut self, items: &[SelectItem]) {
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e)
                | SelectItem::ExprWithAlias { expr: e, .. }
                | SelectItem::ExprWithAliases { expr: e, .. } => self.expr(e),
                SelectItem::Wildcard(_) => self.read_all(None),
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                ) => {
                    let parts = self.name_parts(n);
                    self.read_all(parts.last().map(String::as_str));
                }
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::Expr(e), _) => {
                    self.expr(e)
                }
            }
        }
    }

    pub fn table_with_joins(&mut self, twj: &TableWithJoins) {
        self.table_factor(&twj.relation);
        for j in &twj.joins {
            self.table_factor(&j.relation);
            let constraint = match &j.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c)
                | JoinOperator::Semi(c)
                | JoinOperator::LeftSemi(c)
                | JoinOperator::RightSemi(c)
                | JoinOperator::Anti(c)
                | JoinOperator::LeftAnti(c)
                | JoinOperator::RightAnti(c)
                | JoinOperator::StraightJoin(c) => Some(c),
                _ => None,
            };
            match constraint {
                Some(JoinConstraint::On(e)) => self.expr(e),
                Some(JoinConstraint::Using(cols)) => {
                    for c in cols {
                        let parts = self.name_parts(c);
                        if let Some(col) = parts.last() {
                            self.read_column_everywhere_in_scope(col);
                        }
                    }
                }
                Some(JoinConstraint::Natural) => self.read_all(None),
                _ => {}
            }
        }
    }

    fn read_column_everywhere_in_scope(&mut self, col: &str) {
        if let Some(scope) = self.scopes.last_mut() {
            for b in scope.bindings.iter_mut() {
                if b.columns
                    .as_ref()
                    .is_none_or(|c| c.iter().any(|x| x == col))
                {
                    b.reads.cols.insert(col.to_string());
                }
            }
        }
    }

    pub fn table_factor(&mut self, tf: &TableFactor) {
        match tf {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                let parts = self.name_parts(name);
                if let Some(args) = args {
                    // A set-returning function in FROM.
                    for a in &args.args {
                        self.function_arg(a);
                    }
                    let call = self.call_args(&args.args);
                    self.function(&parts, &call, args.args.first());
                    let alias = alias
                        .as_ref()
                        .map(|a| self.ident(&a.name))
                        .unwrap_or_else(|| parts.last().cloned().unwrap_or_default());
                    self.bind_pseudo(&alias);
                    return;
                }
                let alias = alias.as_ref().map(|a| self.ident(&a.name));
                self.relation_by_parts(&parts, alias, false);
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                self.query(subquery);
                if let Some(a) = alias {
                    let alias = self.ident(&a.name);
                    self.bind_pseudo(&alias);
                }
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.table_with_joins(table_with_joins),
            TableFactor::Function {
                name, args, alias, ..
            } => {
                for a in args {
                    self.function_arg(a);
                }
                let parts = self.name_parts(name);
                let call = self.call_args(args);
                self.function(&parts, &call, args.first());
                if let Some(a) = alias {
                    let alias = self.ident(&a.name);
                    self.bind_pseudo(&alias);
                }
            }
            TableFactor::TableFunction { expr, alias } => {
                self.expr(expr);
                if let Some(a) = alias {
                    let alias = self.ident(&a.name);
                    self.bind_pseudo(&alias);
                }
            }
            TableFactor::UNNEST {
                array_exprs, alias, ..
            } => {
                for e in array_exprs {
                    self.expr(e);
                }
                if let Some(a) = alias {
                    let alias = self.ident(&a.name);
                    self.bind_pseudo(&alias);
                }
            }
            other => self.fail(ExtractError::Unsupported(format!("FROM item `{other}`"))),
        }
    }

    /// Binds a relation read in FROM (or a CTE reference).
    fn relation_by_parts(&mut self, parts: &[String], alias: Option<String>, _table_stmt: bool) {
        if parts.len() == 1 && self.cte_visible(&parts[0]) {
            let alias = alias.unwrap_or_else(|| parts[0].clone());
            self.bind_pseudo(&alias);
            return;
        }
        let Some((key, kind, columns)) = self.resolve_rel(parts) else {
            return;
        };
        if kind == Some(RelKind::Sequence) {
            // SELECT * FROM seq reads the sequence: SELECT on it.
            self.grant(
                Privilege::Select,
                ObjectRef::sequence(key.schema.clone(), key.name.clone()),
                None,
            );
            let alias = alias.unwrap_or_else(|| key.name.clone());
            self.bind_pseudo(&alias);
            return;
        }
        if kind == Some(RelKind::View) {
            self.expand_invoker_view(&key);
        }
        let alias = alias.unwrap_or_else(|| key.name.clone());
        self.bind(Binding {
            alias,
            rel: Some(key),
            columns,
            reads: ColUse::default(),
            target: false,
        });
    }

    /// Queues the definition of a view that runs with the caller's privileges.
    pub fn expand_invoker_view(&mut self, key: &RelKey) {
        let Some(cat) = self.catalog else { return };
        let Some(body) = cat
            .relations
            .get(&(key.schema.clone(), key.name.clone()))
            .and_then(|r| r.invoker_body.as_deref())
        else {
            return;
        };
        self.enqueue(
            format!("definition of view `{}.{}`", key.schema, key.name),
            Some("sql".into()),
            body,
        );
    }

    // ----- expressions -----

    pub fn expr(&mut self, e: &Expr) {
        self.expr_visit(e);
    }

    pub fn expr_visit<V: Visit>(&mut self, node: &V) {
        if !self.in_time() {
            return;
        }
        let mut v = ExprVisitor {
            w: self,
            depth: 0,
            names: HashSet::new(),
        };
        let _ = node.visit(&mut v);
    }

    fn function_arg(&mut self, a: &FunctionArg) {
        let e = match a {
            FunctionArg::Named { arg, .. }
            | FunctionArg::ExprNamed { arg, .. }
            | FunctionArg::Unnamed(arg) => arg,
        };
        if let FunctionArgExpr::Expr(e) = e {
            self.expr(e);
        }
    }

    /// How overload resolution sees a call's arguments.
    fn call_args(&self, args: &[FunctionArg]) -> CallArgs {
        let mut call = CallArgs::default();
        for a in args {
            match a {
                FunctionArg::Named { name, .. }
                | FunctionArg::ExprNamed {
                    name: Expr::Identifier(name),
                    ..
                } => call.named.push(self.ident(name)),
                _ => call.positional += 1,
            }
        }
        call
    }

    /// A function call in an expression, or in `CALL`: its name and its arguments' names.
    /// The arguments themselves are walked by the caller.
    fn call(&mut self, f: &Function) {
        let parts = self.name_parts(&f.name);
        if let FunctionArguments::List(l) = &f.args {
            for a in &l.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::QualifiedWildcard(n)) = a {
                    let parts = self.name_parts(n);
                    self.read_all(parts.last().map(String::as_str));
                }
            }
        }
        let (call, first) = match &f.args {
            FunctionArguments::List(l) => (self.call_args(&l.args), l.args.first()),
            FunctionArguments::Subquery(_) => (
                CallArgs {
                    positional: 1,
                    named: Vec::new(),
                },
                None,
            ),
            // Without parentheses (CURRENT_TIMESTAMP, CURRENT_USER, ...) it is built in.
            FunctionArguments::None => return,
        };
        self.function(&parts, &call, first);
    }

    /// `CALL f(...)`: the routine and its arguments.
    pub fn call_statement(&mut self, f: &Function) {
        if !self.in_time() {
            return;
        }
        self.call(f);
        let mut v = ExprVisitor {
            w: self,
            depth: 0,
            names: HashSet::new(),
        };
        v.skip_argument_names(f);
        let _ = f.visit(&mut v);
    }

    /// A function call: refused, built in, a sequence function, or a user function.
    pub fn function(&mut self, parts: &[String], call: &CallArgs, first: Option<&FunctionArg>) {
        let Some(name) = parts.last() else { return };
        let lower = name.to_lowercase();
        if let Some(why) = (self.rules.refused_function)(&lower) {
            self.fail(ExtractError::Refused(format!("`{name}` {why}")));
            return;
        }
        let schema = if parts.len() >= 2 {
            Some(parts[parts.len() - 2].clone())
        } else {
            None
        };
        if schema.as_deref().is_some_and(|s| s == "pg_catalog") {
            return;
        }
        if matches!(lower.as_str(), "nextval" | "currval" | "setval") && schema.is_none() {
            self.sequence_function(&lower, first);
            return;
        }
        super::stmt::user_function(self, schema, name, call);
    }

    fn sequence_function(&mut self, func: &str, first: Option<&FunctionArg>) {
        let literal = first.and_then(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => string_literal(e),
            _ => None,
        });
        let Some(text) = literal else {
            self.unresolved
                .insert(format!("sequence passed to {func}()"));
            return;
        };
        let parts = split_qualified(&text, self.rules.fold_lower);
        let Some((key, kind, _)) = self.resolve_rel(&parts) else {
            return;
        };
        if self.catalog.is_some() && kind != Some(RelKind::Sequence) {
            self.fail(ExtractError::Unsupported(format!(
                "`{text}` is not a sequence"
            )));
            return;
        }
        let privilege = if func == "setval" {
            Privilege::Update
        } else {
            Privilege::Usage
        };
        self.grant(privilege, ObjectRef::sequence(key.schema, key.name), None);
    }

    /// Marks assignment targets' columns; returns them.
    pub fn assignment_columns(&self, assignments: &[Assignment]) -> Vec<String> {
        let mut cols = Vec::new();
        for a in assignments {
            let names: Vec<&ObjectName> = match &a.target {
                AssignmentTarget::ColumnName(n) => vec![n],
                AssignmentTarget::Tuple(ns) => ns.iter().collect(),
            };
            for n in names {
                if let Some(c) = self.name_parts(n).last() {
                    cols.push(c.clone());
                }
            }
        }
        cols
    }
}

fn collect_plain_tables(tf: &TableFactor, out: &mut Vec<(ObjectName, Option<Ident>)>) {
    match tf {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => out.push((name.clone(), alias.as_ref().map(|a| a.name.clone()))),
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => {
            collect_plain_tables(&table_with_joins.relation, out);
            for j in &table_with_joins.joins {
                collect_plain_tables(&j.relation, out);
            }
        }
        _ => {}
    }
}

/// `'x'` or `'x'::regclass` → `x`.
pub(crate) fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        Expr::Cast { expr, .. } => string_literal(expr),
        Expr::Nested(e) => string_literal(e),
        _ => None,
    }
}

/// Splits `"My Schema".seq` into parts, folding unquoted parts when asked.
pub(crate) fn split_qualified(text: &str, fold_lower: bool) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            '.' if !quoted => {
                parts.push(if was_quoted || !fold_lower {
                    cur.clone()
                } else {
                    cur.to_lowercase()
                });
                cur.clear();
                was_quoted = false;
            }
            c => cur.push(c),
        }
    }
    parts.push(if was_quoted || !fold_lower {
        cur
    } else {
        cur.to_lowercase()
    });
    parts
}

/// The arguments of a call, as overload resolution sees them.
#[derive(Debug, Default)]
pub(crate) struct CallArgs {
    /// Arguments given by position.
    pub positional: usize,
    /// Names of the arguments given by name (`a => 1`, `a := 1`), in order.
    pub named: Vec<String>,
}

struct ExprVisitor<'w, 'a> {
    w: &'w mut Walker<'a>,
    depth: usize,
    /// The names of named arguments (`f(a => 1)`): identifiers that are not columns.
    names: HashSet<*const Expr>,
}

impl ExprVisitor<'_, '_> {
    fn skip_argument_names(&mut self, f: &Function) {
        if let FunctionArguments::List(l) = &f.args {
            for a in &l.args {
                if let FunctionArg::ExprNamed { name, .. } = a {
                    self.names.insert(name as *const Expr);
                }
            }
        }
    }
}

impl Visitor for ExprVisitor<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if self.depth == 0 {
            self.w.query(q);
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.w.error.is_some() {
            return ControlFlow::Break(());
        }
        self.w.nodes += 1;
        if self.w.nodes.is_multiple_of(1024) && !self.w.in_time() {
            return ControlFlow::Break(());
        }
        if self.depth > 0 || self.names.contains(&(e as *const Expr)) {
            return ControlFlow::Continue(());
        }
        match e {
            Expr::Identifier(id) => {
                let col = self.w.ident(id);
                self.w.resolve_column(&[col]);
            }
            Expr::CompoundIdentifier(ids) => {
                let parts: Vec<String> = ids.iter().map(|i| self.w.ident(i)).collect();
                self.w.resolve_column(&parts);
            }
            Expr::Function(f) => {
                self.skip_argument_names(f);
                self.w.call(f);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Another session's temporary schema (`pg_temp_3`, `pg_toast_temp_3`), or the agent's own:
/// a fresh session of the requester sees none of them.
pub(crate) fn is_temp_schema(schema: &str) -> bool {
    schema.starts_with("pg_temp") || schema.starts_with("pg_toast_temp")
}
