//! The top of the walk: what each kind of statement needs, dispatched to the module that
//! knows it; anything else is refused (`refuse.rs`). Also where the lower modules re-enter
//! the walk ([`Reenter`]).

use super::names::string_literal;
use super::refuse::{first_words, refusal};
use super::walker::{Prepared, Reenter, Walked, Walker};
use crate::error::ExtractError;
use crate::types::{ObjectRef, Privilege};
use sqlparser::ast::{
    ColumnOption, CreateTable, Expr, Ident, ObjectName, Query, Set, Statement, TableConstraint,
    Use, UtilityOption, Value,
};

impl Walker<'_> {
    /// Walks one statement.
    pub fn statement(&mut self, s: &Statement) -> Walked {
        self.descend(|w| w.statement_here(s))
    }

    fn statement_here(&mut self, s: &Statement) -> Walked {
        match s {
            Statement::Query(q) => self.query(q),
            Statement::Insert(ins) => self.insert(ins),
            Statement::Update(u) => self.update(u),
            Statement::Delete(d) => self.delete(d),
            Statement::Merge(m) => self.merge(m),
            Statement::Truncate(t) => self.truncate(t),
            Statement::Copy {
                source, to, target, ..
            } => self.copy(source, *to, target),
            Statement::Explain {
                statement: inner,
                analyze,
                options,
                ..
            } => self.explain(inner, *analyze || analyze_option(options.as_deref())),
            Statement::Prepare {
                name,
                statement: inner,
                ..
            } => self.prepare(name, inner),
            Statement::Execute {
                name: Some(name),
                parameters,
                immediate: false,
                into,
                using,
                output: false,
                default: false,
                ..
            } if into.is_empty() && using.is_empty() => self.execute(name, parameters),
            Statement::Deallocate { name, .. } => {
                let name = self.ident(name);
                if name.eq_ignore_ascii_case("all") {
                    self.prepared.clear();
                } else {
                    self.prepared.remove(&name);
                }
                Ok(())
            }
            Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowVariables { .. }
            | Statement::Discard { .. } => Ok(()),
            Statement::Set(set) => self.set_statement(set),
            // MySQL's `USE db`: later unqualified names are in `db`.
            Statement::Use(Use::Object(db) | Use::Database(db) | Use::Schema(db)) => {
                let Some(db) = self.name_parts(db).pop() else {
                    return Err(refusal(s));
                };
                self.search_path = Some(vec![db.clone()]);
                self.used_databases.push(db);
                Ok(())
            }
            Statement::Call(f) => self.call_statement(f),
            Statement::CreateTable(ct) if ct.temporary => {
                if let Some(e) = temp_table_refusal(ct) {
                    return Err(e);
                }
                let db = self.catalog.map(|c| c.database.clone());
                match db {
                    Some(db) => self.grant(Privilege::Temporary, ObjectRef::database(db), None),
                    None => {
                        self.unresolved.insert("database for TEMPORARY".into());
                    }
                }
                match &ct.query {
                    Some(q) => self.query(q),
                    None => Ok(()),
                }
            }
            other => Err(refusal(other)),
        }
    }

    /// `EXPLAIN`: with ANALYZE the statement runs; without, the server checks its privileges
    /// and plans it, but evaluates no default and fires no trigger.
    fn explain(&mut self, inner: &Statement, analyze: bool) -> Walked {
        if analyze {
            return self.statement(inner);
        }
        let saved = std::mem::replace(&mut self.explain_only, true);
        let result = self.statement(inner);
        self.explain_only = saved;
        result
    }

    /// `PREPARE name AS statement`: kept for the `EXECUTE`s that follow; its names are bound
    /// with the search_path of now. One never executed is walked at the end of the request.
    fn prepare(&mut self, name: &Ident, inner: &Statement) -> Walked {
        if !matches!(
            inner,
            Statement::Query(_)
                | Statement::Insert(_)
                | Statement::Update(_)
                | Statement::Delete(_)
                | Statement::Merge(_)
        ) {
            return Err(ExtractError::Unsupported(format!(
                "`PREPARE {name} AS {}`: only SELECT, VALUES, INSERT, UPDATE, DELETE and MERGE can be prepared",
                first_words(&inner.to_string(), 2)
            )));
        }
        let name = self.ident(name);
        self.prepared.insert(
            name,
            Prepared {
                statement: inner.clone(),
                search_path: self.search_path.clone(),
                executed: false,
            },
        );
        Ok(())
    }

    /// `EXECUTE name(args)`: what the prepared statement needs, and what its arguments need.
    /// A name not prepared earlier in the same request is refused: what it runs is unknown.
    fn execute(&mut self, name: &ObjectName, parameters: &[Expr]) -> Walked {
        let key = self.name_parts(name).join(".");
        let Some(p) = self.prepared.get_mut(&key) else {
            return Err(ExtractError::Refused(format!(
                "`EXECUTE {name}` runs a statement not prepared in this request; prepare it in the same request"
            )));
        };
        p.executed = true;
        let statement = p.statement.clone();
        let path = p.search_path.clone();
        for e in parameters {
            self.expr(e)?;
        }
        let saved = std::mem::replace(&mut self.search_path, path);
        let result = self.statement(&statement);
        self.search_path = saved;
        result
    }

    /// Prepared statements never executed: walked as if they were, so that no statement of the
    /// request goes unchecked.
    pub fn unexecuted_prepared(&mut self) -> Walked {
        let mut names: Vec<String> = self
            .prepared
            .iter()
            .filter(|(_, p)| !p.executed)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        for n in names {
            if let Some(p) = self.prepared.remove(&n) {
                let saved = std::mem::replace(&mut self.search_path, p.search_path);
                let result = self.statement(&p.statement);
                self.search_path = saved;
                result?;
            }
        }
        Ok(())
    }

    /// `SET`: `search_path` changes how later names resolve; identity changes are refused;
    /// anything else needs what its value expressions need.
    fn set_statement(&mut self, set: &Set) -> Walked {
        if let Some(e) = (self.rules.refused_set)(set) {
            return Err(e);
        }
        let (variable, values) = match set {
            Set::SingleAssignment {
                variable, values, ..
            } => (variable, values),
            // MySQL's `SET @a = 1, @b = (SELECT ...)`: what each value needs.
            Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.expr_visit(&a.value)?;
                }
                return Ok(());
            }
            Set::ParenthesizedAssignments { values, .. } => return self.expr_visit(values),
            _ => return Ok(()),
        };
        let name = variable.to_string().to_ascii_lowercase();
        if name == "search_path" {
            let path: Vec<String> = values
                .iter()
                .filter_map(|v| match v {
                    Expr::Identifier(id) => Some(self.ident(id)),
                    other => string_literal(other),
                })
                .flat_map(|s| {
                    s.split(',')
                        .map(|p| p.trim().trim_matches('"').to_string())
                        .collect::<Vec<_>>()
                })
                .filter(|s| !s.is_empty() && s != "$user")
                .collect();
            self.search_path = Some(path);
            return Ok(());
        }
        for v in values {
            self.expr_visit(v)?;
        }
        Ok(())
    }
}

