//! The syntax sqlparser 0.63 does not parse, rewritten in the tokens into syntax it does,
//! with the same privileges.

use super::Syntax;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Rewrites what sqlparser does not parse into what it does, with the same privileges:
/// PostgreSQL `FOR NO KEY UPDATE` / `FOR KEY SHARE` and `name := value` arguments, MySQL
/// `LOCK IN SHARE MODE`.
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
    }
    let mut drop = Vec::new();
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
    if drop.is_empty() {
        return;
    }
    // `drop` is in increasing order.
    let mut next = drop.into_iter().peekable();
    let mut idx = 0;
    tokens.retain(|_| {
        let keep = next.peek() != Some(&idx);
        if !keep {
            next.next();
        }
        idx += 1;
        keep
    });
}
