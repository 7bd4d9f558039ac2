//! Function calls: refused, built in, a sequence function, or a user function whose overloads
//! need EXECUTE and whose bodies, run with the caller's privileges, are queued for the walk;
//! and the calls a view makes for whoever reads it.

use super::bounds::{parse_statements, Syntax};
use super::catalog::{FuncInfo, RelKind, ViewCall};
use super::names::{split_qualified, string_literal};
use super::scope::RelKey;
use super::walker::{Walked, Walker};
use crate::error::ExtractError;
use crate::types::{ObjectKind, ObjectRef, Privilege};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, Ident, SelectItem, SetExpr, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use std::collections::HashSet;

/// The arguments of a call, as overload resolution sees them.
#[derive(Debug, Default)]
pub(crate) struct CallArgs {
    /// Arguments given by position.
    pub positional: usize,
    /// Names of the arguments given by name (`a => 1`, `a := 1`), in order.
    pub named: Vec<String>,
}

impl Walker<'_> {
    /// A function call, by its name's parts, its arguments as overload resolution sees them,
    /// and its first argument (a sequence function's sequence).
    pub fn function(
        &mut self,
        parts: &[String],
        call: &CallArgs,
        first: Option<&FunctionArg>,
    ) -> Walked {
        let Some(name) = parts.last() else {
            return Ok(());
        };
        let lower = name.to_lowercase();
        if let Some(why) = (self.rules.refused_function)(&lower) {
            return Err(ExtractError::Refused(format!("`{name}` {why}")));
        }
        let schema = if parts.len() >= 2 {
            Some(parts[parts.len() - 2].clone())
        } else {
            None
        };
        if schema.as_deref().is_some_and(|s| s == "pg_catalog") {
            return Ok(());
        }
        if self.rules.sequences_are_tables {
            if let Some(privileges) = mariadb_sequence_function(&lower).filter(|_| schema.is_none())
            {
                return self.mariadb_sequence(&lower, privileges, first);
            }
        }
        if matches!(lower.as_str(), "nextval" | "currval" | "setval") && schema.is_none() {
            return self.sequence_function(&lower, first);
        }
        self.user_function(schema, name, call)
    }

    /// `nextval('s')`, `currval('s')`: USAGE on the sequence; `setval('s', ...)`: UPDATE.
    fn sequence_function(&mut self, func: &str, first: Option<&FunctionArg>) -> Walked {
        let literal = first.and_then(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => string_literal(e),
            _ => None,
        });
        let Some(text) = literal else {
            self.unresolved
                .insert(format!("sequence passed to {func}()"));
            return Ok(());
        };
        let parts = split_qualified(&text, self.rules.fold_lower);
        let Some((key, kind, _)) = self.resolve_rel(&parts)? else {
            return Ok(());
        };
        if self.catalog.is_some() && kind != Some(RelKind::Sequence) {
            return Err(ExtractError::Unsupported(format!(
                "`{text}` is not a sequence"
            )));
        }
        if self.explain_only {
            // Planned, not run: the sequence is not touched. Only the name's lookup (a
            // literal cast to regclass when the query is analysed) needs its schema.
            if !self.in_stored_expression && !crate::guard::is_system_schema(&key.schema) {
                self.grant(Privilege::Usage, ObjectRef::schema(key.schema), None);
            }
            return Ok(());
        }
        let privilege = if func == "setval" {
            Privilege::Update
        } else {
            Privilege::Usage
        };
        self.grant(privilege, ObjectRef::sequence(key.schema, key.name), None);
        Ok(())
    }

    /// MariaDB's `NEXTVAL(s)`, `LASTVAL(s)`, `SETVAL(s, n)` (and `NEXT` / `PREVIOUS VALUE
    /// FOR s`, read as these): `privileges` on the sequence, a table.
    fn mariadb_sequence(
        &mut self,
        func: &str,
        privileges: &[Privilege],
        first: Option<&FunctionArg>,
    ) -> Walked {
        let parts = match first {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => {
                sequence_name(e, |i| self.ident(i))
            }
            _ => None,
        };
        let Some(parts) = parts else {
            return Err(ExtractError::Unsupported(format!(
                "`{func}()` of something other than a sequence's name"
            )));
        };
        let Some((key, _, _)) = self.resolve_rel(&parts)? else {
            return Ok(());
        };
        for p in privileges {
            self.grant(
                *p,
                ObjectRef::table(key.schema.clone(), key.name.clone()),
                None,
            );
        }
        Ok(())
    }

    /// A user function: EXECUTE on it, and what its body needs when it runs as the caller.
    fn user_function(&mut self, schema: Option<String>, name: &str, call: &CallArgs) -> Walked {
        let Some(cat) = self.catalog else {
            // No procedure is built in: what CALL names is always a user's.
            if schema.is_none()
                && !self.calling_procedure
                && (self.rules.builtin_function)(&name.to_lowercase())
            {
                return Ok(());
            }
            let schema = schema
                .or_else(|| self.rules.default_schema.clone())
                .unwrap_or_else(|| "?".into());
            self.unresolved
                .insert(format!("signature of function `{schema}.{name}`"));
            let object = ObjectRef {
                kind: self.routine_kind(),
                schema: Some(schema),
                name: name.into(),
                signature: None,
            };
            self.grant(Privilege::Execute, object, None);
            return Ok(());
        };
        if schema.is_none()
            && (cat.builtins.contains(name) || (self.rules.builtin_function)(&name.to_lowercase()))
            && !self.user_function_before_pg_catalog(cat, name)
        {
            return Ok(());
        }
        self.lookup()?;
        let Some((schema, candidates)) = self.resolve_function(cat, schema.as_deref(), name) else {
            return Err(ExtractError::Unsupported(format!(
                "function `{name}` does not exist"
            )));
        };
        let fitting: Vec<&FuncInfo> = candidates.iter().filter(|f| fits(f, call)).collect();
        let chosen = if !fitting.is_empty() {
            fitting
        } else if call.named.is_empty() {
            candidates.iter().collect()
        } else {
            // PostgreSQL would refuse the call; so does p0, rather than grant every overload.
            return Err(ExtractError::Unsupported(format!(
                "no function `{schema}.{name}` takes the arguments `{}`",
                call.named.join("`, `")
            )));
        };
        for f in chosen {
            let object = ObjectRef {
                kind: self.routine_kind(),
                ..ObjectRef::function(schema.clone(), name, f.signature.clone())
            };
            self.grant(Privilege::Execute, object, None);
            if let Some((lang, body)) = &f.body {
                self.enqueue(
                    format!("body of function `{schema}.{name}({})`", f.signature),
                    Some(lang.clone()),
                    body,
                );
            }
        }
        Ok(())
    }
}

