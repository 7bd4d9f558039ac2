//! Statements: what each kind needs, and which kinds are refused.

use super::bounds::{parse_expression, parse_statements, Syntax};
use super::catalog::FuncInfo;
use super::walk::{is_temp_schema, string_literal, CallArgs, Walker};
use crate::error::ExtractError;
use crate::types::{ObjectRef, Privilege};
use sqlparser::ast::{
    ConflictTarget, CopySource, CopyTarget, Delete, Expr, FromTable, Insert, MergeAction,
    MergeInsertKind, MergeUpdateKind, ObjectName, OnConflictAction, OnInsert, Set, SetExpr,
    Statement, TableFactor, TableObject, TableWithJoins, TruncateIdentityOption,
    UpdateTableFromKind, Value,
};
use sqlparser::dialect::PostgreSqlDialect;

/// Walks one statement.
pub(crate) fn statement(w: &mut Walker, s: &Statement) {
    match s {
        Statement::Query(q) => w.query(q),
        Statement::Insert(ins) => insert(w, ins),
        Statement::Update(sqlparser::ast::Update {
            table,
            assignments,
            from,
            selection,
            returning,
            order_by,
            limit,
            ..
        }) => {
            w.scoped(|w| {
                let from = match from {
                    Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) => {
                        f.as_slice()
                    }
                    None => &[],
                };
                update_targets(w, table, assignments);
                for twj in from {
                    w.table_with_joins(twj);
                }
                for a in assignments {
                    w.expr(&a.value);
                }
                for e in [selection, limit].into_iter().flatten() {
                    w.expr(e);
                }
                for o in order_by {
                    w.expr(&o.expr);
                }
                if let Some(r) = returning {
                    w.select_items(r);
                }
            });
        }
        Statement::Delete(d) => delete(w, d),
        Statement::Merge(sqlparser::ast::Merge {
            table,
            source,
            on,
            clauses,
            ..
        }) => w.scoped(|w| {
            w.table_factor(source);
            let TableFactor::Table { name, alias, .. } = table else {
                return w.fail(ExtractError::Unsupported(
                    "MERGE into something other than a table".into(),
                ));
            };
            let Some((key, kind, _)) = w.bind_target(name, alias.as_ref().map(|a| &a.name)) else {
                return;
            };
            let object = ObjectRef::table(key.schema.clone(), key.name.clone());
            w.expr(on);
            for c in clauses {
                if let Some(p) = &c.predicate {
                    w.expr(p);
                }
                match &c.action {
                    MergeAction::Update(up) => {
                        let MergeUpdateKind::Set(assignments) = &up.kind else {
                            return w.fail(ExtractError::Unsupported(
                                "MERGE ... UPDATE without SET".into(),
                            ));
                        };
                        let cols = w.assignment_columns(assignments);
                        w.grant(Privilege::Update, object.clone(), Some(cols));
                        for a in assignments {
                            w.expr(&a.value);
                        }
                        for p in [&up.update_predicate, &up.delete_predicate]
                            .into_iter()
                            .flatten()
                        {
                            w.expr(p);
                        }
                        if up.delete_predicate.is_some() {
                            w.grant(Privilege::Delete, object.clone(), None);
                        }
                    }
                    MergeAction::Delete { .. } => w.grant(Privilege::Delete, object.clone(), None),
                    MergeAction::DoNothing { .. } => {}
                    MergeAction::Insert(ins) => {
                        let cols = column_names(w, &ins.columns);
                        let width = match &ins.kind {
                            MergeInsertKind::Values(v) => {
                                w.expr_visit(v);
                                v.rows.first().map(|r| r.content.len())
                            }
                            MergeInsertKind::Row => None,
                            MergeInsertKind::Wildcard => {
                                return w.fail(ExtractError::Unsupported(
                                    "MERGE ... INSERT *: name the columns".into(),
                                ))
                            }
                        };
                        if let Some(p) = &ins.insert_predicate {
                            w.expr(p);
                        }
                        insert_columns(w, &key, kind, &cols, width, &[]);
                    }
                }
            }
        }),
        Statement::Truncate(sqlparser::ast::Truncate {
            table_names,
            identity,
            cascade,
            ..
        }) => {
            if !w.rules.truncate_grantable {
                return w.fail(ExtractError::Refused(
                    "TRUNCATE needs the DROP privilege here; use DELETE".into(),
                ));
            }
            if matches!(identity, Some(TruncateIdentityOption::Restart)) {
                return w.fail(ExtractError::Refused(
                    "TRUNCATE ... RESTART IDENTITY needs ownership of the sequences".into(),
                ));
            }
            if matches!(cascade, Some(sqlparser::ast::CascadeOption::Cascade)) {
                return w.fail(ExtractError::Unsupported(
                    "TRUNCATE ... CASCADE: name every table instead".into(),
                ));
            }
            for t in table_names {
                let parts = w.name_parts(&t.name);
                if let Some((key, _, _)) = w.resolve_rel(&parts) {
                    w.grant(
                        Privilege::Truncate,
                        ObjectRef::table(key.schema, key.name),
                        None,
                    );
                }
            }
        }
        Statement::Copy {
            source, to, target, ..
        } => copy(w, source, *to, target),
        Statement::Explain {
            statement: inner, ..
        } => statement(w, inner),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::Discard { .. } => {}
        Statement::Set(set) => set_statement(w, set),
        Statement::Call(f) => w.call_statement(f),
        Statement::CreateTable(ct) if ct.temporary => {
            let db = w.catalog.map(|c| c.database.clone());
            match db {
                Some(db) => w.grant(Privilege::Temporary, ObjectRef::database(db), None),
                None => {
                    w.unresolved.insert("database for TEMPORARY".into());
                }
            }
            if let Some(q) = &ct.query {
                w.query(q);
            }
        }
        other => w.fail(refusal(other)),
    }
}

