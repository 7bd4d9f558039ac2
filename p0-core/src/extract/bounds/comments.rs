//! MariaDB's comments, read as its lexer reads them (`sql_lex.cc`), before sqlparser sees
//! the text: ordinary comments (`/* */`, `#`, `-- `) are skipped, and executable comments
//! (`/*! ... */`, `/*M! ... */`, with an optional 5- or 6-digit version) are executed when
//! the server is at least that version and skipped otherwise. The result has no comment
//! left, so sqlparser (which would execute every `/*!` and skip every `/*M!`) reads exactly
//! the code the server runs; strings are copied as they are.
//!
//! What the lexer reads in a way p0 does not follow — a comment inside an executable
//! comment, a `;` inside one, one left open, a version that depends on the server's patch
//! level when it is not known — is refused, never guessed.

use crate::error::ExtractError;

/// The MariaDB version whose lexer p0 follows: `MYSQL_VERSION_ID` (10.11.5 is 101105), and
/// whether its patch level is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerVersion {
    /// `major * 10000 + minor * 100 + patch`.
    pub id: u32,
    /// When false, `id` is `major.minor.00` and the patch is unknown: a comment versioned
    /// within that minor release is refused.
    pub patch_known: bool,
}

impl ServerVersion {
    /// MariaDB 10.11 (Debian's), patch level unknown.
    pub const DEFAULT: Self = Self {
        id: 10_11_00,
        patch_known: false,
    };

    /// Whether the server executes a comment versioned `v` (`maria`: written `/*M!`).
    fn executes(&self, v: u32, maria: bool) -> Result<bool, ExtractError> {
        // MariaDB skips MySQL 5.7+ versions in `/*!` (they may hold syntax it lacks).
        let mysql_only = !maria && (50_700..=99_999).contains(&v);
        if mysql_only {
            return Ok(false);
        }
        if !self.patch_known && v > self.id && v < self.id + 100 {
            return Err(ExtractError::Unsupported(format!(
                "executable comment for version {v}: whether it runs depends on the server's patch level"
            )));
        }
        Ok(v <= self.id)
    }
}

fn nested() -> ExtractError {
    ExtractError::Unsupported(
        "a comment or `;` inside an executable comment `/*! */`: write the statement without it"
            .into(),
    )
}

fn open_comment() -> ExtractError {
    ExtractError::Parse("comment not closed with `*/`".into())
}

/// The text the server runs: every comment replaced by one space, executable comments that
/// run by their content. Never longer than `sql`.
pub(crate) fn expand(sql: &str, version: ServerVersion) -> Result<String, ExtractError> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    // Inside an executable comment that runs: its `*/` ends it.
    let mut in_exec = false;
    let mut i = 0;
    // Copies bytes [from, to) (always whole characters: every boundary is an ASCII byte).
    let copy = |out: &mut String, from: usize, to: usize| out.push_str(&sql[from..to]);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                let end = quoted_end(b, i, q).ok_or_else(|| {
                    ExtractError::Parse(format!(
                        "quoted text opened with `{}` not closed",
                        q as char
                    ))
                })?;
                copy(&mut out, i, end);
                i = end;
            }
            b'#' => {
                i = line_end(b, i);
                out.push(' ');
            }
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2)
                    .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
            {
                i = line_end(b, i);
                out.push(' ');
            }
            b'*' if in_exec && b.get(i + 1) == Some(&b'/') => {
                in_exec = false;
                i += 2;
                out.push(' ');
            }
            b';' if in_exec => return Err(nested()),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                if in_exec {
                    return Err(nested());
                }
                let maria = b.get(i + 2) == Some(&b'M') && b.get(i + 3) == Some(&b'!');
                if b.get(i + 2) != Some(&b'!') && !maria {
                    i = comment_end(b, i + 2).ok_or_else(open_comment)?;
                    out.push(' ');
                    continue;
                }
                let mut j = i + if maria { 4 } else { 3 };
                let digits = b[j..]
                    .iter()
                    .take(6)
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                let runs = if digits >= 5 {
                    let v: u32 = sql[j..j + digits].parse().map_err(|_| open_comment())?;
                    j += digits;
                    version.executes(v, maria)?
                } else {
                    true
                };
                out.push(' ');
                if runs {
                    in_exec = true;
                    i = j;
                } else {
                    let end = comment_end(b, j).ok_or_else(open_comment)?;
                    if sql[j..end].contains("/*") {
                        return Err(nested());
                    }
                    i = end;
                }
            }
            _ => {
                // Copies up to the next byte that may start something.
                let end = b[i + 1..]
                    .iter()
                    .position(|c| b"'\"`#-*;/".contains(c))
                    .map_or(b.len(), |p| i + 1 + p);
                copy(&mut out, i, end);
                i = end;
            }
        }
    }
    if in_exec {
        return Err(open_comment());
    }
    Ok(out)
}

