//! One error enum per area of the SDK. Messages are lowercase, without a final period, with
//! user input in backticks.

use thiserror::Error;

/// A value that does not parse into one of p0's types.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeError {
    /// The value is not valid for its type.
    #[error("invalid {what} `{value}`: {why}")]
    Invalid {
        /// What was being parsed.
        what: &'static str,
        /// The offending input.
        value: String,
        /// Why it was refused.
        why: &'static str,
    },
}

/// Sealing or opening a secret failed. Deliberately vague about why an open failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The key could not be parsed.
    #[error("invalid key: {0}")]
    Key(String),
    /// The sealed blob is of a version this build does not know.
    #[error("unsupported sealed format version {0}")]
    Version(u8),
    /// The sealed blob is not well formed.
    #[error("malformed sealed secret")]
    Malformed,
    /// Encryption failed.
    #[error("sealing failed")]
    Seal,
    /// Decryption failed: wrong key or tampered data.
    #[error("cannot open sealed secret: wrong key or tampered data")]
    Open,
}

/// A sealed grant (password and connection target) could not be made or opened, or does
/// not answer the request it came with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GrantError {
    /// No sealed grant, or not of the sealed-grant form (a password without its target).
    #[error("the grant carries no sealed connection target")]
    Missing,
    /// A sealed grant of a version this build does not know.
    #[error("unsupported sealed grant version {0}")]
    Version(u8),
    /// Not well formed.
    #[error("malformed sealed grant")]
    Malformed,
    /// A key could not be parsed.
    #[error("invalid key: {0}")]
    Key(String),
    /// Sealing failed.
    #[error("sealing failed")]
    Seal,
    /// The signature, the authentication tag or the decryption failed: tampered, spliced or
    /// sealed to another key.
    #[error("the sealed grant does not verify: tampered, spliced or sealed to another key")]
    Open,
    /// The target is not one a client may use, or not this request's.
    #[error("refused connection target: {0}")]
    Target(String),
}

/// The escalation guard refused a plan.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuardError {
    /// A permission on a system schema or catalog.
    #[error("refused: `{0}` is a system schema")]
    SystemSchema(String),
    /// A database outside the configured ones.
    #[error("refused: database `{0}` is not managed by this agent")]
    ForeignDatabase(String),
    /// A schema outside the configured ones.
    #[error("refused: schema `{0}` is not in this agent's allowed schemas")]
    ForeignSchema(String),
    /// A privilege that does not apply to the kind of object.
    #[error("refused: {0} does not apply to {1}")]
    Mismatch(String, String),
    /// A privilege that this agent never grants (e.g. CREATE).
    #[error("refused: {0} is not grantable by this agent's policy")]
    NotAllowed(String),
    /// Membership of a role outside the allowlist.
    #[error("refused: role `{0}` is not on this agent's allowlist")]
    RoleNotAllowed(String),
    /// The role holds attributes (SUPERUSER, ...) or administrative privileges.
    #[error("refused: role `{0}` carries {1}")]
    PrivilegedRole(String, String),
    /// The agent's own service user was named.
    #[error("refused: `{0}` is the agent's own service user")]
    ServiceUser(String),
    /// A role of that name exists and was not made by p0.
    #[error("refused: role `{0}` exists and is not managed by p0")]
    ExistingRole(String),
    /// A function that runs with its owner's privileges.
    #[error("refused: function `{0}` is SECURITY DEFINER")]
    SecurityDefiner(String),
    /// The referenced object does not exist.
    #[error("refused: {0} does not exist")]
    Missing(String),
    /// An object name that can never be valid.
    #[error("refused: invalid name `{0}`")]
    BadName(String),
    /// The plan grants nothing.
    #[error("refused: the plan grants nothing")]
    Empty,
    /// The expiry is in the past or too far out.
    #[error("refused: expiry {0}")]
    Expiry(String),
    /// SECURITY DEFINER functions that anyone given USAGE on their schema could call, because
    /// PUBLIC may execute them, and that the agent's `guard.allow_definer_functions` does not
    /// name.
    #[error(
        "refused: SECURITY DEFINER function(s) {} executable by PUBLIC in a schema this plan grants USAGE on; \
         fix: {}, or name them in the agent's `guard.allow_definer_functions`",
        backticked(.0),
        revoke_fix(.0)
    )]
    ReachableDefiner(Vec<String>),
}

