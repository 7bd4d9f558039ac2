//! A request as a person reads it before approving: everything the approval is bound to, and
//! nothing that could hide part of it.

use p0_core::api::{RequestStatus, RequestView};
use p0_core::route::Decision;
use p0_core::Intent;
use std::fmt::Write as _;

pub use p0_core::api::{printable, printable_line};

/// `1h 2m 3s`, as people write durations: `1h`, `5m`, `1h 30m`; zero is `0s`.
pub(crate) fn human_secs(secs: u64) -> String {
    let parts = [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
    let shown: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if shown.is_empty() {
        "0s".into()
    } else {
        shown.join(" ")
    }
}

/// Indents every line after the first by `pad`.
fn indented(text: &str, pad: &str) -> String {
    text.lines().collect::<Vec<_>>().join(&format!("\n{pad}"))
}

/// The request as text: id, status and waiting time, requester, resource, reason, duration,
/// SQL or role, every privilege, the decision and its rule, approvals and the digest.
pub fn render(v: &RequestView) -> String {
    const PAD: &str = "             ";
    let mut out = String::new();
    let _ = writeln!(out, "request      {}", v.id);
    let age = (chrono::Utc::now() - v.created_at).num_seconds().max(0) as u64;
    let status = match v.status {
        RequestStatus::PendingApproval | RequestStatus::Provisioning => {
            format!("{}, waiting {}", v.status.as_str(), human_secs(age))
        }
        _ => format!("{}, asked {} ago", v.status.as_str(), human_secs(age)),
    };
    let _ = writeln!(out, "status       {status}");
    if let Some(m) = &v.message {
        let _ = writeln!(out, "message      {}", indented(&printable(m), PAD));
    }
    let _ = writeln!(out, "requester    {}", printable_line(&v.requester));
    let _ = writeln!(out, "resource     {}", v.signed.resource);
    let _ = writeln!(
        out,
        "reason       {}",
        indented(&printable(&v.signed.reason), PAD)
    );
    let max = match &v.decision {
        Some(Decision::Approve { max_duration } | Decision::NeedsApproval { max_duration, .. }) => {
            format!(
                " (the rule allows at most {})",
                human_secs(max_duration.as_secs())
            )
        }
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "duration     {}{max}",
        human_secs(v.signed.duration_secs)
    );
    match &v.signed.intent {
        Intent::Query(sql) => {
            let _ = writeln!(out, "sql          {}", indented(&printable(sql), PAD));
        }
        Intent::Role(role) => {
            let _ = writeln!(out, "role         {}", printable_line(role.as_str()));
        }
    }
    match &v.permissions {
        Some(set) => {
            let _ = writeln!(out, "privileges   {} in all", set.len());
            for p in set.iter() {
                let _ = writeln!(out, "{PAD}{}", printable_line(&p.to_string()));
            }
        }
        None => {
            let _ = writeln!(out, "privileges   those of the role");
        }
    }
    let rule = v
        .rule
        .as_deref()
        .map(|r| format!(" (rule `{}`)", printable_line(r)))
        .unwrap_or_default();
    let decision = match &v.decision {
        Some(Decision::Approve { .. }) => "approved automatically".to_string(),
        Some(Decision::NeedsApproval {
            approvers, count, ..
        }) => {
            let who: Vec<String> = approvers.iter().map(|a| a.to_string()).collect();
            format!(
                "needs {count} approval(s) from {}",
                printable_line(&who.join(", "))
            )
        }
        Some(Decision::Deny { reason }) => format!("denied: {}", printable_line(reason)),
        None => "none".to_string(),
    };
    let _ = writeln!(out, "decision     {decision}{rule}");
    if matches!(v.decision, Some(Decision::NeedsApproval { .. })) {
        let approvals = if v.approvals.is_empty() {
            "none yet".to_string()
        } else {
            printable_line(&v.approvals.join(", "))
        };
        let _ = writeln!(out, "approvals    {approvals}");
    }
    if let Some(g) = &v.grant {
        let _ = writeln!(
            out,
            "grant        user {} until {}",
            g.username,
            g.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    let _ = writeln!(out, "digest       {}", v.approval_digest());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_tricks_in_requester_text_are_shown_not_obeyed() {
        assert_eq!(printable("a\u{1b}[2K\rb"), "a\\u{1b}[2K\\u{d}b");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(printable("line 1\n\tline 2"), "line 1\n\tline 2");
        assert_eq!(human_secs(3723), "1h 2m 3s");
        assert_eq!(human_secs(59), "59s");
        assert_eq!(human_secs(60), "1m");
        assert_eq!(human_secs(3600), "1h");
        assert_eq!(human_secs(5400), "1h 30m");
        assert_eq!(human_secs(0), "0s");
    }
}