fn refusal(s: &Statement) -> ExtractError {
    let text = s.to_string();
    refusal_for_text(&text).unwrap_or_else(|| {
        ExtractError::Unsupported(format!("statement `{}`", first_words(&text, 3)))
    })
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Classifies statements p0 refuses by their leading keywords. Also used when the parser does
/// not know a statement, so that a refusal reads as one rather than as a syntax error.
pub(crate) fn refusal_for_text(text: &str) -> Option<ExtractError> {
    let head = first_words(text, 3);
    let upper: Vec<String> = head
        .split_whitespace()
        .map(|x| x.to_ascii_uppercase())
        .collect();
    let first = upper.first().map(String::as_str).unwrap_or("");
    let second = upper.get(1).map(String::as_str).unwrap_or("");
    let joined = upper.join(" ");
    let dcl = matches!(first, "GRANT" | "REVOKE")
        || (matches!(first, "CREATE" | "ALTER" | "DROP")
            && matches!(second, "ROLE" | "USER" | "GROUP"))
        || joined.starts_with("SET ROLE")
        || joined.starts_with("RESET ROLE")
        || joined.starts_with("SET SESSION AUTHORIZATION")
        || joined.starts_with("SET LOCAL ROLE")
        || joined.starts_with("SET PASSWORD");
    if dcl {
        return Some(ExtractError::Refused(format!(
            "`{head}` changes privileges or identity; p0 never grants that"
        )));
    }
    if joined.starts_with("ALTER SYSTEM") {
        return Some(ExtractError::Refused(
            "`ALTER SYSTEM` needs superuser".into(),
        ));
    }
    if matches!(
        first,
        "CREATE"
            | "ALTER"
            | "DROP"
            | "COMMENT"
            | "REINDEX"
            | "CLUSTER"
            | "VACUUM"
            | "ANALYZE"
            | "REFRESH"
            | "SECURITY"
            | "RENAME"
            | "REASSIGN"
    ) {
        return Some(ExtractError::Refused(format!(
            "`{head}` needs ownership of the object (or CREATE); p0 does not approximate it with grants"
        )));
    }
    let upper_all = text.to_ascii_uppercase();
    if upper_all.contains("INTO OUTFILE") || upper_all.contains("INTO DUMPFILE") {
        return Some(ExtractError::Refused(
            "SELECT ... INTO OUTFILE/DUMPFILE writes server files; it needs the FILE privilege"
                .into(),
        ));
    }
    if matches!(
        first,
        "LOAD" | "INSTALL" | "UNINSTALL" | "HANDLER" | "FLUSH" | "KILL" | "SHUTDOWN" | "PURGE"
    ) {
        return Some(ExtractError::Refused(format!(
            "`{head}` reads server files or loads code; it needs superuser or FILE"
        )));
    }
    None
}

fn set_statement(w: &mut Walker, set: &Set) {
    match set {
        Set::SetRole { .. } => w.fail(ExtractError::Refused(
            "`SET ROLE` changes identity; p0 never grants that".into(),
        )),
        Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = variable.to_string().to_ascii_lowercase();
            if matches!(
                name.as_str(),
                "role" | "session_authorization" | "session authorization"
            ) || name.starts_with("session authorization")
            {
                return w.fail(ExtractError::Refused(format!(
                    "`SET {name}` changes identity; p0 never grants that"
                )));
            }
            if name == "search_path" {
                let path: Vec<String> = values
                    .iter()
                    .filter_map(|v| match v {
                        Expr::Identifier(id) => Some(w.ident(id)),
                        other => string_literal(other),
                    })
                    .flat_map(|s| {
                        s.split(',')
                            .map(|p| p.trim().trim_matches('"').to_string())
                            .collect::<Vec<_>>()
                    })
                    .filter(|s| !s.is_empty() && s != "$user")
                    .collect();
                w.search_path = Some(path);
                return;
            }
            for v in values {
                w.expr_visit(v);
            }
        }
        other => {
            let text = other.to_string().to_ascii_uppercase();
            if text.contains("SESSION AUTHORIZATION")
                || text.starts_with("SET ROLE")
                || text.contains("PASSWORD")
            {
                w.fail(ExtractError::Refused(
                    "changing identity or passwords is never granted".into(),
                ));
            }
        }
    }
}

