//! Function calls: refused, built in, a sequence function, or a user function whose overloads
//! need EXECUTE and whose bodies, run with the caller's privileges, are queued for the walk.

use super::catalog::{FuncInfo, RelKind, MYSQL_ROUTINE};
use super::names::{split_qualified, string_literal};
use super::walker::{Walked, Walker};
use crate::error::ExtractError;
use crate::types::{ObjectKind, ObjectRef, Privilege};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, Ident};

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
        // MySQL's routine names are case-insensitive (the catalog keeps them in lower case),
        // and an unqualified call is a stored function's only when the default database has
        // one of that name that is no native function's; in PostgreSQL built-ins are known by
        // name and the search path decides.
        let lower;
        let name = if self.mysql() {
            lower = name.to_lowercase();
            lower.as_str()
        } else {
            name
        };
        let builtin = if self.mysql() {
            cat.builtins.contains(name) || self.resolve_function(cat, None, name).is_none()
        } else {
            (cat.builtins.contains(name) || (self.rules.builtin_function)(&name.to_lowercase()))
                && !self.user_function_before_pg_catalog(cat, name)
        };
        // No procedure is built in: what CALL names is always a user's.
        if schema.is_none() && builtin && !self.calling_procedure {
            return Ok(());
        }
        self.lookup()?;
        let Some((schema, candidates)) = self.resolve_function(cat, schema.as_deref(), name) else {
            return Err(ExtractError::Unsupported(format!(
                "function `{name}` does not exist"
            )));
        };
        // CALL names a procedure, anything else a function (in MariaDB the two may share a
        // name).
        let kind = if self.calling_procedure {
            "procedure"
        } else {
            "function"
        };
        let candidates: Vec<&FuncInfo> = candidates
            .iter()
            .filter(|f| f.procedure == self.calling_procedure)
            .collect();
        if candidates.is_empty() {
            return Err(ExtractError::Unsupported(format!(
                "{kind} `{schema}.{name}` does not exist"
            )));
        }
        let fitting: Vec<&FuncInfo> = candidates
            .iter()
            .copied()
            .filter(|f| fits(f, call))
            .collect();
        let chosen = if !fitting.is_empty() {
            fitting
        } else if call.named.is_empty() {
            candidates
        } else {
            // PostgreSQL would refuse the call; so does p0, rather than grant every overload.
            return Err(ExtractError::Unsupported(format!(
                "no function `{schema}.{name}` takes the arguments `{}`",
                call.named.join("`, `")
            )));
        };
        for f in chosen {
            // MariaDB's routines have no overloads: they are granted by name alone.
            let object = ObjectRef {
                kind: self.routine_kind(),
                signature: (!f.signature.is_empty()).then(|| f.signature.clone()),
                ..ObjectRef::function(schema.clone(), name, "")
            };
            self.grant(Privilege::Execute, object, None);
            match &f.body {
                // Unqualified names in a MariaDB routine's body belong to its own database.
                Some((lang, body)) if lang == MYSQL_ROUTINE => self.enqueue_in(
                    format!("body of {kind} `{schema}.{name}`"),
                    Some(lang),
                    body,
                    &schema,
                ),
                Some((lang, body)) => self.enqueue(
                    format!("body of function `{schema}.{name}({})`", f.signature),
                    Some(lang.clone()),
                    body,
                ),
                None => {}
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
