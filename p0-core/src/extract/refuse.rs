//! Which statements p0 refuses, and why: those that change privileges or identity, need
//! ownership or superuser, or touch the server's files. Never approximated with grants.
//!
//! Functions refused by name are listed in `functions.rs`; what a statement reaches (a
//! relation that cannot be modified, `SELECT INTO`) is refused where the walk meets it.

use crate::error::ExtractError;
use sqlparser::ast::{CascadeOption, CopyTarget, Set, Statement, TruncateIdentityOption};

/// Why a statement the walk does not handle is refused, or that it is not supported.
pub(crate) fn refusal(s: &Statement) -> ExtractError {
    let text = s.to_string();
    refusal_for_text(&text).unwrap_or_else(|| {
        ExtractError::Unsupported(format!("statement `{}`", first_words(&text, 3)))
    })
}

pub(crate) fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Classifies statements p0 refuses by their leading keywords. Also used when the parser does
/// not know a statement, so that a refusal reads as one rather than as a syntax error.
pub(crate) fn refusal_for_text(text: &str) -> Option<ExtractError> {
    let head = first_words(text, 3);
    let upper: Vec<String> = head
        .split_whitespace()
        .map(|x| x.to_ascii_uppercase())
        .collect();
    let first = upper.first().map(String::as_str).unwrap_or("");
    let second = upper.get(1).map(String::as_str).unwrap_or("");
    let joined = upper.join(" ");
    let dcl = matches!(first, "GRANT" | "REVOKE")
        || (matches!(first, "CREATE" | "ALTER" | "DROP")
            && matches!(second, "ROLE" | "USER" | "GROUP"))
        || joined.starts_with("SET ROLE")
        || joined.starts_with("RESET ROLE")
        || joined.starts_with("SET SESSION AUTHORIZATION")
        || joined.starts_with("SET LOCAL ROLE")
        || joined.starts_with("SET PASSWORD");
    if dcl {
        return Some(ExtractError::Refused(format!(
            "`{head}` changes privileges or identity; p0 never grants that"
        )));
    }
    if joined.starts_with("ALTER SYSTEM") {
        return Some(ExtractError::Refused(
            "`ALTER SYSTEM` needs superuser".into(),
        ));
    }
    if matches!(
        first,
        "CREATE"
            | "ALTER"
            | "DROP"
            | "COMMENT"
            | "REINDEX"
            | "CLUSTER"
            | "VACUUM"
            | "ANALYZE"
            | "REFRESH"
            | "SECURITY"
            | "RENAME"
            | "REASSIGN"
    ) {
        return Some(ExtractError::Refused(format!(
            "`{head}` needs ownership of the object (or CREATE); p0 does not approximate it with grants"
        )));
    }
    if first == "DO" {
        return Some(ExtractError::Refused(
            "`DO` runs an anonymous code block; p0 cannot tell what it needs".into(),
        ));
    }
    let upper_all = text.to_ascii_uppercase();
    if upper_all.contains("INTO OUTFILE") || upper_all.contains("INTO DUMPFILE") {
        return Some(ExtractError::Refused(
            "SELECT ... INTO OUTFILE/DUMPFILE writes server files; it needs the FILE privilege"
                .into(),
        ));
    }
    if matches!(
        first,
        "LOAD" | "INSTALL" | "UNINSTALL" | "HANDLER" | "FLUSH" | "KILL" | "SHUTDOWN" | "PURGE"
    ) {
        return Some(ExtractError::Refused(format!(
            "`{head}` reads server files or loads code; it needs superuser or FILE"
        )));
    }
    None
}

/// `SET` statements that change identity or passwords.
pub(crate) fn set_refusal(set: &Set) -> Option<ExtractError> {
    match set {
        Set::SetRole { .. } => Some(ExtractError::Refused(
            "`SET ROLE` changes identity; p0 never grants that".into(),
        )),
        Set::SingleAssignment { variable, .. } => {
            let name = variable.to_string().to_ascii_lowercase();
            let identity = matches!(
                name.as_str(),
                "role" | "session_authorization" | "session authorization"
            ) || name.starts_with("session authorization");
            identity.then(|| {
                ExtractError::Refused(format!(
                    "`SET {name}` changes identity; p0 never grants that"
                ))
            })
        }
        other => {
            let text = other.to_string().to_ascii_uppercase();
            (text.contains("SESSION AUTHORIZATION")
                || text.starts_with("SET ROLE")
                || text.contains("PASSWORD"))
            .then(|| {
                ExtractError::Refused("changing identity or passwords is never granted".into())
            })
        }
    }
}

/// `TRUNCATE` forms that need more than the TRUNCATE privilege (or where there is none).
pub(crate) fn truncate_refusal(
    grantable: bool,
    identity: Option<&TruncateIdentityOption>,
    cascade: Option<&CascadeOption>,
) -> Option<ExtractError> {
    if !grantable {
        return Some(ExtractError::Refused(
            "TRUNCATE needs the DROP privilege here; use DELETE".into(),
        ));
    }
    if matches!(identity, Some(TruncateIdentityOption::Restart)) {
        return Some(ExtractError::Refused(
            "TRUNCATE ... RESTART IDENTITY needs ownership of the sequences".into(),
        ));
    }
    if matches!(cascade, Some(CascadeOption::Cascade)) {
        return Some(ExtractError::Unsupported(
            "TRUNCATE ... CASCADE: name every table instead".into(),
        ));
    }
    None
}

/// `COPY` to or from anything but the client.
pub(crate) fn copy_refusal(target: &CopyTarget) -> Option<ExtractError> {
    match target {
        CopyTarget::Stdin | CopyTarget::Stdout => None,
        CopyTarget::File { .. } => Some(ExtractError::Refused(
            "COPY to or from a server file needs superuser or pg_read/write_server_files".into(),
        )),
        CopyTarget::Program { .. } => Some(ExtractError::Refused(
            "COPY ... PROGRAM runs a server command; it needs superuser".into(),
        )),
    }
}
