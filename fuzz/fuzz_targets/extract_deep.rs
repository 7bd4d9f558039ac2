//! Deep and long SQL, built from a short recipe, through both extractors: an error is fine,
//! a panic, a stack overflow or a hang is not.
//!
//! `extract` sees at most `-max_len` bytes of text, too short for the chains that overflowed
//! the agent (issue 13: `SELECT 1+1+...`, 40,000 terms). Here the input is a recipe instead:
//! a head, a fragment repeated up to 60,000 times, a closing fragment repeated as often, and
//! a tail, each picked from a dictionary of SQL pieces or taken from the input as text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p0_core::extract::{Limits, MySqlExtractor, PostgresExtractor};
use p0_core::PermissionExtractor;

const HEADS: &[&str] = &[
    "SELECT ",
    "SELECT * FROM t WHERE ",
    "SELECT * FROM ",
    "SELECT 1 FROM t",
    "CALL ",
    "INSERT INTO t VALUES (",
    "UPDATE t SET a = ",
    "WITH x AS (",
    "",
];
const PIECES: &[&str] = &[
    "1 + ", "1+", "a AND ", "a OR ", "'a' || ", "::int", " IS NULL", "NOT ", "- ", "(", "f(",
    "ARRAY[", "CASE WHEN a THEN ", "a[1]", "a.", "x -> ", "SELECT 1 UNION ", "t JOIN ",
    " JOIN t JOIN t ON true", "(t JOIN ", "(SELECT x FROM t WHERE x IN ", "EXPLAIN ",
    " FOR UPDATE", " FOR NO KEY UPDATE", " LOCK IN SHARE MODE", "f(a => ", "f(a := ",
    "x AT TIME ZONE 'utc' + ", "1, ", "; SELECT 1", "/* ", "'", "\"", "$$", "EXISTS (",
];
const CLOSES: &[&str] = &["", ")", "]", " END", " ON true)", "))", " */"];
const TAILS: &[&str] = &["1", "true", "t", "'b'", "SELECT 1", "t ON true", "(1)", ""];

fn pick<'a>(list: &[&'a str], b: u8) -> &'a str {
    list[b as usize % list.len()]
}

fuzz_target!(|data: &[u8]| {
    let [h, p, c, t, n0, n1, rest @ ..] = data else {
        return;
    };
    let n = (u16::from_le_bytes([*n0, *n1]) as usize).min(60_000);
    // A piece of the input's own text, when it is some, instead of the dictionary's.
    let own = std::str::from_utf8(rest).ok().filter(|s| !s.is_empty() && s.len() <= 64);
    let piece = match own {
        Some(s) if p & 0x80 != 0 => s,
        _ => pick(PIECES, *p),
    };
    let close = pick(CLOSES, *c);
    let mut sql = String::with_capacity(n * (piece.len() + close.len()) + 64);
    sql.push_str(pick(HEADS, *h));
    for _ in 0..n {
        sql.push_str(piece);
    }
    sql.push_str(pick(TAILS, *t));
    for _ in 0..n {
        sql.push_str(close);
    }
    // Past the default size bound as well as within it.
    let mut big = Limits::default();
    big.max_bytes = 4 << 20;
    for limits in [Limits::default(), big] {
        let _ = PostgresExtractor::new().with_limits(limits).extract(&sql);
        let _ = MySqlExtractor::new(Some("db".into()))
            .with_limits(limits)
            .extract(&sql);
    }
});
