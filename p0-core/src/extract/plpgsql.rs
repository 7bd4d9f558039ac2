//! The SQL inside a PL/pgSQL body, read as plain SQL statements: text in, text out, so that
//! the walk can treat a function body like any other text it parses.

/// The SQL statements inside a PL/pgSQL body, as plain SQL: `SELECT ... INTO var` loses its
/// INTO, `PERFORM` becomes SELECT, assignments become SELECT of their expression.
pub(crate) fn statements(body: &str) -> Vec<String> {
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
        if let Some(expr) = returned_expression(&piece, &upper) {
            out.push(format!("SELECT {expr}"));
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

/// The expression of `RETURN expr` when it may call or read something (`RETURN QUERY` and
/// `RETURN NEXT` are statements of their own; `RETURN NEW` reads nothing).
fn returned_expression<'a>(piece: &'a str, upper: &str) -> Option<&'a str> {
    let at = find_keyword(upper, &["RETURN"])?;
    let first = find_keyword(
        upper,
        &[
            "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "PERFORM", "MERGE", "TRUNCATE",
        ],
    );
    if first.is_some_and(|f| f < at) {
        return None;
    }
    let rest = piece[at + "RETURN".len()..].trim();
    let rest_up = rest.to_ascii_uppercase();
    if rest.is_empty()
        || find_keyword(&rest_up, &["QUERY", "NEXT"]) == Some(0)
        || !rest.contains('(')
    {
        return None;
    }
    Some(rest)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plpgsql_bodies_become_plain_sql() {
        let body = "DECLARE v int; BEGIN\n -- comment; with semicolon\n SELECT count(*) INTO v FROM rental WHERE x = 1;\n IF v = 0 THEN RETURN TRUE; END IF;\n PERFORM f(1);\n v := (SELECT max(a) FROM t);\n FOR r IN SELECT * FROM u LOOP\n END LOOP;\nEND";
        let stmts = statements(body);
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

    #[test]
    fn a_returned_subquery_is_read() {
        let stmts = statements("BEGIN RETURN (SELECT note FROM notes WHERE id = $1); END");
        assert_eq!(stmts, vec!["SELECT (SELECT note FROM notes WHERE id = $1)"]);
        let stmts = statements("BEGIN RETURN QUERY SELECT a FROM t; RETURN NEW; END");
        assert_eq!(stmts, vec!["SELECT a FROM t"]);
    }
}
