//! `GET /console/events`: server-sent events that tell an open page the requests it shows
//! changed, so it refreshes without a reload. A change on this replica wakes the stream at
//! once; one on another replica is seen within [`POLL`], since the stream compares what the
//! signed-in person may see rather than trusting local notifications.

use super::pages::{visible, Source, Viewer};
use crate::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use p0_core::api::RequestStatus;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

/// How often the stream looks at the store when nothing woke it.
const POLL: Duration = Duration::from_secs(5);
/// Open streams per person, and in all: each looks at the store every [`POLL`]; past these a
/// page simply does not update itself (it still works with a reload).
const PER_PERSON: usize = 4;
const IN_ALL: usize = 200;

/// Open streams, by person.
#[derive(Debug, Default)]
pub struct Streams(Mutex<HashMap<String, usize>>);

/// One open stream; it counts until dropped.
struct Slot {
    streams: Arc<AppState>,
    name: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(console) = self.streams.console.as_deref() {
            let mut open = console.streams.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = open.get_mut(&self.name) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&self.name);
                }
            }
        }
    }
}

fn take_slot(state: &Arc<AppState>, name: &str) -> Option<Slot> {
    let console = state.console.as_deref()?;
    let mut open = console.streams.0.lock().unwrap_or_else(|p| p.into_inner());
    let total: usize = open.values().sum();
    let mine = open.get(name).copied().unwrap_or(0);
    if total >= IN_ALL || mine >= PER_PERSON {
        return None;
    }
    *open.entry(name.to_string()).or_default() += 1;
    Some(Slot {
        streams: state.clone(),
        name: name.to_string(),
    })
}

pub async fn events(State(state): State<Arc<AppState>>, Viewer(s): Viewer) -> Response {
    let Some(slot) = take_slot(&state, &s.name) else {
        tracing::warn!(approver = %s.name, "console: too many open event streams; one refused");
        return super::page_error(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too many console pages open: this one will not update itself",
        );
    };
    let stream = async_stream(state, s, slot);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A fingerprint of what `s` may see: ids, states and approvals of the pending requests, the
/// live leases and their own newest requests.
async fn fingerprint(state: &AppState, s: &super::session::Session) -> Option<u64> {
    let mut recs = Vec::new();
    for source in [
        Source::Status(RequestStatus::PendingApproval),
        Source::Status(RequestStatus::Active),
        Source::Mine,
    ] {
        recs.extend(visible(state, s.actor(), source, |_| true).await.ok()?);
    }
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
    slot: Slot,
) -> impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>> {
    let changed = state.changed.subscribe();
    let stopping = state.stopping.subscribe();
    futures_util::stream::unfold(
        (None, changed, stopping, slot),
        move |(mut last, mut changed, mut stopping, slot): (Option<u64>, _, _, Slot)| {
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
                        return Some((Ok(event), (now, changed, stopping, slot)));
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
