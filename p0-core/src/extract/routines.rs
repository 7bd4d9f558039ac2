//! What statements reach in the catalog: function bodies and view definitions that run with
//! the caller's privileges, and column defaults. Each was queued when reached
//! ([`Walker::enqueue`]) and is walked here, after the statement, one after the other (never
//! nested, so the stack stays as shallow as one text allows).

use super::bounds::{parse_expression, parse_statements, Syntax};
use super::catalog::{MYSQL_ROUTINE, SQL_STANDARD};
use super::compound;
use super::plpgsql;
use super::scope::RelKey;
use super::walker::{Pending, Walked, Walker};
use crate::error::ExtractError;
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};

/// The dialect the catalog's texts are in: the server's own.
fn dialect(syntax: Syntax) -> &'static dyn Dialect {
    match syntax {
        Syntax::Postgres => &PostgreSqlDialect {},
        Syntax::MySql(_) => &MySqlDialect {},
    }
}

impl Walker<'_> {
    /// Walks everything queued so far, and what that queues in turn, each at most once.
    /// Views read first: what their rules call, for the columns read of each.
    pub fn expand_all_pending(&mut self) -> Walked {
        loop {
            if let Some((rel, cols)) = self.views_read.pop() {
                self.view_reaches(&rel, cols.as_deref())?;
                self.policies_reached(&rel)?;
                continue;
            }
            if let Some((rel, event)) = self.rows_written.pop() {
                self.write_policies_reached(&rel, event)?;
                continue;
            }
            let Some(p) = self.pending.pop_front() else {
                return Ok(());
            };
            self.expand_pending(p)?;
        }
    }

    /// Walks a body or default reached from the catalog, as the caller: no scope of the
    /// statement that reached it is visible, and the search_path is the one it was reached with.
    fn expand_pending(&mut self, p: Pending) -> Walked {
        self.check_time()?;
        self.expanded += 1;
        let saved = std::mem::replace(&mut self.search_path, p.search_path);
        let explain_only = std::mem::replace(&mut self.explain_only, p.explain_only);
        let saved_bound = std::mem::replace(&mut self.bound, p.bound);
        let origin = match &p.via {
            Some(via) => format!("{}, reached from the {via}", p.what),
            None => p.what.clone(),
        };
        let result = self.within_origin(origin, |w| match p.lang.as_deref() {
            Some(lang) => w.expand_body(&p.what, lang, &p.text),
            None => {
                w.in_stored_expression = true;
                let r = w.expand_expression(&p.what, &p.text);
                w.in_stored_expression = false;
                r
            }
        });
        self.search_path = saved;
        self.explain_only = explain_only;
        self.bound = saved_bound;
        result
    }

    /// Walks the statements of a function or view body that runs with the caller's privileges.
    /// A statement that does not parse is reported as unresolved; a body past the bounds stops
    /// the walk.
    fn expand_body(&mut self, what: &str, lang: &str, body: &str) -> Walked {
        if body.len() > self.limits.max_bytes {
            return Err(ExtractError::TooLarge {
                what: what.into(),
                max: self.limits.max_bytes,
            });
        }
        let texts = if lang == "plpgsql" {
            plpgsql::statements(body)
        } else if lang == MYSQL_ROUTINE {
            compound::statements(body)
        } else if lang == SQL_STANDARD {
            vec![sql_standard(body)]
        } else {
            vec![body.to_string()]
        };
        for text in texts {
            let limits = self.limits;
            let syntax = self.rules.syntax;
            match parse_statements(dialect(syntax), &text, what, &limits, syntax) {
                Ok(stmts) => self.isolated(|w| {
                    for s in &stmts {
                        w.statement(s)?;
                    }
                    Ok(())
                })?,
                Err(e @ (ExtractError::TooLarge { .. } | ExtractError::TooDeep { .. })) => {
                    return Err(e)
                }
                Err(_) => {
                    self.unresolved.insert(format!(
                        "a statement in the {what}: `{}`",
                        text.chars().take(60).collect::<String>()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The row-level security policies that filter the rows read of `rel`: their expressions
    /// run as the caller, bound by OID (no schema USAGE): functions need EXECUTE, sub-queries
    /// SELECT; the columns of `rel` they read need no privilege.
    fn policies_reached(&mut self, rel: &RelKey) -> Walked {
        let Some(cat) = self.catalog else {
            return Ok(());
        };
        let key = (rel.schema.clone(), rel.name.clone());
        let Some(policies) = cat.read_policies.get(&key) else {
            if cat.row_security.contains(&key) {
                self.unresolved.insert(format!(
                    "row security is on for `{}.{}` and no policy applies to every role: p0's \
                     user will see none of its rows",
                    rel.schema, rel.name
                ));
            }
            return Ok(());
        };
        for (i, text) in policies.iter().enumerate() {
            let what = format!("policy {i} of `{}.{}`", rel.schema, rel.name);
            self.policy_expression(rel, what, text)?;
        }
        Ok(())
    }

    /// The write policies an event (bits of `tgtype`) runs on `rel`, as for reads.
    fn write_policies_reached(&mut self, rel: &RelKey, event: i32) -> Walked {
        let Some(cat) = self.catalog else {
            return Ok(());
        };
        let Some(policies) = cat
            .write_policies
            .get(&(rel.schema.clone(), rel.name.clone()))
        else {
            return Ok(());
        };
        let command = match event {
            4 => "INSERT",
            8 => "DELETE",
            _ => "UPDATE",
        };
        for (i, p) in policies.iter().enumerate() {
            for (j, text) in p.expressions(event).into_iter().enumerate() {
                let what = format!("{command} policy {i}.{j} of `{}.{}`", rel.schema, rel.name);
                self.policy_expression(rel, what, text)?;
            }
        }
        Ok(())
    }

    /// One policy expression of `rel`, walked once, as the caller, bound by OID.
    fn policy_expression(&mut self, rel: &RelKey, what: String, text: &str) -> Walked {
        if !self.first_time(&what) {
            return Ok(());
        }
        self.lookup()?;
        let limits = self.limits;
        let e = match parse_expression(&PostgreSqlDialect {}, text, &what, &limits) {
            Ok(e) => e,
            Err(e @ (ExtractError::TooLarge { .. } | ExtractError::TooDeep { .. })) => {
                return Err(e)
            }
            Err(_) => {
                self.unresolved.insert(format!("{what} `{text}`"));
                return Ok(());
            }
        };
        let saved = std::mem::replace(&mut self.bound, true);
        let result = self.within_origin(what, |w| {
            w.isolated(|w| {
                w.scoped(|w| {
                    w.bind_pseudo(&rel.name);
                    w.expr(&e)
                })
            })
        });
        self.bound = saved;
        result
    }

    /// Parses a default or other stored expression and walks it (functions, sequences).
    fn expand_expression(&mut self, what: &str, expr: &str) -> Walked {
        let limits = self.limits;
        match parse_expression(dialect(self.rules.syntax), expr, what, &limits) {
            Ok(e) => self.isolated(|w| w.expr(&e)),
            Err(e @ (ExtractError::TooLarge { .. } | ExtractError::TooDeep { .. })) => Err(e),
            Err(_) => {
                self.unresolved.insert(format!("{what} `{expr}`"));
                Ok(())
            }
        }
    }
}

/// A SQL-standard body as PostgreSQL prints it (`BEGIN ATOMIC` statements `END`, or
/// `RETURN expr`), as statements sqlparser reads: each `RETURN expr` is `SELECT expr`.
fn sql_standard(body: &str) -> String {
    let body = body.trim();
    let inner = body
        .strip_prefix("BEGIN ATOMIC")
        .and_then(|b| b.trim_end().strip_suffix("END"))
        .unwrap_or(body);
    inner
        .lines()
        .map(|line| {
            let code = line.trim_start();
            match code.strip_prefix("RETURN ") {
                Some(expr) => format!("SELECT {expr}"),
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
