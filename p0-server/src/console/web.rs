//! The console's routes, its security headers, and its own script and stylesheet.

use super::{actions, events, login, page_error, pages};
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// The console's routes (answering 404 when it is not configured).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route("/console/pending", get(pages::pending))
        .route("/console/mine", get(pages::mine))
        .route("/console/leases", get(pages::leases))
        .route("/console/audit", get(pages::audit))
        .route("/console/login", get(login::login))
        .route("/console/callback", get(login::callback))
        .route("/console/logout", post(actions::logout))
        .route("/console/signed-out", get(signed_out))
        .route("/console/requests/{id}/{verb}", post(actions::act))
        .route("/console/events", get(events::events))
        .route("/console/app.js", get(app_js))
        .route("/console/style.css", get(style_css))
        .layer(axum::middleware::from_fn(headers))
}

/// What every console answer carries: nothing but this server's own script, style and forms;
/// no framing; no caching; no referrer beyond this origin (`no-referrer` would make the
/// browser send `Origin: null` with forms, which the console refuses).
async fn headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../templates/console/app.js"),
    )
        .into_response()
}

async fn style_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../templates/console/style.css"),
    )
        .into_response()
}

async fn signed_out() -> Response {
    page_error(StatusCode::OK, "You are signed out of the p0 console.")
}
