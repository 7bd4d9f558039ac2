//! The SQL inside a MariaDB / MySQL routine body (a compound statement: `BEGIN ... END`,
//! `DECLARE`, `IF`, loops, handlers), read as plain SQL statements: text in, text out, as
//! [`super::plpgsql`] does for PL/pgSQL. What the control flow evaluates (conditions,
//! `DECLARE ... DEFAULT`, `SET var = expr`, `RETURN expr`) becomes `SELECT expr`; `SELECT ...
//! INTO var` loses its INTO; statements are kept as they are. Variables and parameters read
//! like columns no relation has, which need no privilege.

use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// The SQL statements inside a routine body. A body that does not tokenize is returned
/// whole: it then fails to parse and is reported.
pub(crate) fn statements(body: &str) -> Vec<String> {
    let Ok(tokens) = Tokenizer::new(&MySqlDialect {}, body).tokenize() else {
        return vec![body.to_string()];
    };
    let tokens: Vec<Token> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::SemiColon if depth == 0 => {
                piece(&tokens[start..i], &mut out);
                start = i + 1;
            }
            _ => {}
        }
    }
    piece(&tokens[start..], &mut out);
    out
}

/// The upper-case keyword of an unquoted word.
fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn is(t: Option<&Token>, keyword: &str) -> bool {
    t.and_then(word).as_deref() == Some(keyword)
}

fn text(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(Token::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The index of the first of `keywords` at parenthesis depth 0, from `from`.
fn find(tokens: &[Token], from: usize, keywords: &[&str]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(from) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ if depth == 0 && word(t).is_some_and(|w| keywords.contains(&w.as_str())) => {
                return Some(i)
            }
            _ => {}
        }
    }
    None
}

/// `SELECT expr` for an expression the routine evaluates.
fn evaluate(expr: &[Token], out: &mut Vec<String>) {
    if !expr.is_empty() {
        out.push(format!("SELECT {}", text(expr)));
    }
}

/// The words a statement starts with, where a handler's condition list ends.
const STATEMENT_START: &[&str] = &[
    "SET", "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "CALL", "BEGIN", "WITH", "IF",
    "RETURN", "DO",
];

/// One piece between semicolons: control flow peeled off, then what is left.
fn piece(tokens: &[Token], out: &mut Vec<String>) {
    let mut t = tokens;
    loop {
        let Some(first) = t.first().and_then(word) else {
            // A label (`l1: LOOP`) is a word and a colon.
            if matches!(t.first(), Some(Token::Word(_))) && matches!(t.get(1), Some(Token::Colon)) {
                t = &t[2..];
                continue;
            }
            break;
        };
        if matches!(t.get(1), Some(Token::Colon)) {
            t = &t[2..];
            continue;
        }
        match first.as_str() {
            // `BEGIN NOT ATOMIC`
            "BEGIN" if is(t.get(1), "NOT") && is(t.get(2), "ATOMIC") => t = &t[3..],
            "BEGIN" | "ELSE" | "LOOP" | "REPEAT" => t = &t[1..],
            // `END`, `END IF`, `END LOOP label`: nothing left in this piece.
            "END" | "OPEN" | "CLOSE" | "FETCH" | "LEAVE" | "ITERATE" | "SIGNAL" | "RESIGNAL"
            | "GET" => return,
            "IF" | "ELSEIF" | "WHILE" | "WHEN" | "UNTIL" => {
                let end = find(t, 1, &["THEN", "DO", "END"]).unwrap_or(t.len());
                evaluate(&t[1..end], out);
                t = t.get(end + 1..).unwrap_or_default();
            }
            // A CASE statement's operand, compared by each WHEN.
            "CASE" => {
                let end = find(t, 1, &["WHEN"]).unwrap_or(t.len());
                evaluate(&t[1..end], out);
                t = &t[end..];
            }
            "RETURN" => return evaluate(&t[1..], out),
            "DECLARE" => return declare(t, out),
            "SET" => return set(t, out),
            "SELECT" | "WITH" => return out.push(text(&without_into(t))),
            _ => break,
        }
    }
    if !t.is_empty() {
        out.push(text(t));
    }
}

/// `DECLARE v INT DEFAULT expr`, `DECLARE c CURSOR FOR select`, `DECLARE ... HANDLER FOR
/// condition statement`; conditions declare nothing that runs.
fn declare(t: &[Token], out: &mut Vec<String>) {
    if let Some(at) = find(t, 1, &["CURSOR"]) {
        if is(t.get(at + 1), "FOR") {
            return piece(&t[at + 2..], out);
        }
    }
    if let Some(at) = find(t, 1, &["HANDLER"]) {
        let rest = &t[at + 1..];
        if let Some(s) = find(rest, 1, STATEMENT_START) {
            piece(&rest[s..], out);
        }
        return;
    }
    if let Some(at) = find(t, 1, &["DEFAULT"]) {
        evaluate(&t[at + 1..], out);
    }
}

