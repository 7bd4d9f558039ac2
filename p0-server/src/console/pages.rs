//! The console's pages: pending approvals, my requests, live leases, the audit log. Each shows
//! what the API's visibility rules let the signed-in person see, and nothing else.

use super::session::Session;
use super::{not_configured, page_error};
use crate::lifecycle::{self, Actor};
use crate::shown;
use crate::state::AppState;
use crate::store::RequestRecord;
use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use p0_core::api::{printable, RequestStatus};
use p0_core::Intent;
use serde::Deserialize;
use std::sync::Arc;

/// A person's own requests a page shows, newest first.
pub const PAGE_RECORDS: usize = 500;
/// Requests in one status a page reads (pending, live leases), oldest first.
pub const STATUS_RECORDS: usize = 2000;
/// Audit entries a page shows, newest first.
const AUDIT_SHOWN: usize = 300;

/// A request as the console shows it.
#[derive(Debug)]
pub struct Item {
    pub id: String,
    pub requester: String,
    pub resource: String,
    pub status: &'static str,
    pub reason: String,
    pub duration: String,
    pub sql: Option<String>,
    pub role: Option<String>,
    pub privileges: Vec<String>,
    pub rule: String,
    pub waited: String,
    pub created: String,
    pub approvals: String,
    pub digest: String,
    pub can_approve: bool,
    pub why_not: String,
    pub time_left: String,
    pub until: i64,
    pub can_revoke: bool,
    pub message: String,
}

/// A span as people write it, to the second: `1h 30m`, `45s`.
pub fn human(secs: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs.max(0) as u64)).to_string()
}

impl Item {
    fn of(rec: &RequestRecord, who: Actor<'_>, state: &AppState, now: DateTime<Utc>) -> Self {
        let (sql, role) = match &rec.signed.intent {
            Intent::Query(q) => (Some(printable(q)), None),
            Intent::Role(r) => (None, Some(printable(r.as_str()))),
        };
        let summary = shown::summary(rec);
        let needed = summary["approvals_needed"].as_u64();
        let valid = rec.valid_approvals().len();
        let approvals = match needed {
            Some(n) => format!("{valid} of {n}"),
            None => String::new(),
        };
        let (can_approve, why_not) = match lifecycle::may_approve(rec, who) {
            _ if rec.status != RequestStatus::PendingApproval => (false, String::new()),
            Ok(_) if rec.valid_approvals().iter().any(|a| a == who.name) => {
                (false, "you approved it already".into())
            }
            Ok(_) => (true, String::new()),
            Err(e) => (false, e.to_string()),
        };
        let oversees = lifecycle::oversees(rec, who, state.overseers());
        let until = rec.grant.as_ref().map(|g| g.expires_at);
        Self {
            id: rec.id.to_string(),
            requester: printable(&rec.requester),
            resource: rec.signed.resource.to_string(),
            status: rec.status.as_str(),
            reason: printable(&rec.signed.reason),
            duration: human(rec.signed.duration_secs as i64),
            sql,
            role,
            privileges: shown::privileges(rec)
                .iter()
                .map(|p| printable(p))
                .collect(),
            rule: printable(rec.rule.as_deref().unwrap_or_default()),
            waited: human((now - rec.created_at).num_seconds()),
            created: rec.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            approvals,
            digest: rec.digest(),
            can_approve,
            why_not,
            time_left: until
                .map(|u| human((u - now).num_seconds()))
                .unwrap_or_default(),
            until: until.map(|u| u.timestamp()).unwrap_or_default(),
            can_revoke: lifecycle::may_end(rec, who, oversees).is_ok(),
            message: printable(rec.message.as_deref().unwrap_or_default()),
        }
    }
}

/// An audit detail as people read it: a JSON object as `key: value` pairs (lists joined,
/// digests shortened), anything else as it is.
fn readable(detail: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(detail) else {
        return detail.to_string();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) if k == "digest" => s.chars().take(12).collect(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            format!("{k}: {v}")
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The frame every page shares: who is signed in, their CSRF token, the page, a notice.
#[derive(Debug)]
pub struct Frame {
    pub user: String,
    pub csrf: String,
    pub page: &'static str,
    pub notice: String,
}

#[derive(Template)]
#[template(path = "console/pending.html")]
pub struct PendingPage {
    pub frame: Frame,
    pub items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "console/mine.html")]
pub struct MinePage {
    pub frame: Frame,
    pub items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "console/leases.html")]
pub struct LeasesPage {
    pub frame: Frame,
    pub items: Vec<Item>,
}

/// An audit entry as shown.
#[derive(Debug)]
pub struct Entry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub request: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub struct AuditPage {
    pub frame: Frame,
    pub allowed: bool,
    pub verified: bool,
    pub verification: String,
    pub total: usize,
    pub entries: Vec<Entry>,
}

#[derive(Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage<'a> {
    pub message: &'a str,
}

