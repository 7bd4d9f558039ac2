//! The top of the walk: what each kind of statement needs, dispatched to the module that
//! knows it; anything else is refused (`refuse.rs`). Also where the lower modules re-enter
//! the walk ([`Reenter`]).

use super::names::string_literal;
use super::refuse::refusal;
use super::walker::{Reenter, Walked, Walker};
use crate::types::{ObjectRef, Privilege};
use sqlparser::ast::{Expr, Query, Set, Statement, Use};

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
                statement: inner, ..
            } => self.statement(inner),
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

impl Reenter for Walker<'_> {
    fn subquery(&mut self, q: &Query) -> Walked {
        self.query(q)
    }

    fn nested_statement(&mut self, s: &Statement) -> Walked {
        self.statement(s)
    }
}