fn backticked(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn revoke_fix(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`REVOKE EXECUTE ON FUNCTION {n} FROM PUBLIC`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Provisioning or revoking failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The escalation guard refused the plan; nothing was created.
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// The user to revoke was not created by p0.
    #[error("refused: `{0}` is not a user managed by p0")]
    NotManaged(String),
    /// The request was provisioned before (its claim is recorded in the database), whether
    /// or not its user still exists: a request id is used once.
    #[error("refused: request `{0}` was already provisioned")]
    Replayed(String),
    /// The database could not be reached or refused a statement.
    #[error("database error: {0}")]
    Database(String),
    /// The database lacks the expiry backstop this provisioner relies on (MariaDB/MySQL:
    /// `event_scheduler` is not ON), so nothing is provisioned until it is restored.
    #[error("refused: no expiry backstop: {0}")]
    NoBackstop(String),
    /// A value did not parse.
    #[error(transparent)]
    Type(#[from] TypeError),
}

impl ProvisionError {
    /// Whether the database itself answered with this error (it carries a SQLSTATE), so the
    /// statement was refused and undone, unlike a lost connection or a timeout, after which
    /// the database may still commit what it was sent.
    pub fn answered_by_database(&self) -> bool {
        matches!(self, ProvisionError::Database(m) if m.ends_with(')') && m.contains("(SQLSTATE "))
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl From<sqlx::Error> for ProvisionError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx errors never carry bound parameters, and p0 never inlines a password into SQL
        // text (only a SCRAM verifier), so the message is safe to show.
        ProvisionError::Database(match &e {
            sqlx::Error::Database(d) => match d.code() {
                Some(code) => format!("{} (SQLSTATE {code})", d.message()),
                None => d.message().to_string(),
            },
            other => other.to_string(),
        })
    }
}

/// Extracting the permissions a statement needs failed or was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractError {
    /// The SQL does not parse.
    #[error("syntax error: {0}")]
    Parse(String),
    /// The statement needs ownership or superuser and is never approximated with grants.
    #[error("refused: {0}")]
    Refused(String),
    /// The statement is valid but p0 does not know its privileges yet.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The live catalog could not be read.
    #[error("catalog error: {0}")]
    Catalog(String),
    /// A text to parse (the query, or a body it reaches) is larger than the size limit.
    #[error("{what} larger than {max} bytes")]
    TooLarge {
        /// The text: `query`, or the function or view whose body it is.
        what: String,
        /// The limit, in bytes.
        max: usize,
    },
    /// A text nests deeper than the depth limit; it was not parsed.
    #[error("{what} nesting deeper than {max} levels")]
    TooDeep {
        /// The text (or the kind of nesting).
        what: String,
        /// The limit, in levels.
        max: usize,
    },
    /// Extraction ran past its time budget.
    #[error("extraction took longer than its budget of {ms} ms")]
    TooSlow {
        /// The budget, in milliseconds.
        ms: u64,
    },
    /// Extraction needed more catalog lookups than allowed.
    #[error("catalog work beyond {max} lookups")]
    TooMuchCatalogWork {
        /// The limit.
        max: usize,
    },
}

/// Verifying an ID token failed. The caller sees one generic message; the detail is logged.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not acceptable (bad signature, audience, issuer, expiry, algorithm, nonce, ...).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The issuer's keys could not be fetched.
    #[error("cannot reach the identity issuer: {0}")]
    Issuer(String),
    /// The token comes from another issuer than the one trusted: the user logged in elsewhere,
    /// or the server is configured with another issuer. Neither value is a secret.
    #[error("the token was issued by `{token}`, but this server trusts `{trusted}`")]
    WrongIssuer {
        /// The token's `iss`, unverified and made printable.
        token: String,
        /// The issuer this server trusts.
        trusted: String,
    },
    /// The token was issued to another client than the audience the server expects.
    #[error("the token is for audience {token}, but this server expects `{expected}`")]
    WrongAudience {
        /// The token's `aud` as shown (quoted, or a JSON list), unverified and made printable.
        token: String,
        /// The audience this server expects.
        expected: String,
    },
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
}

impl VerifyError {
    /// Whether the message names a cause the caller can act on and gives nothing away (which
    /// issuer or audience is trusted, an expiry), so it may be shown to the caller; other
    /// failures are logged and answered generically.
    pub fn is_for_caller(&self) -> bool {
        matches!(
            self,
            Self::WrongIssuer { .. } | Self::WrongAudience { .. } | Self::Expired
        )
    }
}

/// The router could not decide. Callers treat this as deny.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The rules are not valid.
    #[error("invalid rules: {0}")]
    Rules(String),
}

/// A TOML parse error as one line — where and what — without the snippet of the source that
/// the parser's own message quotes: a configuration's lines hold secrets, and this message
/// goes to logs.
pub fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod toml_tests {
    use super::*;

    #[test]
    fn a_toml_error_names_the_line_and_never_quotes_it() {
        let text = "resource = \"pg/app\"\nagent_secret = \"hunter2-s3cret\" oops\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        assert!(
            e.to_string().contains("hunter2"),
            "the parser quotes the line"
        );
        let shown = toml_error(&e, text);
        assert!(shown.starts_with("line 2: "), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains('\n'),
            "{shown}"
        );
    }
}