/// The end of the quoted text opening at `start` with `q`: a doubled `q` is one, and in
/// strings (not `` ` `` names) a backslash escapes the next character.
fn quoted_end(b: &[u8], start: usize, q: u8) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q != b'`' => i += 2,
            c if c == q => {
                if b.get(i + 1) == Some(&q) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The end of a line comment starting at `i`: its newline (kept) or the end of the text.
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p)
}

/// Just past the first `*/` at or after `i`.
fn comment_end(b: &[u8], i: usize) -> Option<usize> {
    b.get(i..)?
        .windows(2)
        .position(|w| w == b"*/")
        .map(|p| i + p + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(sql: &str) -> Result<String, ExtractError> {
        expand(sql, ServerVersion::DEFAULT)
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    #[test]
    fn ordinary_comments_are_skipped_and_strings_kept() {
        assert_eq!(
            ex("SELECT 1 /* x */ # y\n, 2 -- z\n").unwrap(),
            "SELECT 1 , 2"
        );
        assert_eq!(
            ex("SELECT '/*! a */', \"#\", `--` FROM t").unwrap(),
            "SELECT '/*! a */', \"#\", `--` FROM t"
        );
        assert_eq!(
            ex("SELECT 'it''s \\' /*', 1--1").unwrap(),
            "SELECT 'it''s \\' /*', 1--1"
        );
    }

    #[test]
    fn executable_comments_run_by_version() {
        assert_eq!(ex("SELECT 1 /*! , 2 */").unwrap(), "SELECT 1 , 2");
        assert_eq!(ex("SELECT 1 /*M! , 2 */").unwrap(), "SELECT 1 , 2");
        assert_eq!(ex("SELECT 1 /*!40101 , 2 */").unwrap(), "SELECT 1 , 2");
        assert_eq!(ex("SELECT 1 /*M!100100 , 2 */").unwrap(), "SELECT 1 , 2");
        // Newer than the server: skipped.
        assert_eq!(ex("SELECT 1 /*!110000 , 2 */").unwrap(), "SELECT 1");
        assert_eq!(ex("SELECT 1 /*M!999999 , 2 */").unwrap(), "SELECT 1");
        // MySQL 5.7+ versions in `/*!`: MariaDB skips them; in `/*M!` it runs them.
        assert_eq!(ex("SELECT 1 /*!80000 , 2 */").unwrap(), "SELECT 1");
        assert_eq!(ex("SELECT 1 /*M!80000 , 2 */").unwrap(), "SELECT 1 , 2");
        // A seventh digit is code.
        assert_eq!(ex("SELECT /*!1001001 */").unwrap(), "SELECT 1");
        // A string inside holds its `*/`.
        assert_eq!(ex("SELECT /*! '*/' */ 1").unwrap(), "SELECT '*/' 1");
    }

    #[test]
    fn what_the_lexer_reads_otherwise_is_refused() {
        for sql in [
            "SELECT /*! 1 /* c */ , 2 */",
            "SELECT 1 /*! ; DELETE FROM t */",
            "SELECT 1 /*! , 2",
            "SELECT 1 /* open",
            "SELECT 1 /*!110000 /* c */ x */",
            "SELECT 1 /*!101105 , 2 */",
            "SELECT 'open",
        ] {
            assert!(ex(sql).is_err(), "{sql}");
        }
        let exact = ServerVersion {
            id: 10_11_19,
            patch_known: true,
        };
        assert!(expand("SELECT 1 /*!101105 , 2 */", exact)
            .unwrap()
            .contains('2'));
        assert!(!expand("SELECT 1 /*!101120 , 2 */", exact)
            .unwrap()
            .contains('2'));
    }
}
