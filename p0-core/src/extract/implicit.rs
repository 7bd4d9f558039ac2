//! What the catalog runs for the querying user beyond the statement's own calls: the functions
//! an ordinary view's rule calls, the definitions of views that run as the caller, and what
//! writing rows runs (defaults through views, domain CHECKs, generated columns, triggers).

use super::bounds::{parse_statements, Syntax};
use super::catalog::{RelKind, ViewCall};
use super::names::table_privilege_object;
use super::scope::RelKey;
use super::walker::{Walked, Walker};
use crate::error::ExtractError;
use crate::types::{ObjectRef, Privilege};
use sqlparser::ast::{Expr, SelectItem, SetExpr, Statement, TableFactor};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use std::collections::HashSet;

impl Walker<'_> {
    /// What reading a view runs as the querying user, given the columns read of it (`None`:
    /// all). A `security_invoker` view's definition is walked as the caller, bound by OID (no
    /// schema USAGE). An ordinary view's relations are checked as its owner, but the functions
    /// its rule calls need EXECUTE of the caller (bound by OID: no schema USAGE) and run as the
    /// caller, and so does every view under it. A function only in output columns that no
    /// query reads is dropped by the planner and needs nothing (unless VOLATILE).
    pub fn view_reaches(&mut self, key: &RelKey, read: Option<&[String]>) -> Walked {
        let Some(cat) = self.catalog else {
            return Ok(());
        };
        let mut todo = vec![((key.schema.clone(), key.name.clone()), read)];
        let mut seen: HashSet<(String, String)> = HashSet::new();
        while let Some((view, read)) = todo.pop() {
            if !seen.insert(view.clone()) {
                continue;
            }
            self.lookup()?;
            if let Some(body) = cat
                .relations
                .get(&view)
                .and_then(|r| r.invoker_body.as_deref())
            {
                let what = format!("definition of view `{}.{}`", view.0, view.1);
                if self.mysql() {
                    // MySQL: unqualified routine names resolve in the view's database.
                    self.enqueue_in(what, Some("sql"), body, &view.0);
                } else {
                    self.enqueue_as(what, Some("sql".into()), body, true);
                }
                continue;
            }
            let Some(deps) = cat.views.get(&view) else {
                continue;
            };
            // Views under this one: every column of theirs is taken as read.
            todo.extend(deps.views.iter().map(|v| (v.clone(), None)));
            let unread = match (read, deps.definition.as_deref()) {
                (Some(read), Some(def)) => self.unread_columns(def, read),
                _ => None,
            };
            for call in &deps.functions {
                if let Some(items) = &unread {
                    if !call.volatile && only_in(items, &call.name) {
                        continue;
                    }
                }
                let origin = format!("view `{}.{}`", view.0, view.1);
                self.within_origin(origin, |w| w.call_for_caller(call));
            }
        }
        Ok(())
    }

    /// A function the catalog calls by OID as the querying user: EXECUTE (no schema USAGE),
    /// and its body, when it runs with the caller's privileges, walked as the caller.
    pub fn call_for_caller(&mut self, call: &ViewCall) {
        let saved = std::mem::replace(&mut self.bound, true);
        self.grant(
            Privilege::Execute,
            ObjectRef::function(
                call.schema.clone(),
                call.name.clone(),
                call.signature.clone(),
            ),
            None,
        );
        self.bound = saved;
        let Some(cat) = self.catalog else { return };
        let body = cat
            .functions
            .get(&(call.schema.clone(), call.name.clone()))
            .and_then(|fs| fs.iter().find(|f| f.signature == call.signature))
            .and_then(|f| f.body.as_ref());
        if let Some((lang, body)) = body {
            self.enqueue(
                format!(
                    "body of function `{}.{}({})`",
                    call.schema, call.name, call.signature
                ),
                Some(lang.clone()),
                body,
            );
        }
    }

    /// What writing rows of `key` calls for the caller: `inserted` rows (every column is
    /// written; `supplied` are the columns given), or an UPDATE of `supplied`. Through an
    /// auto-updatable view, its base relation is written as well: the defaults of the base's
    /// columns not supplied run as the caller, bound by OID (a sequence needs USAGE, its
    /// schema nothing). Then the domain CHECKs and generated columns of what is written.
    pub fn written(&mut self, key: &RelKey, supplied: &[String], inserted: bool) -> Walked {
        let Some(cat) = self.catalog else {
            return Ok(());
        };
        let privilege = if inserted {
            Privilege::Insert
        } else {
            Privilege::Update
        };
        self.through_invoker_view(key, privilege)?;
        let mut target = (key.schema.clone(), key.name.clone());
        for level in 0..=self.limits.max_depth {
            self.lookup()?;
            if level > 0 && inserted {
                let defaults: Vec<(String, String)> = cat
                    .relations
                    .get(&target)
                    .map(|r| {
                        r.columns
                            .iter()
                            .filter(|c| !supplied.contains(&c.name))
                            .filter_map(|c| Some((c.name.clone(), c.default.clone()?)))
                            .collect()
                    })
                    .unwrap_or_default();
                for (name, expr) in defaults {
                    self.enqueue_as(
                        format!("default of `{}.{}.{name}`", target.0, target.1),
                        None,
                        &expr,
                        true,
                    );
                }
            }
            let event = if inserted { 4 } else { 16 };
            self.triggers_fired(&target, event);
            self.policies_due(&target, event);
            for col in cat.writes.get(&target).into_iter().flatten() {
                let runs = inserted
                    || match &col.generated_from {
                        Some(from) => from.iter().any(|c| supplied.contains(c)),
                        None => supplied.contains(&col.column),
                    };
                if runs {
                    let origin = match col.generated_from {
                        Some(_) => format!(
                            "generated column `{}.{}.{}`",
                            target.0, target.1, col.column
                        ),
                        None => format!("the domain of `{}.{}.{}`", target.0, target.1, col.column),
                    };
                    self.within_origin(origin, |w| {
                        for call in &col.functions {
                            w.call_for_caller(call);
                        }
                    });
                }
            }
            match cat.views.get(&target).and_then(|v| v.base.clone()) {
                Some(base) if cat.relations.get(&target).map(|r| r.kind) == Some(RelKind::View) => {
                    target = base
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// What deleting rows of `key` fires: its DELETE triggers.
    pub fn deleted(&mut self, key: &RelKey) -> Walked {
        self.through_invoker_view(key, Privilege::Delete)?;
        let target = (key.schema.clone(), key.name.clone());
        self.triggers_fired(&target, 8);
        self.policies_due(&target, 8);
        Ok(())
    }

    /// What truncating `key` fires: its TRUNCATE triggers (statement-level; no policy applies).
    pub fn truncated(&mut self, key: &RelKey) {
        self.triggers_fired(&(key.schema.clone(), key.name.clone()), 32);
    }

    /// Queues the write policies an event runs on `rel` (walked after the statement).
    fn policies_due(&mut self, rel: &(String, String), event: i32) {
        if self
            .catalog
            .is_some_and(|c| c.write_policies.contains_key(rel))
        {
            let key = RelKey {
                schema: rel.0.clone(),
                name: rel.1.clone(),
            };
            self.rows_written.push((key, event));
        }
    }

    /// MySQL: writing through an `SQL SECURITY INVOKER` view writes its base tables as the
    /// caller: `privilege` on each relation its definition reads from (through INVOKER views
    /// under it; a DEFINER view under it is written as its definer). An INSERT or UPDATE also
    /// reads the view's definition as the caller (SELECT on its base columns) and an INSERT
    /// runs the base table's defaults; a DELETE needs neither (verified on MariaDB 10.11).
    fn through_invoker_view(&mut self, key: &RelKey, privilege: Privilege) -> Walked {
        let Some(cat) = self.catalog else {
            return Ok(());
        };
        if !self.mysql() {
            return Ok(());
        }
        let mut todo = vec![(key.schema.clone(), key.name.clone())];
        let mut seen: HashSet<(String, String)> = HashSet::new();
        while let Some(view) = todo.pop() {
            if seen.len() > self.limits.max_depth || !seen.insert(view.clone()) {
                continue;
            }
            self.lookup()?;
            let Some(body) = cat
                .relations
                .get(&view)
                .and_then(|r| r.invoker_body.as_deref())
            else {
                continue;
            };
            if privilege != Privilege::Delete {
                let what = format!("definition of view `{}.{}`", view.0, view.1);
                self.enqueue_in(what, Some("sql"), body, &view.0);
            }
            for (base, kind) in self.definition_relations(body)? {
                self.grant(privilege, table_privilege_object(&base, kind), None);
                match kind {
                    Some(RelKind::View) => todo.push((base.schema, base.name)),
                    _ if privilege == Privilege::Insert => {
                        let defaults: Vec<(String, String)> = cat
                            .relations
                            .get(&(base.schema.clone(), base.name.clone()))
                            .map(|r| {
                                r.columns
                                    .iter()
                                    .filter_map(|c| Some((c.name.clone(), c.default.clone()?)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        for (name, expr) in defaults {
                            let what = format!("default of `{}.{}.{name}`", base.schema, base.name);
                            self.enqueue_in(what, None, &expr, &base.schema);
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The relations a view's definition reads FROM (its top-level FROM list and joins).
    fn definition_relations(&mut self, body: &str) -> Walked<Vec<(RelKey, Option<RelKind>)>> {
        let limits = self.limits;
        let syntax = self.rules.syntax;
        let stmts =
            match parse_statements(&MySqlDialect {}, body, "view definition", &limits, syntax) {
                Ok(s) => s,
                Err(e @ (ExtractError::TooLarge { .. } | ExtractError::TooDeep { .. })) => {
                    return Err(e)
                }
                Err(_) => {
                    return Err(ExtractError::Unsupported(
                        "writing through a view whose definition p0 cannot read".into(),
                    ))
                }
            };
        let mut names = Vec::new();
        if let [Statement::Query(q)] = stmts.as_slice() {
            if let SetExpr::Select(sel) = q.body.as_ref() {
                for twj in &sel.from {
                    let factors =
                        std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation));
                    for f in factors {
                        if let TableFactor::Table { name, .. } = f {
                            names.push(self.name_parts(name));
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for parts in names {
            if let Some((key, kind, _)) = self.resolve_rel(&parts)? {
                out.push((key, kind));
            }
        }
        Ok(out)
    }

    /// The row triggers an event fires on `rel` (bits of `tgtype`): their WHEN clauses and the
    /// bodies of functions that are not SECURITY DEFINER run as the caller; EXECUTE on the
    /// trigger function itself is not checked. A body in another language cannot be read: it
    /// is reported, and nothing is assumed for it beyond what the statement needs.
    fn triggers_fired(&mut self, rel: &(String, String), event: i32) {
        let Some(cat) = self.catalog else { return };
        for t in cat.triggers.get(rel).into_iter().flatten() {
            if t.events & event == 0 {
                continue;
            }
            let origin = format!("WHEN of trigger `{}` on `{}.{}`", t.name, rel.0, rel.1);
            self.within_origin(origin, |w| {
                for call in &t.when_calls {
                    w.call_for_caller(call);
                }
            });
            match &t.body {
                Some(body) => self.enqueue(
                    format!("body of trigger function `{}`", t.function),
                    Some(t.language.clone()),
                    body,
                ),
                None if !t.security_definer => {
                    self.unresolved.insert(format!(
                        "trigger `{}` on `{}.{}` runs `{}` (LANGUAGE {}) as the caller: its body \
                         cannot be read, assumed to need nothing more",
                        t.name, rel.0, rel.1, t.function, t.language
                    ));
                }
                None => {}
            }
            if t.language == "plpgsql" && !t.security_definer {
                self.unresolved.insert(format!(
                    "trigger `{}` on `{}.{}`: the PL/pgSQL body of `{}` is read statically \
                     (dynamic SQL in EXECUTE is not followed)",
                    t.name, rel.0, rel.1, t.function
                ));
            }
        }
    }

    /// The definition's text, and the texts of the output columns not in `read`, when the
    /// planner may drop those: a plain SELECT without DISTINCT. `None` when it may not (or
    /// the definition does not parse): every function is then taken as called.
    fn unread_columns(&self, definition: &str, read: &[String]) -> Option<(String, Vec<String>)> {
        let limits = self.limits;
        let stmts = parse_statements(
            &PostgreSqlDialect {},
            definition,
            "view definition",
            &limits,
            Syntax::Postgres,
        )
        .ok()?;
        let [Statement::Query(q)] = stmts.as_slice() else {
            return None;
        };
        let SetExpr::Select(sel) = q.body.as_ref() else {
            return None;
        };
        if sel.distinct.is_some() {
            return None;
        }
        let mut unread = Vec::new();
        for item in &sel.projection {
            let name = match item {
                SelectItem::ExprWithAlias { alias, .. } => self.ident(alias),
                SelectItem::UnnamedExpr(Expr::Identifier(id)) => self.ident(id),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => {
                    ids.last().map(|id| self.ident(id))?
                }
                _ => return None,
            };
            if !read.contains(&name) {
                unread.push(item.to_string());
            }
        }
        Some((q.to_string(), unread))
    }
}

/// Whether every mention of `name` in a view's definition is in one of its unread columns.
fn only_in((whole, unread): &(String, Vec<String>), name: &str) -> bool {
    let total = mentions(whole, name);
    total > 0 && total == unread.iter().map(|t| mentions(t, name)).sum::<usize>()
}

/// How often `name` occurs in `text` as a word (case-insensitive; more is only safer).
fn mentions(text: &str, name: &str) -> usize {
    let text = text.to_lowercase();
    let name = name.to_lowercase();
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    text.match_indices(&name)
        .filter(|(i, _)| {
            let before = *i == 0 || !word(bytes[i - 1]);
            let end = i + name.len();
            let after = end >= bytes.len() || !word(bytes[end]);
            before && after
        })
        .count()
}
