//! `POST /slack/interactions`: a click on Approve or Deny.

use super::message;
use crate::lifecycle::{self, Actor};
use crate::routes::approvals::{record_approval, record_denial};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use p0_core::RequestId;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: User,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: String,
}

/// Slack's signed call for a click: checked, mapped to an approver, decided as through the
/// API, answered through the message's `response_url`. Slack wants a 200 within 3 s.
pub async fn interactions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(slack) = state.slack.clone() else {
        return (StatusCode::NOT_FOUND, "Slack is not configured").into_response();
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if !slack.verify(
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        chrono::Utc::now().timestamp(),
    ) {
        tracing::warn!("Slack interaction refused: bad or stale signature");
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    let payload = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str::<Payload>(&v).ok());
    let Some(p) = payload.filter(|p| p.kind == "block_actions") else {
        return (StatusCode::BAD_REQUEST, "not a block action").into_response();
    };
    let Some(action) = p.actions.first() else {
        return (StatusCode::BAD_REQUEST, "no action").into_response();
    };
    let answer = match decide(&state, &slack, &p.user.id, action).await {
        Ok((rec, outcome)) => message::decided(&rec, &outcome),
        Err(why) => message::refused(&why),
    };
    if let Some(url) = &p.response_url {
        slack.respond(url, answer);
    }
    StatusCode::OK.into_response()
}

/// Applies a click; the request as it now is and the outcome, or why not.
async fn decide(
    state: &AppState,
    slack: &super::Slack,
    user: &str,
    action: &Action,
) -> Result<(crate::store::RequestRecord, String), String> {
    let email = slack.email_of(user).await?;
    let groups = slack.groups_of(&email);
    let who = Actor {
        name: &email,
        groups: &groups,
    };
    let (id, digest) = action
        .value
        .split_once(' ')
        .ok_or_else(|| "not a p0 button".to_string())?;
    let missing = || "no such request".to_string();
    let id = RequestId::new(id).map_err(|_| missing())?;
    let mut rec = state
        .store
        .get(&id)
        .await
        .map_err(|_| "the store is unavailable; try again".to_string())?
        .ok_or_else(missing)?;
    if !lifecycle::sees(&rec, who, state.overseers()) {
        tracing::warn!(caller = %email, request = %rec.id, "Slack click on a request the user may not see");
        return Err(missing());
    }
    let outcome = match action.action_id.as_str() {
        "p0_approve" => {
            let approved = record_approval(state, &mut rec, who, digest, "slack")
                .await
                .map_err(|e| e.2)?;
            if approved.complete() {
                format!("Approved by {email}")
            } else {
                format!(
                    "Approved by {email} ({} of {} approvals)",
                    approved.valid, approved.needed
                )
            }
        }
        "p0_deny" => {
            record_denial(state, &mut rec, who, "slack")
                .await
                .map_err(|e| e.2)?;
            format!("Denied by {email}")
        }
        _ => return Err("not a p0 button".into()),
    };
    Ok((rec, outcome))
}
