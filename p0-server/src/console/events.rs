//! `GET /console/events`: server-sent events that tell an open page the requests it shows
//! changed, so it refreshes without a reload. A change on this replica wakes the stream at
//! once; one on another replica is seen within [`POLL`], since the stream compares what the
//! signed-in person may see rather than trusting local notifications.

use super::pages::{visible, Viewer};
use crate::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// How often the stream looks at the store when nothing woke it.
const POLL: Duration = Duration::from_secs(3);

pub async fn events(State(state): State<Arc<AppState>>, Viewer(s): Viewer) -> Response {
    let stream = async_stream(state, s);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A fingerprint of what `s` may see: ids and states of the newest requests.
async fn fingerprint(state: &AppState, s: &super::session::Session) -> Option<u64> {
    let recs = visible(state, s.actor(), false, |_| true).await.ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in &recs {
        r.id.as_str().hash(&mut h);
        r.status.as_str().hash(&mut h);
        r.approvals.len().hash(&mut h);
    }
    Some(h.finish())
}

fn async_stream(
    state: Arc<AppState>,
    s: super::session::Session,
) -> impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>> {
    let changed = state.changed.subscribe();
    let stopping = state.stopping.subscribe();
    futures_util::stream::unfold(
        (None, changed, stopping),
        move |(mut last, mut changed, mut stopping): (Option<u64>, _, _)| {
            let state = state.clone();
            let s = s.clone();
            async move {
                loop {
                    if *stopping.borrow() || s.exp <= chrono::Utc::now().timestamp() {
                        return None;
                    }
                    let now = fingerprint(&state, &s).await;
                    if last.is_some() && now.is_some() && now != last {
                        let event = Event::default().event("changed").data("changed");
                        return Some((Ok(event), (now, changed, stopping)));
                    }
                    if now.is_some() {
                        last = now;
                    }
                    tokio::select! {
                        _ = changed.changed() => {}
                        _ = stopping.changed() => {}
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        },
    )
}
