//! The console's forms: approve (exactly the digest of what the page showed), deny, end a
//! lease, sign out. Each needs the session's CSRF token and, when the browser names one, this
//! console's own origin; each goes through the same decision functions as the API and Slack,
//! audited `via: console`.

use super::pages::Viewer;
use super::session::Session;
use super::{page_error, Console};
use crate::routes::approvals::{record_approval, record_denial};
use crate::routes::leases::end_lease;
use crate::state::AppState;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use p0_core::RequestId;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    digest: String,
}

/// The refusal of a form that is not this session's, from this console; `None` for one
/// that is.
fn refuse_form(state: &AppState, s: &Session, headers: &HeaderMap, csrf: &str) -> Option<Response> {
    let Some(console): Option<&Console> = state.console.as_deref() else {
        return Some(super::not_configured());
    };
    // A browser says where a form comes from: another site is refused, whatever it sends.
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|v| v != "same-origin" && v != "none") {
        tracing::warn!(approver = %s.name, "console: cross-site form refused");
        return Some(page_error(
            StatusCode::FORBIDDEN,
            "this form was not sent from the console",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        if origin != console.origin {
            tracing::warn!(origin, approver = %s.name, "console: form from another origin refused");
            return Some(page_error(
                StatusCode::FORBIDDEN,
                "this form was not sent from the console",
            ));
        }
    }
    if !s.csrf_ok(csrf) {
        tracing::warn!(approver = %s.name, "console: form without this session's CSRF token refused");
        return Some(page_error(
            StatusCode::FORBIDDEN,
            "this form is stale or was not sent from the console; reload the page and try again",
        ));
    }
    None
}

fn back(page: &str, done: &str, id: &RequestId) -> Response {
    Redirect::to(&format!("/console/{page}?done={done}&id={id}")).into_response()
}

/// `POST /console/requests/{id}/{approve|deny|revoke}`.
pub async fn act(
    State(state): State<Arc<AppState>>,
    Path((id, verb)): Path<(String, String)>,
    Viewer(s): Viewer,
    headers: HeaderMap,
    Form(form): Form<ActForm>,
) -> Response {
    if let Some(r) = refuse_form(&state, &s, &headers, &form.csrf) {
        return r;
    }
    let who = s.actor();
    let missing = || page_error(StatusCode::NOT_FOUND, "no such request");
    let Ok(rid) = RequestId::new(&id) else {
        return missing();
    };
    let mut rec = match state.store.get(&rid).await {
        Ok(Some(r)) if crate::lifecycle::sees(&r, who, state.overseers()) => r,
        Ok(_) => return missing(),
        Err(e) => {
            tracing::error!(error = %e, "console: store unavailable");
            return page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; try again",
            );
        }
    };
    let outcome = match verb.as_str() {
        "approve" => record_approval(&state, &mut rec, who, &form.digest, "console")
            .await
            .map(|a| {
                let done = if a.complete() {
                    "approved"
                } else {
                    "approved-partly"
                };
                ("pending", done)
            }),
        "deny" => record_denial(&state, &mut rec, who, "console")
            .await
            .map(|()| ("pending", "denied")),
        "revoke" => end_lease(&state, &mut rec, who, "console")
            .await
            .map(|()| ("leases", "ended")),
        _ => return page_error(StatusCode::NOT_FOUND, "no such action"),
    };
    match outcome {
        Ok((page, done)) => back(page, done, &rec.id),
        Err(e) => page_error(e.0, &e.2),
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/logout`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Viewer(s): Viewer,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Some(r) = refuse_form(&state, &s, &headers, &form.csrf) {
        return r;
    }
    let Some(console) = state.console.as_deref() else {
        return super::not_configured();
    };
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::LOCATION,
                header::HeaderValue::from_static("/console/signed-out"),
            ),
            (header::SET_COOKIE, console.end_session()),
        ],
    )
        .into_response()
}
