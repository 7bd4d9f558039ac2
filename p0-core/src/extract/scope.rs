//! Scopes: the relations a query level binds, and which of their columns it reads.
//!
//! Plain data, below the walker: every column reference is attributed to the binding it
//! names (an alias, a CTE, the innermost scope that has the column), and when a scope closes
//! its reads become the SELECT grants the walker makes.

use std::collections::BTreeSet;

/// A resolved relation: its schema and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RelKey {
    pub schema: String,
    pub name: String,
}

/// Columns read through one binding.
#[derive(Debug, Clone, Default)]
struct ColUse {
    all: bool,
    cols: BTreeSet<String>,
}

impl ColUse {
    fn any(&self) -> bool {
        self.all || !self.cols.is_empty()
    }
}

/// One name a scope binds: a relation (or a pseudo-relation with no privileges) under its alias.
#[derive(Debug)]
pub(crate) struct Binding {
    alias: String,
    rel: Option<RelKey>,
    columns: Option<Vec<String>>,
    reads: ColUse,
    /// A DML target: SELECT is needed only when its columns are read.
    target: bool,
    /// Reads through it need no SELECT (MariaDB's UPDATE of a view).
    free: bool,
}

impl Binding {
    /// A relation read in FROM: `columns` when the catalog knows them.
    pub fn read(alias: String, rel: RelKey, columns: Option<Vec<String>>) -> Self {
        Self::new(alias, Some(rel), columns, false)
    }

    /// A DML target (or another name for one, like EXCLUDED): SELECT only when read.
    pub fn target(alias: String, rel: RelKey, columns: Option<Vec<String>>) -> Self {
        Self::new(alias, Some(rel), columns, true)
    }

    /// A name with no privileges (a CTE, a derived table, EXCLUDED, NEW, ...).
    pub fn pseudo(alias: String) -> Self {
        Self::new(alias, None, None, false)
    }

    fn new(alias: String, rel: Option<RelKey>, columns: Option<Vec<String>>, target: bool) -> Self {
        Self {
            alias,
            rel,
            columns,
            reads: ColUse::default(),
            target,
            free: false,
        }
    }
}

#[derive(Debug, Default)]
struct Scope {
    bindings: Vec<Binding>,
    ctes: Vec<String>,
}

/// The scopes open at one point of the walk, innermost last.
#[derive(Debug, Default)]
pub(crate) struct Scopes(Vec<Scope>);

/// What a closed scope read: a relation and its columns (`None`: all of them).
pub(crate) type Read = (RelKey, Option<Vec<String>>);

impl Scopes {
    /// Opens a scope.
    pub fn push(&mut self) {
        self.0.push(Scope::default());
    }

    /// Closes the innermost scope: the relations it read, and the columns read of each.
    pub fn pop(&mut self) -> Vec<Read> {
        let Some(scope) = self.0.pop() else {
            return Vec::new();
        };
        let mut reads = Vec::new();
        for b in scope.bindings {
            let Some(rel) = b.rel else { continue };
            if (b.target && !b.reads.any()) || b.free {
                continue;
            }
            let cols = if b.reads.all || b.reads.cols.is_empty() {
                None
            } else {
                Some(b.reads.cols.into_iter().collect())
            };
            reads.push((rel, cols));
        }
        reads
    }

    /// Whether a CTE called `name` is visible here.
    pub fn cte_visible(&self, name: &str) -> bool {
        self.0
            .iter()
            .rev()
            .any(|s| s.ctes.iter().any(|c| c == name))
    }

    /// Makes a CTE name visible in the innermost scope.
    pub fn add_cte(&mut self, name: String) {
        if let Some(s) = self.0.last_mut() {
            s.ctes.push(name);
        }
    }

    /// Adds a binding to the innermost scope.
    pub fn bind(&mut self, b: Binding) {
        if let Some(s) = self.0.last_mut() {
            s.bindings.push(b);
        }
    }

    /// Reads through the binding called `alias` in the innermost scope need no SELECT.
    pub fn mark_free(&mut self, alias: &str) {
        if let Some(b) = self
            .0
            .last_mut()
            .and_then(|s| s.bindings.iter_mut().find(|b| b.alias == alias))
        {
            b.free = true;
        }
    }

    /// Marks the binding called `alias` in the innermost scope as a DML target; its relation.
    pub fn mark_target(&mut self, alias: &str) -> Option<RelKey> {
        let b = self
            .0
            .last_mut()?
            .bindings
            .iter_mut()
            .find(|b| b.alias == alias)?;
        b.target = true;
        b.rel.clone()
    }

    /// The alias of the one relation of the innermost scope that has the unqualified column
    /// `col` (derived tables and other pseudo-relations are never updated): the one whose
    /// known columns hold it, else the only one whose columns are unknown. `Err` with the
    /// candidates when more than one may have it (without a catalog, p0 cannot tell).
    pub fn column_owner(&self, col: &str) -> Result<Option<String>, Vec<String>> {
        let Some(scope) = self.0.last() else {
            return Ok(None);
        };
        let rels = || scope.bindings.iter().filter(|b| b.rel.is_some());
        let known: Vec<&Binding> = rels()
            .filter(|b| {
                b.columns
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|x| x == col))
            })
            .collect();
        let candidates: Vec<&Binding> = if known.is_empty() {
            rels().filter(|b| b.columns.is_none()).collect()
        } else {
            known
        };
        match candidates.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.alias.clone())),
            many => Err(many.iter().map(|b| b.alias.clone()).collect()),
        }
    }

    /// Attributes a column reference (`col` or `qual.col`) to the binding it names.
    pub fn resolve_column(&mut self, parts: &[String]) {
        match parts {
            [] => {}
            [col] => {
                for scope in self.0.iter_mut().rev() {
                    if scope.bindings.is_empty() {
                        continue;
                    }
                    if let Some(b) = scope.bindings.iter_mut().find(|b| {
                        b.columns
                            .as_ref()
                            .is_some_and(|c| c.iter().any(|x| x == col))
                    }) {
                        b.reads.cols.insert(col.clone());
                        return;
                    }
                    let unknown: Vec<&mut Binding> = scope
                        .bindings
                        .iter_mut()
                        .filter(|b| b.columns.is_none())
                        .collect();
                    if !unknown.is_empty() {
                        // Without a catalog the owner is unknown: attribute to every candidate
                        // (sound; the catalog makes it exact).
                        for b in unknown {
                            b.reads.cols.insert(col.clone());
                        }
                        return;
                    }
                }
            }
            [.., qual, col] => {
                for scope in self.0.iter_mut().rev() {
                    if let Some(b) = scope.bindings.iter_mut().find(|b| &b.alias == qual) {
                        b.reads.cols.insert(col.clone());
                        return;
                    }
                }
            }
        }
    }

    /// `*` or `qualifier.*`: every column of the innermost scope's bindings (or of one).
    pub fn read_all(&mut self, qualifier: Option<&str>) {
        if let Some(scope) = self.0.last_mut() {
            for b in scope.bindings.iter_mut() {
                if qualifier.is_none_or(|q| q == b.alias) {
                    b.reads.all = true;
                }
            }
        }
    }

    /// `JOIN ... USING (col)`: the column, of every binding of the innermost scope that may
    /// have it.
    pub fn read_column_everywhere(&mut self, col: &str) {
        if let Some(scope) = self.0.last_mut() {
            for b in scope.bindings.iter_mut() {
                if b.columns
                    .as_ref()
                    .is_none_or(|c| c.iter().any(|x| x == col))
                {
                    b.reads.cols.insert(col.to_string());
                }
            }
        }
    }
}
