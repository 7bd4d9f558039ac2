//! What people are shown of a request outside the API: the webhook's messages (Slack `text`
//! plus the same content as structured fields) and the audit log's details.

use crate::store::RequestRecord;
use p0_core::route::Decision;
use p0_core::Intent;
use serde_json::{json, Value};

/// Longest SQL quoted in a webhook's text (the structured fields carry all of it).
const TEXT_SQL_MAX: usize = 2000;

/// Escapes what Slack would read as markup (mentions, links) in requester-controlled text,
/// and shows what could hide or reorder it ([`p0_core::api::printable`]).
pub(crate) fn slack(s: &str) -> String {
    p0_core::api::printable(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The privileges of a request, one line each.
pub fn privileges(rec: &RequestRecord) -> Vec<String> {
    rec.permissions
        .iter()
        .flat_map(|set| set.iter())
        .map(|p| p.to_string())
        .collect()
}

/// Everything an approver needs to judge a request, as structured fields.
pub fn summary(rec: &RequestRecord) -> Value {
    let (decision, approvers, needed, max) = match &rec.decision {
        Some(Decision::Approve { max_duration }) => {
            ("approve", vec![], None, Some(max_duration.as_secs()))
        }
        Some(Decision::NeedsApproval {
            approvers,
            count,
            max_duration,
            ..
        }) => (
            "needs_approval",
            approvers.iter().map(|a| a.to_string()).collect(),
            Some(*count),
            Some(max_duration.as_secs()),
        ),
        Some(Decision::Deny { .. }) | None => ("deny", vec![], None, None),
    };
    let (sql, role) = match &rec.signed.intent {
        Intent::Query(q) => (Some(q.as_str()), None),
        Intent::Role(r) => (None, Some(r.as_str())),
    };
    json!({
        "id": rec.id,
        "requester": rec.requester,
        "resource": rec.signed.resource,
        "status": rec.status.as_str(),
        "reason": rec.signed.reason,
        "duration_secs": rec.signed.duration_secs,
        "max_duration_secs": max,
        "sql": sql,
        "role": role,
        "privileges": privileges(rec),
        "rule": rec.rule,
        "decision": decision,
        "approvers": approvers,
        "approvals_needed": needed,
        "approvals": rec.valid_approvals(),
        "digest": rec.digest(),
        "created_at": rec.created_at,
    })
}

/// What is asked for, as one line of Slack text: the SQL or the role, then the privileges.
fn asked(rec: &RequestRecord) -> String {
    let what = match &rec.signed.intent {
        Intent::Query(q) => format!("SQL `{}`", slack(&clip(q, TEXT_SQL_MAX))),
        Intent::Role(r) => format!("role `{}`", slack(r.as_str())),
    };
    let privileges = privileges(rec);
    if privileges.is_empty() {
        what
    } else {
        format!("{what}; privileges: {}", slack(&privileges.join(", ")))
    }
}

/// The webhook message for a request that waits for approval.
pub fn pending(rec: &RequestRecord) -> Value {
    let text = format!(
        "p0: {} asks for access to {} for {}s (reason: {}): {}. `p0 show {}`, then `p0 approve {}`",
        slack(&rec.requester),
        rec.signed.resource,
        rec.signed.duration_secs,
        slack(&rec.signed.reason),
        asked(rec),
        rec.id,
        rec.id
    );
    json!({"text": text, "event": "request.pending", "request": summary(rec)})
}

/// The webhook message for an approval or a denial by `who`.
pub fn decided(rec: &RequestRecord, who: &str, verb: &str) -> Value {
    let text = format!(
        "p0: {} {verb} {}'s request {} on {}: {}",
        slack(who),
        slack(&rec.requester),
        rec.id,
        rec.signed.resource,
        asked(rec)
    );
    json!({"text": text, "event": format!("request.{verb}"), "by": who, "request": summary(rec)})
}

/// The `request.created` audit detail: what was asked, why, for how long, and the decision.
pub fn created_detail(rec: &RequestRecord) -> String {
    let (sql, role) = match &rec.signed.intent {
        Intent::Query(q) => (Some(q.as_str()), None),
        Intent::Role(r) => (None, Some(r.as_str())),
    };
    json!({
        "requester": rec.requester,
        "resource": rec.signed.resource,
        "status": rec.status.as_str(),
        "sql": sql,
        "role": role,
        "privileges": privileges(rec),
        "duration_secs": rec.signed.duration_secs,
        "reason": rec.signed.reason,
        "rule": rec.rule,
        "digest": rec.digest(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requester_text_cannot_become_slack_markup() {
        assert_eq!(
            slack("<!channel> & <http://x|y>"),
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("ééé", 2), "éé…");
    }
}
