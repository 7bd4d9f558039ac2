//! Writing rows in: INSERT (with ON CONFLICT, ON DUPLICATE KEY UPDATE, REPLACE) and COPY,
//! and what the defaults of the columns not supplied need.

use super::casts::untyped;
use super::refuse::copy_refusal;
use super::scope::RelKey;
use super::walker::{Walked, Walker};
use crate::error::ExtractError;
use crate::types::{ObjectRef, Privilege};
use sqlparser::ast::{
    ConflictTarget, CopySource, CopyTarget, Expr, Insert, ObjectName, OnConflictAction, OnInsert,
    SelectItem, SetExpr, TableObject,
};

impl Walker<'_> {
    /// `INSERT` (and MySQL's `REPLACE`).
    pub fn insert(&mut self, ins: &Insert) -> Walked {
        let TableObject::TableName(name) = &ins.table else {
            return Err(ExtractError::Unsupported(
                "INSERT INTO a table function".into(),
            ));
        };
        self.scoped(|w| w.insert_in_scope(ins, name))
    }

    fn insert_in_scope(&mut self, ins: &Insert, name: &ObjectName) -> Walked {
        if let Some(src) = &ins.source {
            self.query(src)?;
        }
        let Some((key, _, _)) =
            self.bind_target(name, ins.table_alias.as_ref().map(|a| &a.alias))?
        else {
            return Ok(());
        };
        let mut cols = self.column_names(&ins.columns);
        let mut defaults_at: Vec<usize> = Vec::new();
        // Positions where some row has a value with a type of its own (an assignment cast
        // may run for it); every position when the rows come from a query.
        let mut typed_at: Option<Vec<usize>> = None;
        let width = match &ins.source {
            Some(src) => match src.body.as_ref() {
                SetExpr::Values(v) => {
                    let mut typed = Vec::new();
                    for row in &v.rows {
                        for (i, e) in row.content.iter().enumerate() {
                            if is_default(e) && !defaults_at.contains(&i) {
                                defaults_at.push(i);
                            }
                            if !untyped(e) && !typed.contains(&i) {
                                typed.push(i);
                            }
                        }
                    }
                    typed_at = Some(typed);
                    v.rows.first().map(|r| r.content.len())
                }
                SetExpr::Select(s)
                    if !s.projection.iter().any(|p| {
                        matches!(
                            p,
                            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                        )
                    }) =>
                {
                    Some(s.projection.len())
                }
                _ => None,
            },
            // DEFAULT VALUES or MySQL's INSERT ... SET.
            None => Some(0),
        };
        if !ins.assignments.is_empty() {
            cols = self.assignment_columns(&ins.assignments);
            for a in &ins.assignments {
                self.expr(&a.value)?;
            }
        }
        let width = if ins.assignments.is_empty() {
            width
        } else {
            Some(cols.len())
        };
        self.insert_columns(&key, &cols, width, &defaults_at)?;
        if ins.source.is_some() {
            let names = match (cols.is_empty(), self.catalog) {
                (false, _) => cols.clone(),
                (true, Some(cat)) => cat
                    .relations
                    .get(&(key.schema.clone(), key.name.clone()))
                    .map(|r| r.columns.iter().map(|c| c.name.clone()).collect())
                    .unwrap_or_default(),
                (true, None) => Vec::new(),
            };
            let written: Vec<(String, bool)> = names
                .into_iter()
                .take(width.unwrap_or(usize::MAX))
                .enumerate()
                .map(|(i, c)| (c, typed_at.as_ref().is_some_and(|t| !t.contains(&i))))
                .collect();
            self.assignment_casts(&key, &written);
        }
        if ins.replace_into {
            self.grant(
                Privilege::Delete,
                ObjectRef::table(key.schema.clone(), key.name.clone()),
                None,
            );
        }
        let object = ObjectRef::table(key.schema.clone(), key.name.clone());
        match &ins.on {
            Some(OnInsert::OnConflict(oc)) => {
                // PostgreSQL checks SELECT on the columns that infer the arbiter index.
                match &oc.conflict_target {
                    Some(ConflictTarget::Columns(cs)) => {
                        let parts: Vec<String> = cs.iter().map(|c| self.ident(c)).collect();
                        self.grant(Privilege::Select, object.clone(), Some(parts));
                    }
                    Some(ConflictTarget::OnConstraint(_)) => {
                        self.grant(Privilege::Select, object.clone(), None)
                    }
                    None => {}
                }
                if let OnConflictAction::DoUpdate(du) = &oc.action {
                    // Reading EXCLUDED.col reads the target's column: SELECT on it.
                    self.bind_alias_of_target("excluded", &key)?;
                    let ucols = self.assignment_columns(&du.assignments);
                    self.grant(Privilege::Update, object.clone(), Some(ucols));
                    for a in &du.assignments {
                        self.expr(&a.value)?;
                    }
                    if let Some(sel) = &du.selection {
                        self.expr(sel)?;
                    }
                }
            }
            Some(OnInsert::DuplicateKeyUpdate(assignments)) => {
                let ucols = self.assignment_columns(assignments);
                self.grant(Privilege::Update, object.clone(), Some(ucols));
                // MariaDB checks SELECT on the updated columns and the key it matched on.
                self.grant(Privilege::Select, object.clone(), None);
                for a in assignments {
                    self.expr(&a.value)?;
                }
            }
            _ => {}
        }
        if let Some(r) = &ins.returning {
            self.select_items(r)?;
        }
        Ok(())
    }

    /// INSERT on the supplied columns, and what the defaults of the others need.
    pub fn insert_columns(
        &mut self,
        key: &RelKey,
        cols: &[String],
        width: Option<usize>,
        defaults_at: &[usize],
    ) -> Walked {
        let object = ObjectRef::table(key.schema.clone(), key.name.clone());
        if self.catalog.is_some() {
            self.lookup()?;
        }
        let table_cols: Option<Vec<(String, Option<String>)>> = self.catalog.and_then(|c| {
            c.relations
                .get(&(key.schema.clone(), key.name.clone()))
                .map(|r| {
                    r.columns
                        .iter()
                        .map(|c| (c.name.clone(), c.default.clone()))
                        .collect()
                })
        });
        let Some(table_cols) = table_cols else {
            self.grant(
                Privilege::Insert,
                object,
                (!cols.is_empty()).then(|| cols.to_vec()),
            );
            if self.rules.defaults_need_privileges {
                self.unresolved.insert(format!(
                    "sequences and functions behind column defaults of `{}.{}`",
                    key.schema, key.name
                ));
            }
            return Ok(());
        };
        let supplied: Vec<String> = if !cols.is_empty() {
            cols.to_vec()
        } else {
            match width {
                Some(n) => table_cols.iter().take(n).map(|(c, _)| c.clone()).collect(),
                None => table_cols.iter().map(|(c, _)| c.clone()).collect(),
            }
        };
        let explicit_defaults: Vec<&String> = defaults_at
            .iter()
            .filter_map(|&i| supplied.get(i))
            .collect();
        // A column given DEFAULT explicitly is still an inserted column; an INSERT of no column
        // at all (DEFAULT VALUES) still needs INSERT on the table.
        self.grant(
            Privilege::Insert,
            object,
            (!supplied.is_empty()).then(|| supplied.clone()),
        );
        // MariaDB prepares every default of the table, given or not: only a sequence's
        // (`nextval`) needs a privilege there, and then for every INSERT.
        let every_default = self.mysql();
        for (name, default) in &table_cols {
            let uses_default =
                every_default || !supplied.contains(name) || explicit_defaults.contains(&name);
            if let (true, Some(expr)) = (uses_default, default) {
                self.enqueue(
                    format!("default of `{}.{}.{name}`", key.schema, key.name),
                    None,
                    expr,
                );
            }
        }
        let given: Vec<String> = supplied
            .iter()
            .filter(|c| !explicit_defaults.contains(c))
            .cloned()
            .collect();
        self.written(key, &given, true)
    }

    /// `COPY`: to the client reads (SELECT), from the client inserts; server files and
    /// programs are refused.
    pub fn copy(&mut self, source: &CopySource, to: bool, target: &CopyTarget) -> Walked {
        if let Some(e) = copy_refusal(target) {
            return Err(e);
        }
        match source {
            CopySource::Query(q) => self.query(q),
            CopySource::Table {
                table_name,
                columns,
            } => {
                let parts = self.name_parts(table_name);
                let Some((key, _, _)) = self.resolve_rel(&parts)? else {
                    return Ok(());
                };
                let cols: Vec<String> = columns.iter().map(|c| self.ident(c)).collect();
                if to {
                    self.grant(
                        Privilege::Select,
                        ObjectRef::table(key.schema, key.name),
                        (!cols.is_empty()).then_some(cols),
                    );
                    Ok(())
                } else {
                    self.insert_columns(&key, &cols, None, &[])
                }
            }
        }
    }
}

/// `DEFAULT` in a VALUES row.
fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}