/// The notice a page shows after an action (`?done=VERB&id=ID`): one of the console's own
/// sentences about a request id, never text taken from the link.
#[derive(Debug, Deserialize)]
pub struct Notice {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

impl Notice {
    fn text(&self) -> String {
        let Some(id) = self
            .id
            .as_deref()
            .and_then(|i| p0_core::RequestId::new(i).ok())
        else {
            return String::new();
        };
        match self.done.as_deref() {
            Some("approved") => format!("Approved {id}: it is being provisioned."),
            Some("approved-partly") => format!("Approved {id}; it needs more approvals."),
            Some("denied") => format!("Denied {id}."),
            Some("ended") => format!("Ended the lease of {id}."),
            _ => String::new(),
        }
    }
}

/// The signed-in person of a console call. Without a session, a page answers with the
/// sign-in (returning to it afterwards); without a console, with a 404.
#[derive(Debug)]
pub struct Viewer(pub Session);

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(console) = state.console.as_deref() else {
            return Err(not_configured());
        };
        match console.session(&parts.headers) {
            Some(s) => Ok(Viewer(s)),
            // Only a page a person opens goes to the sign-in: a form, the event stream or the
            // page's own refresh would otherwise start sign-ins nobody asked for.
            None if parts.method != axum::http::Method::GET
                || parts.uri.path() == "/console/events"
                || parts.headers.contains_key("x-p0-refresh") =>
            {
                Err(page_error(
                    StatusCode::UNAUTHORIZED,
                    "your console session has ended: reload the page to sign in again",
                ))
            }
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/console");
                let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Err(Redirect::to(&format!("/console/login?next={next}")).into_response())
            }
        }
    }
}

fn frame(s: &Session, page: &'static str, notice: &Notice) -> Frame {
    Frame {
        user: s.name.clone(),
        csrf: s.csrf.clone(),
        page,
        notice: notice.text(),
    }
}

fn html(t: impl Template) -> Response {
    match t.render() {
        Ok(h) => Html(h).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a page did not render");
            page_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this page could not be shown",
            )
        }
    }
}

/// Where a page's requests come from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// Every request in this status (through the store's index on status, whatever was made
    /// since: a flood of newer requests hides no pending request and no live lease).
    Status(RequestStatus),
    /// The viewer's own newest requests.
    Mine,
}

/// The requests of `source` that `who` may see, keeping those `keep` accepts.
pub async fn visible(
    state: &AppState,
    who: Actor<'_>,
    source: Source,
    keep: impl Fn(&RequestRecord) -> bool,
) -> Result<Vec<RequestRecord>, Response> {
    let recs = match source {
        Source::Status(status) => state.store.list_status(status, STATUS_RECORDS).await,
        Source::Mine => state.store.list(Some(who.name), None, PAGE_RECORDS).await,
    };
    let recs = recs.map_err(|e| {
        tracing::error!(error = %e, "console: store unavailable");
        page_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is unavailable; try again",
        )
    })?;
    Ok(recs
        .into_iter()
        .filter(|r| lifecycle::sees(r, who, state.overseers()) && keep(r))
        .collect())
}

/// The pending requests `who` oversees.
pub fn is_pending_for<'a>(
    state: &'a AppState,
    who: Actor<'a>,
) -> impl Fn(&RequestRecord) -> bool + 'a {
    move |r| {
        r.status == RequestStatus::PendingApproval && lifecycle::oversees(r, who, state.overseers())
    }
}

pub async fn home() -> Redirect {
    Redirect::to("/console/pending")
}

pub async fn pending(
    State(state): State<Arc<AppState>>,
    Query(n): Query<Notice>,
    Viewer(s): Viewer,
) -> Response {
    let who = s.actor();
    let now = Utc::now();
    let recs = match visible(
        &state,
        who,
        Source::Status(RequestStatus::PendingApproval),
        is_pending_for(&state, who),
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let items = recs
        .iter()
        .rev()
        .map(|r| Item::of(r, who, &state, now))
        .collect();
    html(PendingPage {
        frame: frame(&s, "pending", &n),
        items,
    })
}

pub async fn mine(
    State(state): State<Arc<AppState>>,
    Query(n): Query<Notice>,
    Viewer(s): Viewer,
) -> Response {
    let who = s.actor();
    let now = Utc::now();
    let recs = match visible(&state, who, Source::Mine, |_| true).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let items = recs.iter().map(|r| Item::of(r, who, &state, now)).collect();
    html(MinePage {
        frame: frame(&s, "mine", &n),
        items,
    })
}

pub async fn leases(
    State(state): State<Arc<AppState>>,
    Query(n): Query<Notice>,
    Viewer(s): Viewer,
) -> Response {
    let who = s.actor();
    let now = Utc::now();
    let recs = match visible(&state, who, Source::Status(RequestStatus::Active), |_| true).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut items: Vec<Item> = recs.iter().map(|r| Item::of(r, who, &state, now)).collect();
    items.sort_by_key(|i| i.until);
    html(LeasesPage {
        frame: frame(&s, "leases", &n),
        items,
    })
}

pub async fn audit(
    State(state): State<Arc<AppState>>,
    Query(n): Query<Notice>,
    Viewer(s): Viewer,
) -> Response {
    let mut page = AuditPage {
        frame: frame(&s, "audit", &n),
        allowed: lifecycle::auditor(s.actor(), &state.auditors).is_ok(),
        verified: false,
        verification: String::new(),
        total: 0,
        entries: vec![],
    };
    if page.allowed {
        let log = match state.store.audit_log().await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "console: store unavailable");
                return page_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store is unavailable; try again",
                );
            }
        };
        let checked = p0_core::audit::verify_chain(&log);
        page.verified = checked.is_ok();
        page.verification = match checked {
            Ok(()) => format!(
                "all {} entries verify: each hash covers the one before",
                log.len()
            ),
            Err(e) => e,
        };
        page.total = log.len();
        page.entries = log
            .iter()
            .rev()
            .take(AUDIT_SHOWN)
            .map(|e| Entry {
                seq: e.seq,
                at: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                actor: printable(&e.actor),
                action: printable(&e.action),
                request: printable(e.request_id.as_deref().unwrap_or_default()),
                detail: printable(&readable(&e.detail)),
            })
            .collect();
    }
    html(page)
}
