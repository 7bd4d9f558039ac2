//! The syntax sqlparser 0.63 does not parse, rewritten in the tokens into syntax it does,
//! with the same privileges.

use super::Syntax;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Span, Token, TokenWithSpan};

/// Rewrites what sqlparser does not parse into what it does, with the same privileges:
/// PostgreSQL `FOR NO KEY UPDATE` / `FOR KEY SHARE` and `name := value` arguments, MySQL
/// `LOCK IN SHARE MODE`, `UPDATE a, b SET`, `FOR SYSTEM_TIME`, `HANDLER`, `NEXT VALUE FOR`,
/// `SET STATEMENT ... FOR` and `SET CHARACTER SET`.
pub(super) fn rewrite(tokens: &mut Vec<TokenWithSpan>, syntax: Syntax) {
    let is = |t: &TokenWithSpan, k: Keyword| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.keyword == k);
    // Indices of the significant tokens.
    let sig: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .collect();
    if syntax == Syntax::Postgres {
        // `:=` is only ever a named argument's operator in PostgreSQL's SQL.
        for t in tokens.iter_mut() {
            if t.token == Token::Assignment {
                t.token = Token::RArrow;
            }
        }
        super::table::table_as_select(tokens, &sig);
    }
    // `TABLE name` became `SELECT * FROM name`: the indices moved.
    let sig: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .collect();
    let mut drop = Vec::new();
    // Tokens to insert before a token (by index, in increasing order).
    let mut insert: Vec<(usize, Vec<Token>)> = Vec::new();
    let mut i = 0;
    while i < sig.len() {
        let at = |k: usize| sig.get(i + k).map(|&j| &tokens[j]);
        let kw = |k: usize, key: Keyword| at(k).is_some_and(|t| is(t, key));
        match syntax {
            Syntax::Postgres if kw(0, Keyword::FOR) => {
                if kw(1, Keyword::NO) && kw(2, Keyword::KEY) && kw(3, Keyword::UPDATE) {
                    drop.extend([sig[i + 1], sig[i + 2]]);
                    i += 4;
                    continue;
                }
                if kw(1, Keyword::KEY) && kw(2, Keyword::SHARE) {
                    drop.push(sig[i + 1]);
                    i += 3;
                    continue;
                }
            }
            // `UPDATE a, b SET ...` (a comma join sqlparser does not parse here) is read as
            // `UPDATE a JOIN b SET ...`: the same tables, the same privileges.
            Syntax::MySql(_)
                if kw(0, Keyword::UPDATE)
                    && (i == 0 || tokens[sig[i - 1]].token == Token::SemiColon) =>
            {
                let mut depth = 0usize;
                i += 1;
                while let Some(&j) = sig.get(i) {
                    match &tokens[j].token {
                        Token::LParen => depth += 1,
                        Token::RParen => depth = depth.saturating_sub(1),
                        Token::SemiColon => break,
                        Token::Comma if depth == 0 => tokens[j].token = Token::make_keyword("JOIN"),
                        _ if depth == 0 && is(&tokens[j], Keyword::SET) => break,
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            // `HANDLER t OPEN [AS a]` reads `t` (SELECT on it): read as `TABLE t`.
            // `HANDLER a READ ...` / `CLOSE` use the open handle, no privilege: read as
            // `SELECT 1`, unless they hold a call or a query.
            Syntax::MySql(_)
                if matches!(at(0), Some(t) if is_word(t, "HANDLER"))
                    && (i == 0 || tokens[sig[i - 1]].token == Token::SemiColon) =>
            {
                let end = (i..sig.len())
                    .find(|&k| tokens[sig[k]].token == Token::SemiColon)
                    .unwrap_or(sig.len());
                // The handle's name: words joined by periods.
                let mut k = i + 1;
                while k + 1 < end
                    && tokens[sig[k + 1]].token == Token::Period
                    && matches!(tokens[sig[k]].token, Token::Word(_))
                {
                    k += 2;
                }
                let verb = sig.get(k + 1).map(|&j| &tokens[j]);
                // `OPEN`, `OPEN alias` or `OPEN AS alias`, and nothing else.
                let word = |m: usize| matches!(tokens[sig[m]].token, Token::Word(_));
                let open = verb.is_some_and(|t| is(t, Keyword::OPEN))
                    && match end.saturating_sub(k + 2) {
                        0 => true,
                        1 => word(k + 2),
                        2 => is(&tokens[sig[k + 2]], Keyword::AS) && word(k + 3),
                        _ => false,
                    };
                // A query, or a call (a word before a parenthesis).
                let code = (k + 1..end).any(|m| {
                    let t = &tokens[sig[m]];
                    let call = matches!(t.token, Token::Word(_))
                        && sig
                            .get(m + 1)
                            .is_some_and(|&n| tokens[n].token == Token::LParen);
                    is(t, Keyword::SELECT) || call
                });
                let read = verb.is_some_and(|t| is(t, Keyword::READ) || is(t, Keyword::CLOSE));
                if k < end && (open || (read && !code)) {
                    if open {
                        tokens[sig[i]].token = Token::make_keyword("SELECT");
                        insert.push((sig[i + 1], vec![Token::Mul, Token::make_keyword("FROM")]));
                    } else {
                        tokens[sig[i]].token = Token::make_keyword("SELECT");
                        tokens[sig[i + 1]].token = Token::Number("1".into(), false);
                        drop.extend(sig[i + 2..=k].iter().copied());
                    }
                    drop.extend(sig[k + 1..end].iter().copied());
                }
                i = end;
                continue;
            }
            // `FOR SYSTEM_TIME ALL | AS OF x | BETWEEN x AND y | FROM x TO y` with literal
            // points in time reads the same table: dropped. Anything else stays, and does
            // not parse.
            Syntax::MySql(_) if kw(0, Keyword::FOR) && kw(1, Keyword::SYSTEM_TIME) => {
                let point = |k: usize| -> Option<usize> {
                    let lead =
                        usize::from(kw(k, Keyword::TIMESTAMP) || kw(k, Keyword::TRANSACTION));
                    let lit = at(k + lead)?;
                    matches!(lit.token, Token::SingleQuotedString(_) | Token::Number(..))
                        .then_some(k + lead + 1)
                };
                let after = if kw(2, Keyword::ALL) {
                    Some(3)
                } else if kw(2, Keyword::AS) && kw(3, Keyword::OF) {
                    point(4)
                } else if kw(2, Keyword::BETWEEN) {
                    point(3)
                        .filter(|&k| kw(k, Keyword::AND))
                        .and_then(|k| point(k + 1))
                } else if kw(2, Keyword::FROM) {
                    point(3)
                        .filter(|&k| kw(k, Keyword::TO))
                        .and_then(|k| point(k + 1))
                } else {
                    None
                };
                if let Some(n) = after {
                    drop.extend(sig[i..i + n].iter().copied());
                    i += n;
                    continue;
                }
            }
            // MariaDB's `NEXT VALUE FOR s` / `PREVIOUS VALUE FOR s` are `NEXTVAL(s)` /
            // `LASTVAL(s)`.
            Syntax::MySql(_)
                if at(0).is_some_and(|t| is_word(t, "NEXT") || is_word(t, "PREVIOUS"))
                    && at(1).is_some_and(|t| is_word(t, "VALUE"))
                    && kw(2, Keyword::FOR)
                    && at(3).is_some_and(|t| matches!(t.token, Token::Word(_))) =>
            {
                let func = if at(0).is_some_and(|t| is_word(t, "NEXT")) {
                    "NEXTVAL"
                } else {
                    "LASTVAL"
                };
                tokens[sig[i]].token = Token::make_word(func, None);
                drop.push(sig[i + 1]);
                tokens[sig[i + 2]].token = Token::LParen;
                let mut k = i + 3;
                while k + 2 < sig.len()
                    && tokens[sig[k + 1]].token == Token::Period
                    && matches!(tokens[sig[k + 2]].token, Token::Word(_))
                {
                    k += 2;
                }
                insert.push((
                    sig.get(k + 1).copied().unwrap_or(tokens.len()),
                    vec![Token::RParen],
                ));
                i = k + 1;
                continue;
            }
            // MariaDB's `SET STATEMENT a = 1, b = 2 FOR stmt` sets the variables for one
            // statement, with the privileges `SET SESSION` of them needs: read as
            // `SET SESSION a = 1, b = 2; stmt`. `SET CHARACTER SET x` is `SET NAMES x`.
            Syntax::MySql(_)
                if kw(0, Keyword::SET)
                    && (i == 0 || tokens[sig[i - 1]].token == Token::SemiColon) =>
            {
                if at(1).is_some_and(|t| is_word(t, "STATEMENT")) {
                    tokens[sig[i + 1]].token = Token::make_keyword("SESSION");
                    let mut depth = 0usize;
                    let mut k = i + 2;
                    while let Some(&j) = sig.get(k) {
                        match &tokens[j].token {
                            Token::LParen => depth += 1,
                            Token::RParen => depth = depth.saturating_sub(1),
                            Token::SemiColon => break,
                            _ if depth == 0 && is(&tokens[j], Keyword::FOR) => {
                                tokens[j].token = Token::SemiColon;
                                break;
                            }
                            _ => {}
                        }
                        k += 1;
                    }
                    i = k + 1;
                    continue;
                }
                if kw(1, Keyword::CHARACTER) && kw(2, Keyword::SET) {
                    tokens[sig[i + 1]].token = Token::make_keyword("NAMES");
                    drop.push(sig[i + 2]);
                    i += 3;
                    continue;
                }
                if kw(1, Keyword::CHARSET) {
                    tokens[sig[i + 1]].token = Token::make_keyword("NAMES");
                    i += 2;
                    continue;
                }
            }
            Syntax::MySql(_)
                if kw(0, Keyword::LOCK)
                    && kw(1, Keyword::IN)
                    && kw(2, Keyword::SHARE)
                    && kw(3, Keyword::MODE) =>
            {
                tokens[sig[i]].token = Token::make_keyword("FOR");
                drop.extend([sig[i + 1], sig[i + 3]]);
                i += 4;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if drop.is_empty() && insert.is_empty() {
        return;
    }
    // `drop` and `insert` are in increasing order.
    let mut drop = drop.into_iter().peekable();
    let mut insert = insert.into_iter().peekable();
    let old = std::mem::take(tokens);
    for (idx, t) in old.into_iter().enumerate() {
        if let Some((_, new)) = insert.next_if(|(at, _)| *at == idx) {
            for token in new {
                tokens.push(TokenWithSpan {
                    token,
                    span: t.span,
                });
            }
        }
        if drop.next_if(|&at| at == idx).is_none() {
            tokens.push(t);
        }
    }
    // Past the last token.
    for (_, new) in insert {
        let span = tokens.last().map_or_else(Span::empty, |t| t.span);
        tokens.extend(new.into_iter().map(|token| TokenWithSpan { token, span }));
    }
}

fn is_word(t: &TokenWithSpan, word: &str) -> bool {
    matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}
