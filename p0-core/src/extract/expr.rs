//! Expressions, walked with sqlparser's visitor: column references are attributed to the
//! bindings in scope, function calls resolved, and a subquery met inside an expression is
//! walked by hand (through [`Reenter`]) with the enclosing scopes visible to it.

use super::calls::{mariadb_sequence_function, sequence_name, CallArgs};
use super::walker::{Reenter, Walked, Walker};
use crate::error::ExtractError;
use sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Visit, Visitor,
};
use std::collections::HashSet;
use std::ops::ControlFlow;

impl Walker<'_> {
    /// Walks an expression.
    pub fn expr(&mut self, e: &Expr) -> Walked {
        self.expr_visit(e)
    }

    /// Walks the expressions in any node (an ORDER BY, a GROUP BY, a VALUES list, ...).
    pub fn expr_visit<V: Visit>(&mut self, node: &V) -> Walked {
        self.check_time()?;
        ExprVisitor::new(self).run(node)
    }

    /// Walks an argument of a call whose name is resolved elsewhere (a function in FROM).
    pub fn function_arg(&mut self, a: &FunctionArg) -> Walked {
        let e = match a {
            FunctionArg::Named { arg, .. }
            | FunctionArg::ExprNamed { arg, .. }
            | FunctionArg::Unnamed(arg) => arg,
        };
        match e {
            FunctionArgExpr::Expr(e) => self.expr(e),
            _ => Ok(()),
        }
    }

    /// How overload resolution sees a call's arguments.
    pub fn call_args(&self, args: &[FunctionArg]) -> CallArgs {
        let mut call = CallArgs::default();
        for a in args {
            match a {
                FunctionArg::Named { name, .. }
                | FunctionArg::ExprNamed {
                    name: Expr::Identifier(name),
                    ..
                } => call.named.push(self.ident(name)),
                _ => call.positional += 1,
            }
        }
        call
    }

    /// A function call in an expression, or in `CALL`: its name and its arguments' names.
    /// The arguments themselves are walked by the caller.
    fn call(&mut self, f: &Function) -> Walked {
        let parts = self.name_parts(&f.name);
        if let FunctionArguments::List(l) = &f.args {
            for a in &l.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::QualifiedWildcard(n)) = a {
                    let parts = self.name_parts(n);
                    self.scopes.read_all(parts.last().map(String::as_str));
                }
            }
        }
        let (call, first) = match &f.args {
            FunctionArguments::List(l) => (self.call_args(&l.args), l.args.first()),
            FunctionArguments::Subquery(_) => (
                CallArgs {
                    positional: 1,
                    named: Vec::new(),
                },
                None,
            ),
            // `CALL p` without parentheses names a procedure; elsewhere a name without them
            // (CURRENT_TIMESTAMP, CURRENT_USER, ...) is built in.
            FunctionArguments::None if self.calling_procedure => (CallArgs::default(), None),
            FunctionArguments::None => return Ok(()),
        };
        self.function(&parts, &call, first)
    }

    /// `CALL f(...)`: the routine and its arguments.
    pub fn call_statement(&mut self, f: &Function) -> Walked {
        self.check_time()?;
        // What CALL runs is a procedure (a function there is an error): granted as one.
        self.calling_procedure = true;
        let called = self.call(f);
        self.calling_procedure = false;
        called?;
        let mut v = ExprVisitor::new(self);
        v.skip_argument_names(f);
        v.run(f)
    }
}

/// Walks the expressions of one node. Every expression and query node it enters is a level
/// of the walk ([`Walker::enter`]); the first error breaks the visit.
struct ExprVisitor<'w, 'a> {
    w: &'w mut Walker<'a>,
    /// Queries entered: inside one, nodes were already walked by hand (with its scopes).
    in_query: usize,
    /// The names of named arguments (`f(a => 1)`): identifiers that are not columns.
    names: HashSet<*const Expr>,
}

impl<'w, 'a> ExprVisitor<'w, 'a> {
    fn new(w: &'w mut Walker<'a>) -> Self {
        Self {
            w,
            in_query: 0,
            names: HashSet::new(),
        }
    }

    fn run<V: Visit>(mut self, node: &V) -> Walked {
        let depth = self.w.depth();
        let flow = node.visit(&mut self);
        self.w.restore_depth(depth);
        match flow {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(e) => Err(e),
        }
    }

    fn skip_argument_names(&mut self, f: &Function) {
        // MariaDB's `NEXTVAL(s)`: `s` names a sequence, not a column.
        if self.w.rules.sequences_are_tables && f.name.0.len() == 1 {
            let name = f.name.to_string().to_lowercase();
            if let (Some(_), FunctionArguments::List(l)) =
                (mariadb_sequence_function(&name), &f.args)
            {
                if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) = l.args.first() {
                    if sequence_name(e, |i| i.value.clone()).is_some() {
                        self.skip_sequence_name(e);
                    }
                }
            }
        }
        if let FunctionArguments::List(l) = &f.args {
            for a in &l.args {
                if let FunctionArg::ExprNamed { name, .. } = a {
                    self.names.insert(name as *const Expr);
                }
            }
        }
    }

    /// Skips an identifier and the identifiers nested in it (`(s)`).
    fn skip_sequence_name(&mut self, e: &Expr) {
        self.names.insert(e as *const Expr);
        if let Expr::Nested(inner) = e {
            self.skip_sequence_name(inner);
        }
    }

    /// Attributes a column reference or resolves a call, at the top level of the node.
    fn expr(&mut self, e: &Expr) -> Walked {
        if self.in_query > 0 || self.names.contains(&(e as *const Expr)) {
            return Ok(());
        }
        match e {
            Expr::Identifier(id) => {
                let col = self.w.ident(id);
                self.w.scopes.resolve_column(&[col]);
            }
            Expr::CompoundIdentifier(ids) => {
                let parts: Vec<String> = ids.iter().map(|i| self.w.ident(i)).collect();
                self.w.scopes.resolve_column(&parts);
            }
            Expr::Function(f) => {
                self.skip_argument_names(f);
                self.w.call(f)?;
            }
            Expr::Cast {
                expr, data_type, ..
            } => self.w.explicit_cast(expr, data_type),
            _ => {}
        }
        Ok(())
    }
}

/// `Ok` goes on, an error breaks the visit.
fn flow(r: Walked) -> ControlFlow<ExtractError> {
    match r {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    }
}

impl Visitor for ExprVisitor<'_, '_> {
    type Break = ExtractError;

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<ExtractError> {
        if self.in_query == 0 {
            flow(self.w.subquery(q))?;
        }
        self.in_query += 1;
        flow(self.w.enter())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<ExtractError> {
        self.in_query -= 1;
        self.w.leave();
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<ExtractError> {
        flow(self.w.tick())?;
        flow(self.w.enter())?;
        flow(self.expr(e))
    }

    fn post_visit_expr(&mut self, _e: &Expr) -> ControlFlow<ExtractError> {
        self.w.leave();
        ControlFlow::Continue(())
    }
}
