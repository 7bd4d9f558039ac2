//! Changing rows in place: UPDATE (MySQL's multi-table form too), DELETE (PostgreSQL's USING,
//! MySQL's multi-table forms), MERGE and TRUNCATE. A target needs SELECT only when the
//! statement reads its columns.

use super::casts::untyped;
use super::catalog::RelKind;
use super::refuse::truncate_refusal;
use super::walker::{Walked, Walker};
use crate::error::ExtractError;
use crate::types::{ObjectRef, Privilege};
use sqlparser::ast::{
    Assignment, AssignmentTarget, Delete, FromTable, Merge, MergeAction, MergeInsertKind,
    MergeUpdateKind, ObjectName, TableFactor, TableWithJoins, Truncate, Update,
    UpdateTableFromKind,
};

impl Walker<'_> {
    /// `UPDATE`.
    pub fn update(&mut self, u: &Update) -> Walked {
        let from = match &u.from {
            Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) => {
                f.as_slice()
            }
            None => &[],
        };
        self.scoped(|w| {
            w.update_targets(&u.table, &u.assignments)?;
            for twj in from {
                w.table_with_joins(twj)?;
            }
            for a in &u.assignments {
                w.expr(&a.value)?;
            }
            for e in [&u.selection, &u.limit].into_iter().flatten() {
                w.expr(e)?;
            }
            for o in &u.order_by {
                w.expr(&o.expr)?;
            }
            if let Some(r) = &u.returning {
                w.select_items(r)?;
            }
            Ok(())
        })
    }

    /// The tables of an UPDATE's target list; more than one only in MySQL's multi-table form.
    fn update_targets(&mut self, table: &TableWithJoins, assignments: &[Assignment]) -> Walked {
        if table.joins.is_empty() {
            if let TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = &table.relation
            {
                let Some((key, kind, _)) =
                    self.bind_target(name, alias.as_ref().map(|a| &a.name))?
                else {
                    return Ok(());
                };
                if self.mysql() && kind == Some(RelKind::View) {
                    // MariaDB checks no SELECT on a view an UPDATE reads through (verified
                    // on 10.11): UPDATE on it, and what its definition needs.
                    let alias = alias
                        .as_ref()
                        .map(|a| self.ident(&a.name))
                        .unwrap_or_else(|| key.name.clone());
                    self.scopes.mark_free(&alias);
                }
                let cols = self.assignment_columns(assignments);
                let values: Vec<(String, bool)> = assignments
                    .iter()
                    .filter_map(|a| match &a.target {
                        AssignmentTarget::ColumnName(n) => {
                            Some((self.name_parts(n).pop()?, untyped(&a.value)))
                        }
                        AssignmentTarget::Tuple(_) => None,
                    })
                    .collect();
                self.assignment_casts(&key, &values);
                self.written(&key, &cols, false)?;
                self.grant(
                    Privilege::Update,
                    ObjectRef::table(key.schema, key.name),
                    Some(cols),
                );
                return Ok(());
            }
        }
        // Multi-table: bind every table as read, then each assigned table becomes a target.
        self.table_with_joins(table)?;
        let mut per_alias: Vec<(String, Vec<String>)> = Vec::new();
        for a in assignments {
            let names: Vec<&ObjectName> = match &a.target {
                AssignmentTarget::ColumnName(n) => vec![n],
                AssignmentTarget::Tuple(ns) => ns.iter().collect(),
            };
            for n in names {
                let parts = self.name_parts(n);
                let (alias, col) = match parts.as_slice() {
                    [.., t, c] => (Some(t.clone()), c.clone()),
                    // Unqualified: the one table of the statement that has the column.
                    [c] => match self.scopes.column_owner(c) {
                        Ok(owner) => (owner, c.clone()),
                        Err(tables) => {
                            return Err(ExtractError::Unsupported(format!(
                                "`SET {c}` in a multi-table UPDATE: without the tables' columns p0 cannot tell which of `{}` has `{c}`; qualify it",
                                tables.join("`, `")
                            )))
                        }
                    },
                    [] => continue,
                };
                let Some(alias) = alias else { continue };
                match per_alias.iter_mut().find(|(a, _)| *a == alias) {
                    Some((_, cols)) => cols.push(col),
                    None => per_alias.push((alias, vec![col])),
                }
            }
        }
        for (alias, cols) in per_alias {
            if let Some(key) = self.scopes.mark_target(&alias) {
                self.grant(
                    Privilege::Update,
                    ObjectRef::table(key.schema, key.name),
                    Some(cols),
                );
            }
        }
        Ok(())
    }

    /// `DELETE`.
    pub fn delete(&mut self, d: &Delete) -> Walked {
        self.scoped(|w| w.delete_in_scope(d))
    }

    fn delete_in_scope(&mut self, d: &Delete) -> Walked {
        let from = match &d.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f.as_slice(),
        };
        if !d.tables.is_empty() {
            return self.delete_multi(&d.tables, from, d);
        }
        // PostgreSQL: DELETE FROM target [USING ...].
        let Some(first) = from.first() else {
            return Ok(());
        };
        match &first.relation {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } if first.joins.is_empty()
                && from.len() == 1
                && !(self.rules.delete_from_names_using && d.using.is_some()) =>
            {
                if let Some((key, _, _)) =
                    self.bind_target(name, alias.as_ref().map(|a| &a.name))?
                {
                    self.deleted(&key)?;
                    self.grant(
                        Privilege::Delete,
                        ObjectRef::table(key.schema, key.name),
                        None,
                    );
                }
            }
            _ => {
                // MySQL: DELETE FROM t1 USING t1 JOIN t2 ...: targets are the FROM list.
                let mut names = Vec::new();
                for twj in from {
                    if let TableFactor::Table { name, .. } = &twj.relation {
                        names.push(name.clone());
                    }
                }
                return self.delete_multi(&names, d.using.as_deref().unwrap_or(from), d);
            }
        }
        for twj in d.using.iter().flatten() {
            self.table_with_joins(twj)?;
        }
        self.delete_tail(d)
    }

    fn delete_multi(
        &mut self,
        targets: &[ObjectName],
        from: &[TableWithJoins],
        d: &Delete,
    ) -> Walked {
        for twj in from {
            self.table_with_joins(twj)?;
        }
        for t in targets {
            let parts = self.name_parts(t);
            let Some(alias) = parts.last() else { continue };
            // A name of the statement's tables (its alias when it has one), never a table
            // of that name elsewhere.
            let Some(key) = self.scopes.mark_target(alias) else {
                return Err(ExtractError::Unsupported(format!(
                    "`DELETE {}`: no table of the statement is called `{alias}`",
                    parts.join(".")
                )));
            };
            self.grant(
                Privilege::Delete,
                ObjectRef::table(key.schema, key.name),
                None,
            );
        }
        self.delete_tail(d)
    }

    fn delete_tail(&mut self, d: &Delete) -> Walked {
        for e in [&d.selection, &d.limit].into_iter().flatten() {
            self.expr(e)?;
        }
        if let Some(r) = &d.returning {
            self.select_items(r)?;
        }
        self.expr_visit(&d.order_by)
    }

    /// `MERGE INTO target USING source ON ... WHEN ...`.
    pub fn merge(&mut self, m: &Merge) -> Walked {
        self.scoped(|w| w.merge_in_scope(m))
    }

    fn merge_in_scope(&mut self, m: &Merge) -> Walked {
        self.table_factor(&m.source)?;
        let TableFactor::Table { name, alias, .. } = &m.table else {
            return Err(ExtractError::Unsupported(
                "MERGE into something other than a table".into(),
            ));
        };
        let Some((key, _, _)) = self.bind_target(name, alias.as_ref().map(|a| &a.name))? else {
            return Ok(());
        };
        let object = ObjectRef::table(key.schema.clone(), key.name.clone());
        self.expr(&m.on)?;
        for c in &m.clauses {
            if let Some(p) = &c.predicate {
                self.expr(p)?;
            }
            match &c.action {
                MergeAction::Update(up) => {
                    let MergeUpdateKind::Set(assignments) = &up.kind else {
                        return Err(ExtractError::Unsupported(
                            "MERGE ... UPDATE without SET".into(),
                        ));
                    };
                    let cols = self.assignment_columns(assignments);
                    self.written(&key, &cols, false)?;
                    self.grant(Privilege::Update, object.clone(), Some(cols));
                    for a in assignments {
                        self.expr(&a.value)?;
                    }
                    for p in [&up.update_predicate, &up.delete_predicate]
                        .into_iter()
                        .flatten()
                    {
                        self.expr(p)?;
                    }
                    if up.delete_predicate.is_some() {
                        self.deleted(&key)?;
                        self.grant(Privilege::Delete, object.clone(), None);
                    }
                }
                MergeAction::Delete { .. } => {
                    self.deleted(&key)?;
                    self.grant(Privilege::Delete, object.clone(), None)
                }
                MergeAction::DoNothing { .. } => {}
                MergeAction::Insert(ins) => {
                    let cols = self.column_names(&ins.columns);
                    let width = match &ins.kind {
                        MergeInsertKind::Values(v) => {
                            self.expr_visit(v)?;
                            v.rows.first().map(|r| r.content.len())
                        }
                        MergeInsertKind::Row => None,
                        MergeInsertKind::Wildcard => {
                            return Err(ExtractError::Unsupported(
                                "MERGE ... INSERT *: name the columns".into(),
                            ))
                        }
                    };
                    if let Some(p) = &ins.insert_predicate {
                        self.expr(p)?;
                    }
                    self.insert_columns(&key, &cols, width, &[])?;
                }
            }
        }
        Ok(())
    }

    /// `TRUNCATE`: its own privilege on each table, where the database has one.
    pub fn truncate(&mut self, t: &Truncate) -> Walked {
        if let Some(e) = truncate_refusal(
            self.rules.truncate_grantable,
            t.identity.as_ref(),
            t.cascade.as_ref(),
        ) {
            return Err(e);
        }
        for t in &t.table_names {
            let parts = self.name_parts(&t.name);
            if let Some((key, _, _)) = self.resolve_rel(&parts)? {
                self.truncated(&key);
                self.grant(
                    Privilege::Truncate,
                    ObjectRef::table(key.schema, key.name),
                    None,
                );
            }
        }
        Ok(())
    }
}