/// What MariaDB's sequence functions need on the sequence (probed on MariaDB 10.11).
pub(crate) fn mariadb_sequence_function(name: &str) -> Option<&'static [Privilege]> {
    match name {
        "nextval" => Some(&[Privilege::Select, Privilege::Insert]),
        "lastval" => Some(&[Privilege::Select]),
        "setval" => Some(&[Privilege::Insert]),
        _ => None,
    }
}

/// A sequence named by an identifier (`s`, `db.s`): its parts.
pub(crate) fn sequence_name(e: &Expr, ident: impl Fn(&Ident) -> String) -> Option<Vec<String>> {
    match e {
        Expr::Identifier(i) => Some(vec![ident(i)]),
        Expr::CompoundIdentifier(ids) => Some(ids.iter().map(ident).collect()),
        Expr::Nested(e) => sequence_name(e, ident),
        _ => None,
    }
}

impl Walker<'_> {
    /// What a call names: a procedure under `CALL`, a function elsewhere.
    fn routine_kind(&self) -> ObjectKind {
        if self.calling_procedure {
            ObjectKind::Procedure
        } else {
            ObjectKind::Function
        }
    }
}

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
                self.enqueue_as(
                    format!("definition of view `{}.{}`", view.0, view.1),
                    Some("sql".into()),
                    body,
                    true,
                );
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
                self.call_for_caller(call);
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
            self.triggers_fired(&target, if inserted { 4 } else { 16 });
            for col in cat.writes.get(&target).into_iter().flatten() {
                let runs = inserted
                    || match &col.generated_from {
                        Some(from) => from.iter().any(|c| supplied.contains(c)),
                        None => supplied.contains(&col.column),
                    };
                if runs {
                    for call in &col.functions {
                        self.call_for_caller(call);
                    }
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
    pub fn deleted(&mut self, key: &RelKey) {
        self.triggers_fired(&(key.schema.clone(), key.name.clone()), 8);
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
            for call in &t.when_calls {
                self.call_for_caller(call);
            }
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

/// Whether a call fits an overload: by arity, and with named arguments (`f(a => 1)`) by
/// their names — every name is an input argument after the positional ones, none is given
/// twice, and every argument not given has a default.
fn fits(f: &FuncInfo, call: &CallArgs) -> bool {
    let given = call.positional + call.named.len();
    if call.named.is_empty() {
        return (f.nargs - f.ndefaults.min(f.nargs) <= given && given <= f.nargs)
            || (f.variadic && given + 1 >= f.nargs);
    }
    if given > f.nargs {
        return false;
    }
    let mut supplied = vec![false; f.nargs];
    for s in supplied.iter_mut().take(call.positional) {
        *s = true;
    }
    for n in &call.named {
        match f.arg_names.iter().position(|a| a == n) {
            Some(i) if i < f.nargs && !supplied[i] => supplied[i] = true,
            _ => return false,
        }
    }
    let first_default = f.nargs - f.ndefaults.min(f.nargs);
    supplied
        .iter()
        .enumerate()
        .all(|(i, given)| *given || i >= first_default)
}