/// The tables of an UPDATE's target list; more than one only in MySQL's multi-table form.
fn update_targets(
    w: &mut Walker,
    table: &TableWithJoins,
    assignments: &[sqlparser::ast::Assignment],
) {
    if table.joins.is_empty() {
        if let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = &table.relation
        {
            let Some((key, _, _)) = w.bind_target(name, alias.as_ref().map(|a| &a.name)) else {
                return;
            };
            let cols = w.assignment_columns(assignments);
            w.grant(
                Privilege::Update,
                ObjectRef::table(key.schema, key.name),
                Some(cols),
            );
            return;
        }
    }
    // Multi-table: bind every table as read, then each assigned table becomes a target.
    w.table_with_joins(table);
    let mut per_alias: Vec<(String, Vec<String>)> = Vec::new();
    let first_alias = match &table.relation {
        TableFactor::Table { name, alias, .. } => Some(
            alias
                .as_ref()
                .map(|a| w.ident(&a.name))
                .unwrap_or_else(|| w.name_parts(name).last().cloned().unwrap_or_default()),
        ),
        _ => None,
    };
    for a in assignments {
        let names: Vec<&ObjectName> = match &a.target {
            sqlparser::ast::AssignmentTarget::ColumnName(n) => vec![n],
            sqlparser::ast::AssignmentTarget::Tuple(ns) => ns.iter().collect(),
        };
        for n in names {
            let parts = w.name_parts(n);
            let (alias, col) = match parts.as_slice() {
                [.., t, c] => (Some(t.clone()), c.clone()),
                [c] => (first_alias.clone(), c.clone()),
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
        if let Some(key) = w.mark_target(&alias) {
            w.grant(
                Privilege::Update,
                ObjectRef::table(key.schema, key.name),
                Some(cols),
            );
        }
    }
}

fn delete(w: &mut Walker, d: &Delete) {
    w.scoped(|w| {
        let from = match &d.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f.as_slice(),
        };
        if d.tables.is_empty() {
            // PostgreSQL: DELETE FROM target [USING ...].
            let Some(first) = from.first() else { return };
            match &first.relation {
                TableFactor::Table {
                    name,
                    alias,
                    args: None,
                    ..
                } if first.joins.is_empty() && from.len() == 1 => {
                    if let Some((key, _, _)) = w.bind_target(name, alias.as_ref().map(|a| &a.name))
                    {
                        w.grant(
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
                    return delete_multi(w, &names, d.using.as_deref().unwrap_or(from), d);
                }
            }
            for twj in d.using.iter().flatten() {
                w.table_with_joins(twj);
            }
        } else {
            return delete_multi(w, &d.tables, from, d);
        }
        delete_tail(w, d);
    });
}

fn delete_multi(w: &mut Walker, targets: &[ObjectName], from: &[TableWithJoins], d: &Delete) {
    for twj in from {
        w.table_with_joins(twj);
    }
    for t in targets {
        let parts = w.name_parts(t);
        let Some(alias) = parts.last() else { continue };
        if let Some(key) = w.mark_target(alias) {
            w.grant(
                Privilege::Delete,
                ObjectRef::table(key.schema, key.name),
                None,
            );
        }
    }
    delete_tail(w, d);
}

fn delete_tail(w: &mut Walker, d: &Delete) {
    for e in [&d.selection, &d.limit].into_iter().flatten() {
        w.expr(e);
    }
    if let Some(r) = &d.returning {
        w.select_items(r);
    }
    w.expr_visit(&d.order_by);
}

fn insert(w: &mut Walker, ins: &Insert) {
    let TableObject::TableName(name) = &ins.table else {
        return w.fail(ExtractError::Unsupported(
            "INSERT INTO a table function".into(),
        ));
    };
    w.scoped(|w| {
        if let Some(src) = &ins.source {
            w.query(src);
        }
        let Some((key, kind, _)) = w.bind_target(name, ins.table_alias.as_ref().map(|a| &a.alias))
        else {
            return;
        };
        let mut cols = column_names(w, &ins.columns);
        let mut defaults_at: Vec<usize> = Vec::new();
        let width = match &ins.source {
            Some(src) => match src.body.as_ref() {
                SetExpr::Values(v) => {
                    for row in &v.rows {
                        for (i, e) in row.content.iter().enumerate() {
                            if is_default(e) && !defaults_at.contains(&i) {
                                defaults_at.push(i);
                            }
                        }
                    }
                    v.rows.first().map(|r| r.content.len())
                }
                SetExpr::Select(s)
                    if !s.projection.iter().any(|p| {
                        matches!(
                            p,
                            sqlparser::ast::SelectItem::Wildcard(_)
                                | sqlparser::ast::SelectItem::QualifiedWildcard(..)
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
            cols = w.assignment_columns(&ins.assignments);
            for a in &ins.assignments {
                w.expr(&a.value);
            }
        }
        let width = if ins.assignments.is_empty() {
            width
        } else {
            Some(cols.len())
        };
        insert_columns(w, &key, kind, &cols, width, &defaults_at);
        if ins.replace_into {
            w.grant(
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
                        let parts: Vec<String> = cs.iter().map(|c| w.ident(c)).collect();
                        w.grant(Privilege::Select, object.clone(), Some(parts));
                    }
                    Some(ConflictTarget::OnConstraint(_)) => {
                        w.grant(Privilege::Select, object.clone(), None)
                    }
                    None => {}
                }
                if let OnConflictAction::DoUpdate(du) = &oc.action {
                    // Reading EXCLUDED.col reads the target's column: SELECT on it.
                    w.bind_alias_of_target("excluded", &key);
                    let ucols = w.assignment_columns(&du.assignments);
                    w.grant(Privilege::Update, object.clone(), Some(ucols));
                    for a in &du.assignments {
                        w.expr(&a.value);
                    }
                    if let Some(sel) = &du.selection {
                        w.expr(sel);
                    }
                }
            }
            Some(OnInsert::DuplicateKeyUpdate(assignments)) => {
                let ucols = w.assignment_columns(assignments);
                w.grant(Privilege::Update, object.clone(), Some(ucols));
                // MariaDB checks SELECT on the updated columns and the key it matched on.
                w.grant(Privilege::Select, object.clone(), None);
                for a in assignments {
                    w.expr(&a.value);
                }
            }
            _ => {}
        }
        if let Some(r) = &ins.returning {
            w.select_items(r);
        }
    });
}

fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// INSERT on the supplied columns, and what the defaults of the others need.
fn insert_columns(
    w: &mut Walker,
    key: &super::walk::RelKey,
    _kind: Option<super::catalog::RelKind>,
    cols: &[String],
    width: Option<usize>,
    defaults_at: &[usize],
) {
    let object = ObjectRef::table(key.schema.clone(), key.name.clone());
    if w.catalog.is_some() && !w.lookup() {
        return;
    }
    let table_cols: Option<Vec<(String, Option<String>)>> = w.catalog.and_then(|c| {
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
        w.grant(
            Privilege::Insert,
            object,
            (!cols.is_empty()).then(|| cols.to_vec()),
        );
        if !w.rules.defaults_need_privileges {
            return;
        }
        w.unresolved.insert(format!(
            "sequences and functions behind column defaults of `{}.{}`",
            key.schema, key.name
        ));
        return;
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
    // A column given DEFAULT explicitly is still an inserted column; an INSERT of no column at
    // all (DEFAULT VALUES) still needs INSERT on the table.
    w.grant(
        Privilege::Insert,
        object,
        (!supplied.is_empty()).then(|| supplied.clone()),
    );
    for (name, default) in &table_cols {
        let uses_default = !supplied.contains(name) || explicit_defaults.contains(&name);
        if let (true, Some(expr)) = (uses_default, default) {
            w.enqueue(
                format!("default of `{}.{}.{name}`", key.schema, key.name),
                None,
                expr,
            );
        }
    }
}

fn copy(w: &mut Walker, source: &CopySource, to: bool, target: &CopyTarget) {
    match target {
        CopyTarget::Stdin | CopyTarget::Stdout => {}
        CopyTarget::File { .. } => {
            return w.fail(ExtractError::Refused(
                "COPY to or from a server file needs superuser or pg_read/write_server_files"
                    .into(),
            ))
        }
        CopyTarget::Program { .. } => {
            return w.fail(ExtractError::Refused(
                "COPY ... PROGRAM runs a server command; it needs superuser".into(),
            ))
        }
    }
    match source {
        CopySource::Query(q) => w.query(q),
        CopySource::Table {
            table_name,
            columns,
        } => {
            let parts = w.name_parts(table_name);
            let Some((key, kind, _)) = w.resolve_rel(&parts) else {
                return;
            };
            let cols: Vec<String> = columns.iter().map(|c| w.ident(c)).collect();
            if to {
                w.grant(
                    Privilege::Select,
                    ObjectRef::table(key.schema, key.name),
                    (!cols.is_empty()).then_some(cols),
                );
            } else {
                insert_columns(w, &key, kind, &cols, None, &[]);
            }
        }
    }
}

/// A user function: EXECUTE on it, and what its body needs when it runs as the caller.
pub(crate) fn user_function(w: &mut Walker, schema: Option<String>, name: &str, call: &CallArgs) {
    let Some(cat) = w.catalog else {
        if schema.is_none() && (w.rules.builtin_function)(&name.to_lowercase()) {
            return;
        }
        let schema = schema
            .or_else(|| w.rules.default_schema.clone())
            .unwrap_or_else(|| "?".into());
        w.unresolved
            .insert(format!("signature of function `{schema}.{name}`"));
        let object = ObjectRef {
            kind: crate::types::ObjectKind::Function,
            schema: Some(schema),
            name: name.into(),
            signature: None,
        };
        w.grant(Privilege::Execute, object, None);
        return;
    };
    if schema.is_none()
        && (cat.builtins.contains(name) || (w.rules.builtin_function)(&name.to_lowercase()))
    {
        return;
    }
    if !w.lookup() {
        return;
    }
    let found = match &schema {
        Some(s) if is_temp_schema(s) => None,
        Some(s) => cat
            .functions
            .get(&(s.clone(), name.to_string()))
            .map(|f| (s.clone(), f)),
        None => w.effective_path(cat).into_iter().find_map(|s| {
            cat.functions
                .get(&(s.clone(), name.to_string()))
                .map(|f| (s, f))
        }),
    };
    let Some((schema, candidates)) = found else {
        return w.fail(ExtractError::Unsupported(format!(
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
        return w.fail(ExtractError::Unsupported(format!(
            "no function `{schema}.{name}` takes the arguments `{}`",
            call.named.join("`, `")
        )));
    };
    for f in chosen {
        w.grant(
            Privilege::Execute,
            ObjectRef::function(schema.clone(), name, f.signature.clone()),
            None,
        );
        if let Some((lang, body)) = &f.body {
            w.enqueue(
                format!("body of function `{schema}.{name}({})`", f.signature),
                Some(lang.clone()),
                body,
            );
        }
    }
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

/// Walks a body or default reached from the catalog, as the caller: no scope of the
/// statement that reached it is visible, and the search_path is the one it was reached with.
pub(crate) fn expand_pending(w: &mut Walker, p: super::walk::Pending) {
    if !w.in_time() {
        return;
    }
    w.expanded += 1;
    let saved = std::mem::replace(&mut w.search_path, p.search_path);
    match p.lang.as_deref() {
        Some(lang) => expand_body(w, &p.what, lang, &p.text),
        None => expand_expression(w, &p.what, &p.text),
    }
    w.search_path = saved;
}

/// Walks the statements of a function or view body that runs with the caller's privileges.
fn expand_body(w: &mut Walker, what: &str, lang: &str, body: &str) {
    if body.len() > w.limits.max_bytes {
        return w.fail(ExtractError::TooLarge {
            what: what.into(),
            max: w.limits.max_bytes,
        });
    }
    let texts = if lang == "plpgsql" {
        plpgsql_statements(body)
    } else {
        vec![body.to_string()]
    };
    for text in texts {
        let limits = w.limits;
        match parse_statements(
            &PostgreSqlDialect {},
            &text,
            what,
            &limits,
            Syntax::Postgres,
        ) {
            Ok(stmts) => w.isolated(|w| {
                for s in &stmts {
                    statement(w, s);
                }
            }),
            Err(e @ (ExtractError::TooLarge { .. } | ExtractError::TooDeep { .. })) => {
                return w.fail(e)
            }
            Err(_) => {
                w.unresolved.insert(format!(
                    "a statement in the {what}: `{}`",
                    text.chars().take(60).collect::<String>()
                ));
            }
        }
    }
}

/// Parses a default or other stored expression and walks it (functions, sequences).
fn expand_expression(w: &mut Walker, what: &str, expr: &str) {
    let limits = w.limits;
    match parse_expression(&PostgreSqlDialect {}, expr, what, &limits) {
        Ok(e) => w.isolated(|w| w.expr(&e)),
        Err(e @ (ExtractError::TooLarge { .. } | ExtractError::TooDeep { .. })) => w.fail(e),
        Err(_) => {
            w.unresolved.insert(format!("{what} `{expr}`"));
        }
    }
}

/// The SQL statements inside a PL/pgSQL body, as plain SQL: `SELECT ... INTO var` loses its
/// INTO, `PERFORM` becomes SELECT, assignments become SELECT of their expression.
fn plpgsql_statements(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in split_top_level(&strip_comments(body)) {
        let upper = piece.to_ascii_uppercase();
        if let Some(pos) = upper.find(":=") {
            let rhs = piece[pos + 2..].trim();
            if rhs.to_ascii_uppercase().contains("SELECT") || rhs.contains('(') {
                out.push(format!("SELECT {rhs}"));
            }
            continue;
        }
        let Some(start) = find_keyword(
            &upper,
            &[
                "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "PERFORM", "MERGE", "TRUNCATE",
            ],
        ) else {
            continue;
        };
        let mut stmt = piece[start..].to_string();
        if upper[start..].starts_with("PERFORM") {
            stmt = format!("SELECT {}", &stmt["PERFORM".len()..]);
        }
        if let Some(end) = find_keyword(&stmt.to_ascii_uppercase(), &["LOOP"]) {
            stmt.truncate(end);
        }
        let up = stmt.to_ascii_uppercase();
        if up.starts_with("SELECT") || up.starts_with("WITH") {
            stmt = strip_into(&stmt);
        }
        out.push(stmt);
    }
    out
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = false;
    for c in s.chars() {
        match c {
            '\'' => {
                quote = !quote;
                cur.push(c);
            }
            ';' if !quote => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn find_keyword(upper: &str, words: &[&str]) -> Option<usize> {
    let bytes = upper.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    words
        .iter()
        .filter_map(|w| {
            upper.match_indices(w).find_map(|(i, _)| {
                let before = i == 0 || !is_word(bytes[i - 1]);
                let after = i + w.len() >= bytes.len() || !is_word(bytes[i + w.len()]);
                (before && after).then_some(i)
            })
        })
        .min()
}

/// Removes `INTO [STRICT] a, b` between a SELECT list and FROM.
fn strip_into(stmt: &str) -> String {
    let upper = stmt.to_ascii_uppercase();
    let Some(into) = find_keyword(&upper, &["INTO"]) else {
        return stmt.to_string();
    };
    let rest = &upper[into..];
    let end = find_keyword(rest, &["FROM", "WHERE", "GROUP", "ORDER", "LIMIT", "UNION"])
        .map(|e| into + e)
        .unwrap_or(stmt.len());
    format!("{} {}", &stmt[..into], &stmt[end..])
}

/// Whether `e` is a string literal (used for sequence names).
#[allow(dead_code)]
pub(crate) fn literal_text(e: &Expr) -> Option<String> {
    string_literal(e).or_else(|| match e {
        Expr::Value(v) => match &v.value {
            Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    })
}

/// The column names of an INSERT column list: the last part of each (a column may be written
/// qualified).
fn column_names(w: &mut Walker, columns: &[ObjectName]) -> Vec<String> {
    columns
        .iter()
        .filter_map(|c| w.name_parts(c).pop())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plpgsql_bodies_become_plain_sql() {
        let body = "DECLARE v int; BEGIN\n -- comment; with semicolon\n SELECT count(*) INTO v FROM rental WHERE x = 1;\n IF v = 0 THEN RETURN TRUE; END IF;\n PERFORM f(1);\n v := (SELECT max(a) FROM t);\n FOR r IN SELECT * FROM u LOOP\n END LOOP;\nEND";
        let stmts = plpgsql_statements(body);
        assert_eq!(
            stmts[0].split_whitespace().collect::<Vec<_>>().join(" "),
            "SELECT count(*) FROM rental WHERE x = 1"
        );
        assert!(
            stmts
                .iter()
                .any(|s| s.starts_with("SELECT  f(1)") || s.starts_with("SELECT f(1)")),
            "{stmts:?}"
        );
        assert!(
            stmts.iter().any(|s| s == "SELECT (SELECT max(a) FROM t)"),
            "{stmts:?}"
        );
        assert!(
            stmts.iter().any(|s| s.trim() == "SELECT * FROM u"),
            "{stmts:?}"
        );
    }
}
