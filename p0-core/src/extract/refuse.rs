//! Which statements p0 refuses, and why: those that change privileges or identity, need
//! ownership or superuser, or touch the server's files. Never approximated with grants.
//!
//! Functions refused by name are listed in `functions.rs`; what a statement reaches (a
//! relation that cannot be modified, `SELECT INTO`) is refused where the walk meets it.

use crate::error::ExtractError;
use sqlparser::ast::{
    CascadeOption, ContextModifier, CopyTarget, Expr, ObjectName, Set, Statement,
    TruncateIdentityOption, Value,
};

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
    if first == "HANDLER" {
        return Some(ExtractError::Unsupported(
            "`HANDLER` other than `OPEN`, or `READ`/`CLOSE` without calls or queries".into(),
        ));
    }
    if first == "DO" {
        return Some(ExtractError::Refused(
            "`DO` runs an anonymous code block; p0 cannot tell what it needs".into(),
        ));
    }
    let upper_all = text.to_ascii_uppercase();
    if upper_all.contains(" INTO @") {
        return Some(ExtractError::Unsupported(
            "`INTO @variable` at the end of a SELECT: p0 reads it before FROM (`SELECT a INTO @x FROM t`)"
                .into(),
        ));
    }
    if upper_all.contains("FOR SYSTEM_TIME") {
        return Some(ExtractError::Unsupported(
            "`FOR SYSTEM_TIME` other than `ALL`, `AS OF`, `BETWEEN`, `FROM ... TO` a literal time"
                .into(),
        ));
    }
    if upper_all.contains("INTO OUTFILE") || upper_all.contains("INTO DUMPFILE") {
        return Some(ExtractError::Refused(
            "SELECT ... INTO OUTFILE/DUMPFILE writes server files; it needs the FILE privilege"
                .into(),
        ));
    }
    let why = match first {
        "LOAD" => "reads server or client files; it needs the FILE privilege",
        "INSTALL" | "UNINSTALL" => "loads or unloads server code; it needs superuser",
        "FLUSH" | "PURGE" => "acts on the whole server; it needs RELOAD or BINLOG ADMIN",
        "KILL" => "ends other sessions or queries; it needs CONNECTION ADMIN",
        "SHUTDOWN" => "stops the server; it needs SHUTDOWN",
        _ => return None,
    };
    Some(ExtractError::Refused(format!("`{head}` {why}")))
}

/// MariaDB's session variables that only SUPER or an administrative privilege may set
/// (`BINLOG ADMIN`, `BINLOG REPLAY`, `FILE`): every one MariaDB 10.11 refuses to a user
/// with no privilege, found by setting each session variable as such a user, and the debug
/// variables of debug builds.
const MYSQL_PRIVILEGED_VARIABLES: &[&str] = &[
    "binlog_annotate_row_events",
    "binlog_direct_non_transactional_updates",
    "binlog_format",
    "binlog_row_image",
    "binlog_row_metadata",
    "debug",
    "debug_dbug",
    "debug_sync",
    "enforce_storage_engine",
    "gtid_domain_id",
    "gtid_seq_no",
    "innodb_tmpdir",
    "log_disabled_statements",
    "pseudo_thread_id",
    "server_id",
    "sql_log_bin",
    "sql_log_off",
    "wsrep_on",
];

/// Character sets in which a byte below 0x80 is always that ASCII character: the server
/// reads quotes and backslashes in the text as p0 does.
const MYSQL_ASCII_SAFE_CHARSETS: &[&str] = &[
    "utf8", "utf8mb3", "utf8mb4", "latin1", "ascii", "binary", "default",
];

/// MySQL / MariaDB `SET`: what [`set_refusal`] refuses, and also anything global (it needs
/// SUPER and changes every session), the session variables only privileged users may set,
/// and what changes how the server reads the text after it (`sql_mode` with `ANSI_QUOTES`
/// or `NO_BACKSLASH_ESCAPES`, a client character set whose multi-byte characters may end in
/// a quote or backslash).
pub(crate) fn mysql_set_refusal(set: &Set) -> Option<ExtractError> {
    if let Some(e) = set_refusal(set) {
        return Some(e);
    }
    let assignments: Vec<(Option<&ContextModifier>, &ObjectName, Vec<&Expr>)> = match set {
        Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        } => vec![(scope.as_ref(), variable, values.iter().collect())],
        Set::MultipleAssignments { assignments } => assignments
            .iter()
            .map(|a| (a.scope.as_ref(), &a.name, vec![&a.value]))
            .collect(),
        Set::SetNames { charset_name, .. } => {
            return charset_refusal(&charset_name.value, "SET NAMES")
        }
        _ => return None,
    };
    for (scope, name, values) in assignments {
        let full = name.to_string().to_ascii_lowercase();
        let full = full.replace('`', "");
        if full.starts_with('@') && !full.starts_with("@@") {
            continue; // a user variable
        }
        let bare = full.trim_start_matches("@@");
        let (global, var) = match bare.split_once('.') {
            Some(("global", v)) => (true, v),
            Some(("session" | "local", v)) => (false, v),
            _ => (false, bare),
        };
        if global || matches!(scope, Some(ContextModifier::Global)) {
            return Some(ExtractError::Refused(format!(
                "`SET GLOBAL {var}` changes the server for every session; it needs SUPER"
            )));
        }
        if MYSQL_PRIVILEGED_VARIABLES.contains(&var) {
            return Some(ExtractError::Refused(format!(
                "`SET {var}` needs SUPER or an administrative privilege; p0 never grants that"
            )));
        }
        match var {
            "sql_mode" => {
                let text = values
                    .iter()
                    .map(|v| v.to_string().to_ascii_uppercase())
                    .collect::<Vec<_>>()
                    .join(",");
                let plain = values.iter().all(|v| {
                    matches!(v, Expr::Identifier(_))
                        || matches!(v, Expr::Value(x) if matches!(x.value, Value::SingleQuotedString(_) | Value::DoubleQuotedString(_)))
                });
                if !plain || text.contains("ANSI") || text.contains("NO_BACKSLASH_ESCAPES") {
                    return Some(ExtractError::Refused(format!(
                        "`SET sql_mode = {text}` may change how the server reads quotes and backslashes; p0 reads the SQL with the default"
                    )));
                }
            }
            "character_set_client" | "names" => {
                for v in values {
                    let text = v.to_string();
                    if let Some(e) = charset_refusal(text.trim_matches(['\'', '"', '`']), var) {
                        return Some(e);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

fn charset_refusal(charset: &str, what: &str) -> Option<ExtractError> {
    (!MYSQL_ASCII_SAFE_CHARSETS.contains(&charset.to_ascii_lowercase().as_str())).then(|| {
        ExtractError::Refused(format!(
            "`{what}` to `{charset}`: the server would read quotes and backslashes in the text differently; use utf8mb4"
        ))
    })
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