/// `CREATE TEMP TABLE` forms that need more than TEMPORARY at creation: a parent
/// (ownership), a source table (LIKE: SELECT), a foreign key (REFERENCES).
fn temp_table_refusal(ct: &CreateTable) -> Option<ExtractError> {
    if ct.inherits.is_some() || ct.partition_of.is_some() {
        return Some(ExtractError::Refused(
            "`CREATE TEMP TABLE ... INHERITS / PARTITION OF` needs ownership of the parent".into(),
        ));
    }
    if ct.like.is_some() || ct.clone.is_some() {
        return Some(ExtractError::Unsupported(
            "`CREATE TEMP TABLE ... LIKE`: name the columns instead".into(),
        ));
    }
    let foreign_key = ct
        .constraints
        .iter()
        .any(|c| matches!(c, TableConstraint::ForeignKey(_)))
        || ct.columns.iter().any(|c| {
            c.options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::ForeignKey(_)))
        });
    foreign_key.then(|| {
        ExtractError::Unsupported(
            "`CREATE TEMP TABLE ... REFERENCES`: a foreign key needs REFERENCES, which p0 does not extract"
                .into(),
        )
    })
}

/// Whether `EXPLAIN (...)` options ask to run the statement: `ANALYZE` unless it is
/// explicitly false (`false`, `off`, `0`, `no`).
fn analyze_option(options: Option<&[UtilityOption]>) -> bool {
    options.unwrap_or_default().iter().any(|o| {
        o.name.value.eq_ignore_ascii_case("analyze")
            && !o.arg.as_ref().is_some_and(|a| {
                let text = match a {
                    Expr::Value(v) => match &v.value {
                        Value::Boolean(b) => return !b,
                        Value::SingleQuotedString(s) => s.clone(),
                        other => other.to_string(),
                    },
                    Expr::Identifier(id) => id.value.clone(),
                    other => other.to_string(),
                };
                matches!(
                    text.to_ascii_lowercase().as_str(),
                    "false" | "off" | "0" | "no"
                )
            })
    })
}

impl Reenter for Walker<'_> {
    fn subquery(&mut self, q: &Query) -> Walked {
        self.query(q)
    }

    fn nested_statement(&mut self, s: &Statement) -> Walked {
        self.statement(s)
    }
}
