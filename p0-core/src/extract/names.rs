//! Name resolution: which relation or function a name denotes, through schemas, the search
//! path (the catalog's, or one `SET search_path` chose) and never another session's
//! temporary schema.

use super::catalog::{Catalog, FuncInfo, RelKind};
use super::scope::{Binding, RelKey};
use super::walker::{Walked, Walker};
use crate::error::ExtractError;
use crate::types::ObjectRef;
use sqlparser::ast::{Assignment, AssignmentTarget, Expr, Ident, ObjectName, Value};

/// The schema of the built-in functions and system catalogs.
const PG_CATALOG: &str = "pg_catalog";

/// A relation a name resolved to: its key, its kind and its columns when the catalog knows them.
pub(crate) type Resolved = (RelKey, Option<RelKind>, Option<Vec<String>>);

impl Walker<'_> {
    /// Resolves a relation name (`None` for an empty one). Unknown names without a catalog
    /// are assumed to be tables in the default schema; with one, they stop the walk.
    pub fn resolve_rel(&mut self, parts: &[String]) -> Walked<Option<Resolved>> {
        let (schema, name) = match parts {
            [name] => (None, name.clone()),
            [.., schema, name] => (Some(schema.clone()), name.clone()),
            [] => return Ok(None),
        };
        if let Some(cat) = self.catalog {
            self.lookup()?;
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
                Some((s, r)) => Ok(Some((
                    RelKey { schema: s, name },
                    Some(r.kind),
                    Some(r.columns.iter().map(|c| c.name.clone()).collect()),
                ))),
                None => Err(ExtractError::Unsupported(format!(
                    "relation `{}` does not exist",
                    parts.join(".")
                ))),
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
        Ok(Some((RelKey { schema, name }, None, None)))
    }

    /// The overloads of a function name with a catalog: its schema and candidates, if any.
    pub fn resolve_function<'c>(
        &self,
        cat: &'c Catalog,
        schema: Option<&str>,
        name: &str,
    ) -> Option<(String, &'c Vec<FuncInfo>)> {
        match schema {
            Some(s) if is_temp_schema(s) => None,
            Some(s) => cat
                .functions
                .get(&(s.to_string(), name.to_string()))
                .map(|f| (s.to_string(), f)),
            None => self.effective_path(cat).into_iter().find_map(|s| {
                cat.functions
                    .get(&(s.clone(), name.to_string()))
                    .map(|f| (s, f))
            }),
        }
    }

    /// The schemas unqualified names resolve through: never another session's temporary
    /// schema (a fresh session of the requester has none of its own); `pg_catalog` first
    /// unless the path names it elsewhere, as the server searches it.
    pub fn effective_path(&self, cat: &Catalog) -> Vec<String> {
        let mut path = self.named_path(cat);
        if !path.iter().any(|s| s == PG_CATALOG) {
            path.insert(0, PG_CATALOG.into());
        }
        path
    }

    /// Whether an unqualified call of `name` reaches a function of a schema searched before
    /// `pg_catalog` (one the search path names before it) rather than the built-in.
    pub fn user_function_before_pg_catalog(&self, cat: &Catalog, name: &str) -> bool {
        self.effective_path(cat)
            .iter()
            .take_while(|s| *s != PG_CATALOG)
            .any(|s| cat.functions.contains_key(&(s.clone(), name.to_string())))
    }

    /// The search path as set (by `SET search_path` or the role), without implicit schemas.
    fn named_path(&self, cat: &Catalog) -> Vec<String> {
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
                    .filter(|s| (schemas.contains(*s) || *s == PG_CATALOG) && !is_temp_schema(s))
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

    /// Adds a DML target to the current scope; what it resolved to. Sequences and
    /// materialized views cannot be modified.
    pub fn bind_target(
        &mut self,
        name: &ObjectName,
        alias: Option<&Ident>,
    ) -> Walked<Option<Resolved>> {
        let parts = self.name_parts(name);
        let Some(resolved) = self.resolve_rel(&parts)? else {
            return Ok(None);
        };
        if matches!(
            resolved.1,
            Some(RelKind::Sequence | RelKind::MaterializedView)
        ) {
            return Err(ExtractError::Refused(format!(
                "`{}` cannot be modified",
                parts.join(".")
            )));
        }
        let alias = alias
            .map(|a| self.ident(a))
            .unwrap_or_else(|| resolved.0.name.clone());
        self.scopes.bind(Binding::target(
            alias,
            resolved.0.clone(),
            resolved.2.clone(),
        ));
        Ok(Some(resolved))
    }

    /// Adds another name for a DML target (PostgreSQL's EXCLUDED): reads through it are reads
    /// of the target's columns.
    pub fn bind_alias_of_target(&mut self, alias: &str, key: &RelKey) -> Walked {
        if self.catalog.is_some() {
            self.lookup()?;
        }
        let columns = self
            .catalog
            .and_then(|c| c.relations.get(&(key.schema.clone(), key.name.clone())))
            .map(|r| r.columns.iter().map(|c| c.name.clone()).collect());
        self.scopes
            .bind(Binding::target(alias.into(), key.clone(), columns));
        Ok(())
    }

    /// The column names of an INSERT column list: the last part of each (a column may be
    /// written qualified).
    pub fn column_names(&self, columns: &[ObjectName]) -> Vec<String> {
        columns
            .iter()
            .filter_map(|c| self.name_parts(c).pop())
            .collect()
    }

    /// The columns that assignments (`SET a = ..., (b, c) = ...`) set, by their last part.
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

/// The object a table privilege on `key` is granted on: the sequence, or the table.
pub(crate) fn table_privilege_object(key: &RelKey, kind: Option<RelKind>) -> ObjectRef {
    match kind {
        Some(RelKind::Sequence) => ObjectRef::sequence(key.schema.clone(), key.name.clone()),
        _ => ObjectRef::table(key.schema.clone(), key.name.clone()),
    }
}

/// Another session's temporary schema (`pg_temp_3`, `pg_toast_temp_3`), or the agent's own:
/// a fresh session of the requester sees none of them.
pub(crate) fn is_temp_schema(schema: &str) -> bool {
    schema.starts_with("pg_temp") || schema.starts_with("pg_toast_temp")
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

/// Splits `"My Schema".seq` into parts, folding unquoted parts (ASCII only, as the server
/// does) when asked.
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
                    cur.to_ascii_lowercase()
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
        cur.to_ascii_lowercase()
    });
    parts
}
