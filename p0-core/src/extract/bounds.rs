//! Bounds on one extraction, checked before anything parses deeply.
//!
//! Any requester can send SQL, and any user who may create a function or view can plant SQL
//! that extraction will read. sqlparser parses operator chains (`1+1+...`, `a AND b AND ...`,
//! `'a'||'b'||...`, `x::t::t...`, `... UNION ...`) in a loop, without recursion, into trees as
//! deep as the chain is long; walking, formatting and dropping such a tree recurse once per
//! level, and around 25,000 levels overflow a 2 MiB thread stack. So the text is first
//! tokenized (linear, no recursion), its nesting depth is bounded from the tokens alone, and
//! only then is it parsed: a tree deeper than the bound is never built, so it is never
//! walked or dropped either. Parentheses and subqueries are also bounded by sqlparser's own
//! recursion counter.

use crate::error::ExtractError;
use sqlparser::ast::{Expr, Statement};
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use std::time::Duration;

mod comments;
mod rewrite;
mod table;
pub(crate) use comments::ServerVersion;

/// sqlparser's own limit on recursive descent (parentheses, subqueries, prefix operators).
pub(crate) const PARSER_RECURSION_LIMIT: usize = 50;

/// What one extraction may cost. Past any bound, extraction stops with a one-line error that
/// names it; nothing is left half-done.
///
/// The defaults fit any query a person writes, and large generated ones (`IN` lists of
/// thousands of values, `OR` chains of hundreds of terms), while keeping the worst case small:
/// at 64 KiB the tokens and tree of one text take a few MiB; at the depth bound walking,
/// formatting and dropping the tree use well under a tenth of a 2 MiB thread stack (debug
/// build; measured in `bounds::tests`); the time budget is far above what a bounded text
/// costs and only stops what slipped past the other bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest text parsed, in bytes: the request's SQL, and each function body, view
    /// definition or column default that extraction reads from the catalog. Default 64 KiB.
    pub max_bytes: usize,
    /// The deepest nesting allowed, estimated from the tokens before parsing: each operator
    /// of a chain and each parenthesis, bracket or CASE counts as one level. An estimate that
    /// never undercounts the depth of the tree sqlparser would build. Default 1,000.
    pub max_depth: usize,
    /// Wall-clock budget of one extraction, checked while walking and resolving. Default 2 s.
    pub time_budget: Duration,
    /// The most catalog lookups (relations, functions, view and function bodies, column
    /// defaults) one extraction may make. Default 10,000.
    pub max_catalog_lookups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 1_000,
            time_budget: Duration::from_secs(2),
            max_catalog_lookups: 10_000,
        }
    }
}

/// The dialect's syntax that sqlparser 0.63 does not parse, read as syntax it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// PostgreSQL: `FOR NO KEY UPDATE` and `FOR KEY SHARE` are read as `FOR UPDATE` and
    /// `FOR SHARE` (the same privileges); named arguments `f(a := 1)` as `f(a => 1)`.
    Postgres,
    /// MySQL / MariaDB: comments are read as this server version's lexer reads them
    /// (executable comments run or skipped, `comments`), and `LOCK IN SHARE MODE`, which
    /// sqlparser does not parse, is read as `FOR SHARE`.
    MySql(ServerVersion),
}

