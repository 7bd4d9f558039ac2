//! PostgreSQL's `TABLE name`, read as the `SELECT * FROM name` it is.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

/// PostgreSQL's `TABLE name` where a query starts (a statement, a parenthesis, a set
/// operation, `AS`, `EXPLAIN`, `INSERT INTO t`) is `SELECT * FROM name`. sqlparser reads the
/// name without its quotes and takes the next two tokens with it, so it is rewritten here,
/// where the name keeps its quoting.
pub(super) fn table_as_select(tokens: &mut Vec<TokenWithSpan>, sig: &[usize]) {
    let word = |j: usize| match &tokens[j].token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    let mut at = Vec::new();
    for (n, &j) in sig.iter().enumerate() {
        if word(j) != Some(Keyword::TABLE) {
            continue;
        }
        let before = |k: usize| n.checked_sub(k).map(|m| sig[m]);
        let starts_query = match before(1) {
            None => true,
            Some(p) => match &tokens[p].token {
                Token::SemiColon | Token::LParen | Token::RParen => true,
                Token::Word(w)
                    if w.quote_style.is_none()
                        && matches!(
                            w.keyword,
                            Keyword::UNION
                                | Keyword::INTERSECT
                                | Keyword::EXCEPT
                                | Keyword::ALL
                                | Keyword::DISTINCT
                                | Keyword::AS
                                | Keyword::EXPLAIN
                                | Keyword::ANALYZE
                                | Keyword::VERBOSE
                        ) =>
                {
                    true
                }
                // `INSERT INTO [schema.]t TABLE s`
                Token::Word(_) => {
                    before(2).and_then(word) == Some(Keyword::INTO)
                        || (before(2).is_some_and(|q| tokens[q].token == Token::Period)
                            && before(4).and_then(word) == Some(Keyword::INTO))
                }
                _ => false,
            },
        };
        if starts_query {
            at.push(j);
        }
    }
    for &j in at.iter().rev() {
        let span = tokens[j].span;
        let with = |token: Token| TokenWithSpan { token, span };
        let space = || with(Token::Whitespace(Whitespace::Space));
        tokens.splice(
            j..=j,
            [
                with(Token::make_keyword("SELECT")),
                space(),
                with(Token::Mul),
                space(),
                with(Token::make_keyword("FROM")),
            ],
        );
    }
}
