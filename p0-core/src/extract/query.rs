//! Queries, walked by hand so that every column reference is attributed to the relation it
//! names: CTEs, set operations, SELECT, FROM items and joins, and locking clauses.

use super::catalog::RelKind;
use super::names::table_privilege_object;
use super::scope::Binding;
use super::walker::{Reenter, Walked, Walker};
use crate::error::ExtractError;
use crate::types::{ObjectRef, Privilege};
use sqlparser::ast::{
    Ident, JoinConstraint, JoinOperator, ObjectName, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, TableFactor, TableWithJoins,
};

impl Walker<'_> {
    /// A query, in a scope of its own: its CTEs, its body, its ORDER BY, LIMIT and locks.
    pub fn query(&mut self, q: &Query) -> Walked {
        self.check_time()?;
        self.descend(|w| w.scoped(|w| w.query_in_scope(q)))
    }

    fn query_in_scope(&mut self, q: &Query) -> Walked {
        if let Some(with) = &q.with {
            // WITH RECURSIVE: every name of the list is visible in every body, before or
            // after its own.
            if with.recursive {
                for cte in &with.cte_tables {
                    let name = self.ident(&cte.alias.name);
                    self.scopes.add_cte(name);
                }
            }
            for cte in &with.cte_tables {
                let name = self.ident(&cte.alias.name);
                self.query(&cte.query)?;
                if !with.recursive {
                    self.scopes.add_cte(name);
                }
            }
        }
        match q.body.as_ref() {
            // ORDER BY of a plain SELECT may read columns the SELECT list does not.
            SetExpr::Select(sel) => self.select(sel, Some(q))?,
            body => {
                self.set_expr(body)?;
                if let Some(ob) = &q.order_by {
                    self.expr_visit(ob)?;
                }
            }
        }
        if let Some(l) = &q.limit_clause {
            self.expr_visit(l)?;
        }
        if !q.locks.is_empty() {
            self.locks(q)?;
        }
        Ok(())
    }

    /// `SELECT ... FOR UPDATE/SHARE` locks rows of the tables it reads (or those named by
    /// `OF`): they are reported as locked, and need UPDATE where the database says so.
    fn locks(&mut self, q: &Query) -> Walked {
        let mut names: Vec<ObjectName> = Vec::new();
        for lock in &q.locks {
            if let Some(of) = &lock.of {
                names.push(of.clone());
            }
        }
        let SetExpr::Select(sel) = q.body.as_ref() else {
            return Ok(());
        };
        for (name, alias) in plain_tables(sel) {
            let alias_s = alias.as_ref().map(|a| self.ident(a));
            let parts = self.name_parts(&name);
            let wanted = names.is_empty()
                || names.iter().any(|n| {
                    let np = self.name_parts(n);
                    Some(np.last()) == Some(alias_s.as_ref().or(parts.last()))
                });
            if !wanted || (parts.len() == 1 && self.scopes.cte_visible(&parts[0])) {
                continue;
            }
            if let Some((key, kind, _)) = self.resolve_rel(&parts)? {
                let object = table_privilege_object(&key, kind);
                self.locked.insert(object.clone());
                if self.rules.lock_needs_update {
                    self.grant(Privilege::Update, object, None);
                }
            }
        }
        Ok(())
    }

    /// The body of a query: a SELECT, a set operation, VALUES, TABLE, or a statement.
    pub fn set_expr(&mut self, body: &SetExpr) -> Walked {
        self.descend(|w| match body {
            SetExpr::Select(sel) => w.select(sel, None),
            SetExpr::Query(q) => w.query(q),
            SetExpr::SetOperation { left, right, .. } => {
                w.set_expr(left)?;
                w.set_expr(right)
            }
            SetExpr::Values(v) => {
                for row in &v.rows {
                    for e in &row.content {
                        w.expr(e)?;
                    }
                }
                Ok(())
            }
            SetExpr::Table(t) => {
                let Some(name) = &t.table_name else {
                    return Ok(());
                };
                let mut parts: Vec<String> = Vec::new();
                if let Some(s) = &t.schema_name {
                    parts.push(s.clone());
                }
                parts.push(name.clone());
                w.scoped(|w| {
                    w.relation_by_parts(&parts, None)?;
                    w.scopes.read_all(None);
                    Ok(())
                })
            }
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
                w.nested_statement(s)
            }
        })
    }

    /// One SELECT, in a scope of its own; `outer` is the query whose ORDER BY it reads.
    fn select(&mut self, sel: &Select, outer: Option<&Query>) -> Walked {
        self.scoped(|w| {
            for twj in &sel.from {
                w.table_with_joins(twj)?;
            }
            w.select_items(&sel.projection)?;
            if let Some(into) = &sel.into {
                let targets: Vec<String> = into.targets.iter().map(ToString::to_string).collect();
                // MySQL's `SELECT ... INTO @a, @b` sets user variables: no privilege.
                let variables = !into.table
                    && !into.temporary
                    && targets
                        .iter()
                        .all(|t| t.starts_with('@') && !t.starts_with("@@"));
                if !variables {
                    return Err(ExtractError::Refused(format!(
                        "SELECT INTO `{}` creates a table; p0 does not grant CREATE",
                        targets.join(", ")
                    )));
                }
            }
            for e in [&sel.selection, &sel.having, &sel.qualify, &sel.prewhere]
                .into_iter()
                .flatten()
            {
                w.expr(e)?;
            }
            w.expr_visit(&sel.group_by)?;
            for nw in &sel.named_window {
                w.expr_visit(nw)?;
            }
            if let Some(d) = &sel.distinct {
                w.expr_visit(d)?;
            }
            if let Some(ob) = outer.and_then(|q| q.order_by.as_ref()) {
                w.expr_visit(ob)?;
            }
            Ok(())
        })
    }

    /// A SELECT list or RETURNING list.
    pub fn select_items(&mut self, items: &[SelectItem]) -> Walked {
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e)
                | SelectItem::ExprWithAlias { expr: e, .. }
                | SelectItem::ExprWithAliases { expr: e, .. } => self.expr(e)?,
                SelectItem::Wildcard(_) => self.scopes.read_all(None),
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                ) => {
                    let parts = self.name_parts(n);
                    self.scopes.read_all(parts.last().map(String::as_str));
                }
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::Expr(e), _) => {
                    self.expr(e)?
                }
            }
        }
        Ok(())
    }

    /// A FROM item and its joins, with what their constraints read.
    pub fn table_with_joins(&mut self, twj: &TableWithJoins) -> Walked {
        self.table_factor(&twj.relation)?;
        for j in &twj.joins {
            self.table_factor(&j.relation)?;
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
                Some(JoinConstraint::On(e)) => self.expr(e)?,
                Some(JoinConstraint::Using(cols)) => {
                    for c in cols {
                        let parts = self.name_parts(c);
                        if let Some(col) = parts.last() {
                            self.scopes.read_column_everywhere(col);
                        }
                    }
                }
                Some(JoinConstraint::Natural) => self.scopes.read_all(None),
                _ => {}
            }
        }
        Ok(())
    }

    /// One FROM item: a relation, a function, a derived table, a nested join, ...
    pub fn table_factor(&mut self, tf: &TableFactor) -> Walked {
        self.descend(|w| w.table_factor_here(tf))
    }

    fn table_factor_here(&mut self, tf: &TableFactor) -> Walked {
        match tf {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                let parts = self.name_parts(name);
                if let Some(args) = args {
                    // A set-returning function in FROM.
                    for a in &args.args {
                        self.function_arg(a)?;
                    }
                    let call = self.call_args(&args.args);
                    self.function(&parts, &call, args.args.first())?;
                    let alias = alias
                        .as_ref()
                        .map(|a| self.ident(&a.name))
                        .unwrap_or_else(|| parts.last().cloned().unwrap_or_default());
                    self.bind_pseudo(&alias);
                    return Ok(());
                }
                let alias = alias.as_ref().map(|a| self.ident(&a.name));
                self.relation_by_parts(&parts, alias)
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                self.query(subquery)?;
                self.bind_alias(alias.as_ref().map(|a| &a.name));
                Ok(())
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.table_with_joins(table_with_joins),
            TableFactor::Function {
                name, args, alias, ..
            } => {
                for a in args {
                    self.function_arg(a)?;
                }
                let parts = self.name_parts(name);
                let call = self.call_args(args);
                self.function(&parts, &call, args.first())?;
                self.bind_alias(alias.as_ref().map(|a| &a.name));
                Ok(())
            }
            TableFactor::TableFunction { expr, alias } => {
                self.expr(expr)?;
                self.bind_alias(alias.as_ref().map(|a| &a.name));
                Ok(())
            }
            TableFactor::UNNEST {
                array_exprs, alias, ..
            } => {
                for e in array_exprs {
                    self.expr(e)?;
                }
                self.bind_alias(alias.as_ref().map(|a| &a.name));
                Ok(())
            }
            // MySQL's `JSON_TABLE(expr, path COLUMNS (...)) AS jt`: what `expr` reads.
            TableFactor::JsonTable {
                json_expr, alias, ..
            } => {
                self.expr(json_expr)?;
                self.bind_alias(alias.as_ref().map(|a| &a.name));
                Ok(())
            }
            other => Err(ExtractError::Unsupported(format!("FROM item `{other}`"))),
        }
    }

    /// Binds the alias of a FROM item that has no privileges of its own, if it has one.
    fn bind_alias(&mut self, alias: Option<&Ident>) {
        if let Some(a) = alias {
            let alias = self.ident(a);
            self.bind_pseudo(&alias);
        }
    }

    /// Binds a relation read in FROM (or a CTE reference).
    fn relation_by_parts(&mut self, parts: &[String], alias: Option<String>) -> Walked {
        if parts.len() == 1 && self.scopes.cte_visible(&parts[0]) {
            let alias = alias.unwrap_or_else(|| parts[0].clone());
            self.bind_pseudo(&alias);
            return Ok(());
        }
        let Some((key, kind, columns)) = self.resolve_rel(parts)? else {
            return Ok(());
        };
        if self.explain_only && self.mysql() && kind == Some(RelKind::View) {
            // MariaDB shows a view's plan only to who may see its definition.
            return Err(ExtractError::Refused(format!(
                "`EXPLAIN` of a statement that reads the view `{}.{}` needs SHOW VIEW on it, which p0 does not grant",
                key.schema, key.name
            )));
        }
        if kind == Some(RelKind::Sequence) {
            // SELECT * FROM seq reads the sequence: SELECT on it.
            self.grant(
                Privilege::Select,
                ObjectRef::sequence(key.schema.clone(), key.name.clone()),
                None,
            );
            let alias = alias.unwrap_or_else(|| key.name.clone());
            self.bind_pseudo(&alias);
            return Ok(());
        }
        let alias = alias.unwrap_or_else(|| key.name.clone());
        self.scopes.bind(Binding::read(alias, key, columns));
        Ok(())
    }
}

/// The plain tables of a SELECT's FROM list (through nested joins), with their aliases, in
/// the order written. Depth-first with a list of what is left, not by recursion.
fn plain_tables(sel: &Select) -> Vec<(ObjectName, Option<Ident>)> {
    fn push<'q>(todo: &mut Vec<&'q TableFactor>, twj: &'q TableWithJoins) {
        for j in twj.joins.iter().rev() {
            todo.push(&j.relation);
        }
        todo.push(&twj.relation);
    }
    let mut todo: Vec<&TableFactor> = Vec::new();
    for twj in sel.from.iter().rev() {
        push(&mut todo, twj);
    }
    let mut out = Vec::new();
    while let Some(tf) = todo.pop() {
        match tf {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => out.push((name.clone(), alias.as_ref().map(|a| a.name.clone()))),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => push(&mut todo, table_with_joins),
            _ => {}
        }
    }
    out
}