/// Parses `sql` into statements within `limits`; `what` names the text in errors (`query`,
/// `body of function `s.f``).
pub(crate) fn parse_statements(
    dialect: &dyn Dialect,
    sql: &str,
    what: &str,
    limits: &Limits,
    syntax: Syntax,
) -> Result<Vec<Statement>, ExtractError> {
    let tokens = tokens(dialect, sql, what, limits, syntax)?;
    Parser::new(dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(parse_error)
}

/// The code the server reads in `sql`: for MySQL, without comments and with the
/// executable comments that run (`sql` itself when that fails).
pub(crate) fn code_text(sql: &str, syntax: Syntax) -> String {
    match syntax {
        Syntax::MySql(version) => comments::expand(sql, version).unwrap_or_else(|_| sql.into()),
        Syntax::Postgres => sql.into(),
    }
}

/// Parses `sql` as one expression (a column default) within `limits`.
pub(crate) fn parse_expression(
    dialect: &dyn Dialect,
    sql: &str,
    what: &str,
    limits: &Limits,
) -> Result<Expr, ExtractError> {
    let tokens = tokens(dialect, sql, what, limits, Syntax::Postgres)?;
    Parser::new(dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_expr()
        .map_err(parse_error)
}

fn parse_error(e: ParserError) -> ExtractError {
    match e {
        ParserError::RecursionLimitExceeded => ExtractError::TooDeep {
            what: "parenthesis and subquery".into(),
            max: PARSER_RECURSION_LIMIT,
        },
        other => ExtractError::Parse(one_line(&other.to_string())),
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Size check, tokens, lock clauses rewritten, depth check.
fn tokens(
    dialect: &dyn Dialect,
    sql: &str,
    what: &str,
    limits: &Limits,
    syntax: Syntax,
) -> Result<Vec<TokenWithSpan>, ExtractError> {
    if sql.len() > limits.max_bytes {
        return Err(ExtractError::TooLarge {
            what: what.into(),
            max: limits.max_bytes,
        });
    }
    // The size bound holds for the expanded text too: it is never longer.
    let expanded;
    let sql = match syntax {
        Syntax::MySql(version) => {
            expanded = comments::expand(sql, version)?;
            expanded.as_str()
        }
        Syntax::Postgres => sql,
    };
    let mut tokens = Tokenizer::new(dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| ExtractError::Parse(one_line(&e.to_string())))?;
    // Rewritten first, so that the estimate counts what sqlparser will parse.
    rewrite::rewrite(&mut tokens, syntax);
    if nesting(&tokens, limits.max_depth) > limits.max_depth {
        return Err(ExtractError::TooDeep {
            what: what.into(),
            max: limits.max_depth,
        });
    }
    Ok(tokens)
}

/// Keywords that never add a level to the tree: clause and list keywords, and the words
/// inside CASE. Every other keyword counts as an operator (AND, OR, NOT, IS, IN, BETWEEN,
/// LIKE, COLLATE, AT, OPERATOR, ...): counting too much only makes the estimate larger.
const FLAT: &[Keyword] = &[
    Keyword::SELECT,
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::ORDER,
    Keyword::BY,
    Keyword::HAVING,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::FETCH,
    Keyword::AS,
    Keyword::ON,
    Keyword::INNER,
    Keyword::LEFT,
    Keyword::RIGHT,
    Keyword::FULL,
    Keyword::OUTER,
    Keyword::CROSS,
    Keyword::NATURAL,
    Keyword::USING,
    Keyword::LATERAL,
    Keyword::DISTINCT,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::INSERT,
    Keyword::INTO,
    Keyword::VALUES,
    Keyword::UPDATE,
    Keyword::SET,
    Keyword::DELETE,
    Keyword::WITH,
    Keyword::RECURSIVE,
    Keyword::RETURNING,
    Keyword::ASC,
    Keyword::DESC,
    Keyword::NULLS,
    Keyword::FIRST,
    Keyword::LAST,
    Keyword::FOR,
    Keyword::SHARE,
    Keyword::NOWAIT,
    Keyword::SKIP,
    Keyword::LOCKED,
    Keyword::NULL,
    Keyword::TRUE,
    Keyword::FALSE,
    Keyword::DEFAULT,
    Keyword::OVER,
    Keyword::PARTITION,
    Keyword::FILTER,
    Keyword::WINDOW,
];

/// What one nested JOIN costs in the estimate. sqlparser parses `a JOIN b JOIN c ...` (joins
/// whose ON comes later) by recursion that its recursion counter does not see, about 7 KiB of
/// stack per level in a debug build: each JOIN counts as this many levels, so that the depth
/// bound allows 100 joins in one FROM list.
const JOIN_WEIGHT: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    Root,
    Paren,
    Case,
}

/// One open level: parentheses (or brackets, braces), CASE ... END, or the statement.
#[derive(Clone, Copy)]
struct Level {
    kind: Frame,
    /// Set operators so far (they chain whole SELECTs, commas included).
    sets: usize,
    /// In the current list item: operators, JOINs, and the deepest level closed inside it.
    ops: usize,
    joins: usize,
    child: usize,
    /// The deepest list item finished so far.
    best: usize,
}

impl Level {
    fn new(kind: Frame) -> Self {
        Self {
            kind,
            sets: 0,
            ops: 0,
            joins: 0,
            child: 0,
            best: 0,
        }
    }

    fn item(&self) -> usize {
        self.ops + self.child + JOIN_WEIGHT * self.joins
    }

    /// The depth of the tree under this level, as far as it is known.
    fn value(&self) -> usize {
        1 + self.sets + self.best.max(self.item())
    }

    /// What this level adds above the one open inside it.
    fn path(&self) -> usize {
        1 + self.sets + self.ops + JOIN_WEIGHT * self.joins
    }

    fn end_item(&mut self) {
        self.best = self.best.max(self.item());
        self.ops = 0;
        self.joins = 0;
        self.child = 0;
    }
}

/// An upper bound on the depth of the tree the tokens parse into, computed in one pass
/// without recursion; stops once past `cap`.
///
/// In a left-deep chain (`a + b + c`, `x::t::t`, `... UNION ...`) the first operand is the
/// deepest: it sits under every operator of the chain, before and after it. So within one
/// list item (up to a comma) of one level (parentheses, brackets, braces, CASE ... END),
/// every operator token and every keyword outside [`FLAT`] counts as a level, JOINs count
/// [`JOIN_WEIGHT`], and the deepest level nested in the item is added to them. Set
/// operators count across commas, until the statement ends.
pub(crate) fn nesting(tokens: &[TokenWithSpan], cap: usize) -> usize {
    let mut stack: Vec<Level> = vec![Level::new(Frame::Root)];
    // The sum of `path()` over every level but the top one: with the top's `value()`, a
    // lower bound of the result.
    let mut below = 0usize;
    let mut deepest = 0usize;
    let mut prev: Option<Keyword> = None;
    for t in tokens {
        let mut keyword = None;
        match &t.token {
            Token::Whitespace(_) | Token::EOF | Token::Period => continue,
            Token::LParen | Token::LBracket | Token::LBrace => {
                open(&mut stack, &mut below, Frame::Paren)
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                // Closes the innermost parentheses, and any CASE left open inside them.
                while stack.len() > 1 {
                    let kind = close(&mut stack, &mut below);
                    if kind == Frame::Paren {
                        break;
                    }
                }
            }
            Token::Comma => top(&mut stack).end_item(),
            Token::SemiColon => {
                deepest = deepest.max(finish(&mut stack, &mut below));
            }
            Token::Word(w) if w.quote_style.is_none() => {
                keyword = Some(w.keyword);
                match w.keyword {
                    Keyword::NoKeyword => {}
                    Keyword::CASE => open(&mut stack, &mut below, Frame::Case),
                    Keyword::END if top(&mut stack).kind == Frame::Case => {
                        close(&mut stack, &mut below);
                    }
                    Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT | Keyword::MINUS => {
                        top(&mut stack).sets += 1
                    }
                    // CROSS and NATURAL joins never nest.
                    Keyword::JOIN if matches!(prev, Some(Keyword::CROSS | Keyword::NATURAL)) => {}
                    Keyword::JOIN => top(&mut stack).joins += 1,
                    k if FLAT.contains(&k) => {}
                    _ => top(&mut stack).ops += 1,
                }
            }
            Token::Word(_) => {}
            t if is_literal(t) => {}
            _ => top(&mut stack).ops += 1,
        }
        prev = keyword;
        if below + top(&mut stack).value() > cap {
            return cap + 1;
        }
    }
    deepest.max(finish(&mut stack, &mut below))
}

fn top(stack: &mut [Level]) -> &mut Level {
    let last = stack.len() - 1;
    &mut stack[last]
}

fn open(stack: &mut Vec<Level>, below: &mut usize, kind: Frame) {
    *below += top(stack).path();
    stack.push(Level::new(kind));
}

/// Closes the top level (never the statement's); its depth becomes a child of its parent.
fn close(stack: &mut Vec<Level>, below: &mut usize) -> Frame {
    let Some(done) = stack.pop() else {
        return Frame::Root;
    };
    let parent = top(stack);
    *below = below.saturating_sub(parent.path());
    parent.child = parent.child.max(done.value());
    done.kind
}

/// Closes every level at the end of a statement; the statement's depth.
fn finish(stack: &mut Vec<Level>, below: &mut usize) -> usize {
    while stack.len() > 1 {
        close(stack, below);
    }
    let depth = stack[0].value();
    stack[0] = Level::new(Frame::Root);
    *below = 0;
    depth
}

fn is_literal(t: &Token) -> bool {
    matches!(
        t,
        Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Placeholder(_)
    )
}

#[cfg(test)]
mod tests;