/// `SET var = expr, @u = expr`: the expressions. A server variable's SET (`GLOBAL`, `SESSION`,
/// `@@x`, `NAMES`, `TRANSACTION`, ...) is kept as a statement, for the walk to judge.
fn set(t: &[Token], out: &mut Vec<String>) {
    let server = match t.get(1) {
        Some(Token::Word(w)) if w.quote_style.is_none() && w.value.starts_with("@@") => true,
        Some(Token::Word(w)) if w.quote_style.is_none() => matches!(
            w.value.to_ascii_uppercase().as_str(),
            "GLOBAL"
                | "SESSION"
                | "LOCAL"
                | "PERSIST"
                | "NAMES"
                | "CHARACTER"
                | "CHARSET"
                | "TRANSACTION"
                | "PASSWORD"
                | "ROLE"
                | "DEFAULT"
                | "STATEMENT"
                | "SQL_LOG_BIN"
                | "AUTOCOMMIT"
        ),
        Some(Token::Word(_)) => false,
        _ => true,
    };
    if server {
        return out.push(text(t));
    }
    let mut depth = 0usize;
    let mut start = 1;
    let mut assignments = Vec::new();
    for (i, tok) in t.iter().enumerate().skip(1) {
        match tok {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                assignments.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    assignments.push(&t[start..]);
    for a in assignments {
        match a
            .iter()
            .position(|x| matches!(x, Token::Eq | Token::Assignment))
        {
            Some(eq) => evaluate(&a[eq + 1..], out),
            // Not an assignment p0 knows: kept, for the walk to judge.
            None => return out.push(text(t)),
        }
    }
}

/// A SELECT without its `INTO var, ...` (the routine's variables); `INTO OUTFILE` and
/// `INTO DUMPFILE` stay, for the walk to refuse.
fn without_into(t: &[Token]) -> Vec<Token> {
    let Some(at) = find(t, 0, &["INTO"]) else {
        return t.to_vec();
    };
    if is(t.get(at + 1), "OUTFILE") || is(t.get(at + 1), "DUMPFILE") {
        return t.to_vec();
    }
    // The variables: names (or `@u`) separated by commas.
    let mut end = at + 1;
    while end < t.len() {
        end += 1;
        if !matches!(t.get(end), Some(Token::Comma)) {
            break;
        }
        end += 1;
    }
    let mut kept = t[..at].to_vec();
    kept.extend_from_slice(&t[end.min(t.len())..]);
    kept
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn control_flow_becomes_the_statements_and_expressions_it_runs() {
        let body = "BEGIN
          DECLARE n INT DEFAULT (SELECT COUNT(*) FROM shop.a);
          DECLARE done INT DEFAULT 0;
          DECLARE c CURSOR FOR SELECT id FROM shop.b;
          DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
          l1: LOOP
            FETCH c INTO n;
            IF (SELECT MAX(x) FROM shop.c) > n THEN UPDATE shop.d SET x = n; END IF;
            LEAVE l1;
          END LOOP l1;
          SELECT total INTO n FROM shop.e WHERE id = n;
          SET n = (SELECT MIN(y) FROM shop.f), @g = shop.fn(1);
          CASE n WHEN 1 THEN CALL shop.p(); ELSE INSERT INTO shop.g VALUES (1); END CASE;
          RETURN (SELECT 1 FROM shop.h);
        END";
        let got = statements(body);
        let want = [
            "SELECT ( SELECT COUNT ( * ) FROM shop . a )",
            "SELECT 0",
            "SELECT id FROM shop . b",
            "SELECT 1",
            "SELECT ( SELECT MAX ( x ) FROM shop . c ) > n",
            "UPDATE shop . d SET x = n",
            "SELECT total FROM shop . e WHERE id = n",
            "SELECT ( SELECT MIN ( y ) FROM shop . f )",
            "SELECT shop . fn ( 1 )",
            "SELECT n",
            "SELECT 1",
            "CALL shop . p ( )",
            "INSERT INTO shop . g VALUES ( 1 )",
            "SELECT ( SELECT 1 FROM shop . h )",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn server_settings_and_files_are_kept_for_the_walk_to_refuse() {
        let got = statements("BEGIN SET GLOBAL x = 1; SELECT a INTO OUTFILE '/tmp/f' FROM t; END");
        assert_eq!(
            got,
            ["SET GLOBAL x = 1", "SELECT a INTO OUTFILE '/tmp/f' FROM t"]
        );
    }
}
