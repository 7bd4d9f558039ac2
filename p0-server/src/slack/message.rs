//! The Slack messages of a request: what is asked, with the buttons, and what became of it.

use crate::shown::{privileges, slack};
use crate::store::RequestRecord;
use p0_core::Intent;
use serde_json::{json, Value};

/// Longest SQL quoted in a message (Slack's section text holds 3,000 characters).
const SQL_MAX: usize = 1500;
/// Privileges listed before "and N more".
const PRIVILEGES_MAX: usize = 20;

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What an approver needs to judge the request, as Slack `mrkdwn`.
fn asked(rec: &RequestRecord) -> String {
    let what = match &rec.signed.intent {
        Intent::Query(q) => format!(
            "*SQL*\n```{}```",
            slack(&clip(q, SQL_MAX)).replace("```", "'''")
        ),
        Intent::Role(r) => format!("*Role* `{}`", slack(r.as_str())),
    };
    let mut privs = privileges(rec);
    let more = privs.len().saturating_sub(PRIVILEGES_MAX);
    privs.truncate(PRIVILEGES_MAX);
    let mut list = privs
        .iter()
        .map(|p| format!("• `{}`", slack(p)))
        .collect::<Vec<_>>()
        .join("\n");
    if more > 0 {
        list.push_str(&format!("\n… and {more} more (`p0 show {}`)", rec.id));
    }
    format!(
        "*{}* asks for access to `{}` for {}s\n*Reason* {}\n{what}\n*Privileges*\n{}\n*Rule* {}",
        slack(&rec.requester),
        slack(rec.signed.resource.as_str()),
        rec.signed.duration_secs,
        slack(&rec.signed.reason),
        if list.is_empty() {
            "(none)".into()
        } else {
            list
        },
        slack(rec.rule.as_deref().unwrap_or("(none)")),
    )
}

/// The message of a request that waits for approval: what is asked, then Approve and Deny,
/// each carrying the request's id and the digest of what the message shows.
pub(super) fn pending(rec: &RequestRecord) -> Value {
    let value = format!("{} {}", rec.id, rec.digest());
    json!([
        { "type": "section", "text": { "type": "mrkdwn", "text": asked(rec) } },
        { "type": "actions", "block_id": "p0_decision", "elements": [
            { "type": "button", "action_id": "p0_approve", "style": "primary",
              "text": { "type": "plain_text", "text": "Approve" }, "value": value },
            { "type": "button", "action_id": "p0_deny", "style": "danger",
              "text": { "type": "plain_text", "text": "Deny" }, "value": value },
        ]},
        { "type": "context", "elements": [
            { "type": "mrkdwn", "text": format!("request `{}` · `p0 show {}`", rec.id, rec.id) },
        ]},
    ])
}

/// The message once decided: what was asked, then the outcome, without buttons.
pub(super) fn decided(rec: &RequestRecord, outcome: &str) -> Value {
    json!({
        "replace_original": true,
        "text": outcome,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": asked(rec) } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": slack(outcome) } ] },
        ],
    })
}

/// A refusal, shown to the clicking user only; the message keeps its buttons.
pub(super) fn refused(why: &str) -> Value {
    json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": format!("p0 refused: {}", slack(why)),
    })
}
