//! The only places where p0 turns values into SQL text: one function quotes identifiers and
//! one quotes literals, per dialect. Every statement the provisioners send is built from these
//! and from fixed keywords; no other string building of SQL exists.

/// PostgreSQL quoting.
pub mod pg {
    use crate::error::GuardError;

    /// Quotes an identifier: `"` + the name with every `"` doubled + `"`. Names with a NUL
    /// byte or longer than 63 bytes (which PostgreSQL would silently truncate, so another object
    /// could be named) are refused.
    pub fn ident(name: &str) -> Result<String, GuardError> {
        if name.is_empty() || name.len() > 63 || name.contains('\0') {
            return Err(GuardError::BadName(
                name.chars().filter(|c| !c.is_control()).collect(),
            ));
        }
        Ok(format!("\"{}\"", name.replace('"', "\"\"")))
    }

    /// Quotes a string literal the way PostgreSQL's `quote_literal` does: quotes doubled, and
    /// when a backslash is present, an `E''` string with backslashes doubled, so the result is
    /// the same whatever `standard_conforming_strings` says. NUL bytes are refused.
    pub fn literal(value: &str) -> Result<String, GuardError> {
        if value.contains('\0') {
            return Err(GuardError::BadName("literal with a NUL byte".into()));
        }
        let body = value.replace('\'', "''");
        Ok(if value.contains('\\') {
            format!("E'{}'", body.replace('\\', "\\\\"))
        } else {
            format!("'{body}'")
        })
    }
}

/// MySQL / MariaDB quoting.
pub mod mysql {
    use crate::error::GuardError;

    /// Quotes an identifier with backticks, doubling every backtick. Names with a NUL byte,
    /// longer than 64 characters or ending in a space (which MySQL refuses or trims) are refused.
    pub fn ident(name: &str) -> Result<String, GuardError> {
        if name.is_empty()
            || name.chars().count() > 64
            || name.contains('\0')
            || name.ends_with(' ')
        {
            return Err(GuardError::BadName(
                name.chars().filter(|c| !c.is_control()).collect(),
            ));
        }
        Ok(format!("`{}`", name.replace('`', "``")))
    }

    /// Quotes a string literal as a hex literal (`X'…'`), which means the same bytes under every
    /// SQL mode and character set, `NO_BACKSLASH_ESCAPES` included.
    pub fn literal(value: &str) -> Result<String, GuardError> {
        if value.contains('\0') {
            return Err(GuardError::BadName("literal with a NUL byte".into()));
        }
        Ok(format!("_utf8mb4 X'{}'", hex::encode(value.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_quoting() {
        assert_eq!(pg::ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(pg::literal("it's").unwrap(), "'it''s'");
        assert_eq!(pg::literal("a\\'b").unwrap(), "E'a\\\\''b'");
        assert!(pg::ident(&"x".repeat(64)).is_err());
        assert!(pg::ident("a\0b").is_err());
        assert!(pg::ident("").is_err());
    }

    #[test]
    fn mysql_quoting() {
        assert_eq!(mysql::ident("a`b").unwrap(), "`a``b`");
        assert_eq!(mysql::literal("a'").unwrap(), "_utf8mb4 X'6127'");
        assert!(mysql::ident("trailing ").is_err());
    }
}
