//! Revokes leases at expiry through their agent, retrying with backoff until done (the moves
//! and the backoff are the lifecycle's). State is in the store, so a restarted server picks up
//! where it stopped.

use crate::lifecycle;
use crate::state::AppState;
use crate::store::RequestRecord;
use chrono::Utc;
use p0_core::api::RevokeCall;
use p0_core::provision::{RevokeReport, SweepReport};
use p0_core::ResourceId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How many revocations one replica has under way at once (claimed leases, all agents).
const IN_FLIGHT: usize = 64;

/// How many revocations one replica sends one agent at once.
const PER_AGENT: usize = 16;

/// How long a reaper's claim on a due lease lasts: other replicas' reapers leave the lease
/// alone until then, and take it over after if this one died mid-revoke.
const REVOKE_CLAIM: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// One pass: claims due leases in batches as room frees up (at most [`IN_FLIGHT`] under way,
/// [`PER_AGENT`] per agent) until none is left. Replicas claim disjoint batches, so they share
/// the work; a claim whose replica died lapses after [`REVOKE_CLAIM`].
pub async fn reap_once(state: &Arc<AppState>) {
    let mut agents: HashMap<ResourceId, Arc<tokio::sync::Semaphore>> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if state.is_stopping() {
            // Claim no more: what is under way finishes, the rest is another replica's.
            while tasks.join_next().await.is_some() {}
            return;
        }
        let room = IN_FLIGHT - tasks.len();
        let now = Utc::now();
        let claimed = match state.store.claim_due(now, room, now + REVOKE_CLAIM).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "reaper cannot claim due leases");
                Vec::new()
            }
        };
        let more = claimed.len() == room;
        for rec in claimed {
            let limit = agents
                .entry(rec.signed.resource.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PER_AGENT)))
                .clone();
            let state = state.clone();
            tasks.spawn(async move {
                let Ok(_permit) = limit.acquire_owned().await else {
                    return;
                };
                reap_one(&state, rec).await;
            });
        }
        if !more {
            // Nothing more is due: finish what is under way.
            while tasks.join_next().await.is_some() {}
            return;
        }
        // Claim the next batch once a quarter of this one is done.
        let target = tasks.len().saturating_sub(IN_FLIGHT / 4);
        while tasks.len() > target {
            tasks.join_next().await;
        }
    }
}

/// Revokes one claimed lease, at its expiry to the millisecond (the store's is to the second).
async fn reap_one(state: &AppState, mut rec: RequestRecord) {
    let Some(grant) = rec.grant.clone() else {
        return;
    };
    let Some((_, agent)) = state.resources.get(&rec.signed.resource) else {
        return;
    };
    // Never early, even by the fraction of a second the store does not keep.
    if let Ok(wait) = (grant.expires_at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    match agent
        .call::<_, RevokeReport>(
            "/v1/revoke",
            &RevokeCall {
                username: grant.username.clone(),
            },
        )
        .await
    {
        Ok(report) => {
            if let Err(e) = lifecycle::expired(&mut rec) {
                tracing::warn!(request = %rec.id, error = %e, "reaper cannot expire");
                return;
            }
            if let Err(e) = state.store.update(&mut rec).await {
                // Another replica expired (or someone ended) it first: nothing to add.
                if e.downcast_ref::<crate::store::Conflict>().is_none() {
                    tracing::warn!(error = %e, "reaper cannot save");
                }
                return;
            }
            let detail = revoked_detail(&grant.username, &report);
            let _ = state
                .store
                .audit("system", "lease.expired", Some(rec.id.as_str()), &detail)
                .await;
            tracing::info!(request = %rec.id, user = %grant.username, "lease expired and revoked");
            state.notify();
        }
        Err(e) => {
            let first = lifecycle::revoke_failed(&mut rec, Utc::now());
            tracing::warn!(request = %rec.id, attempt = rec.revoke_attempts, error = %e, "revocation failed; retrying");
            if first {
                let _ = state
                    .store
                    .audit(
                        "system",
                        "lease.revoke_failed",
                        Some(rec.id.as_str()),
                        &e.to_string(),
                    )
                    .await;
            }
            let _ = state.store.update(&mut rec).await;
        }
    }
}

/// What an audit entry says of a revocation. Objects the user owned or defined (the agent's
/// notes) go into the entry and the server's log, so that they are not left to fail silently.
pub(crate) fn revoked_detail(username: &p0_core::Username, report: &RevokeReport) -> String {
    let mut detail = format!(
        "user {username} removed, {} session(s) ended",
        report.sessions_terminated
    );
    if let Some(at) = report.disabled_at {
        detail.push_str(&format!(
            "; login disabled and sessions ended at {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ));
    }
    for note in &report.notes {
        tracing::warn!(user = %username, note = %note, "revocation needs attention");
        detail.push_str("; ");
        detail.push_str(note);
    }
    detail
}

/// Asks every agent to sweep (remove managed users past their expiry, whatever the store says)
/// and records in the audit log each user it removed and each one it could not remove — once
/// per user until that user stops failing (`reported` keeps which), so a stuck user is on
/// record without flooding the log.
pub async fn sweep_once(state: &AppState, reported: &mut HashSet<(String, String)>) {
    for (resource, (_, agent)) in state.resources.iter() {
        let report: SweepReport = match agent.call("/v1/sweep", &serde_json::json!({})).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(resource = %resource, error = %e, "sweep failed");
                continue;
            }
        };
        for user in &report.removed {
            let detail = format!("{resource}: user {user} past its expiry removed by the sweeper");
            let _ = state
                .store
                .audit("system", "agent.swept", None, &detail)
                .await;
        }
        for f in &report.failed {
            if reported.insert((resource.to_string(), f.user.clone())) {
                tracing::warn!(resource = %resource, user = %f.user, attempts = f.attempts, error = %f.error, "the sweeper cannot remove a user");
                let detail = format!(
                    "{resource}: user {} not removed after {} attempt(s): {}",
                    f.user, f.attempts, f.error
                );
                let _ = state
                    .store
                    .audit("system", "agent.sweep_failed", None, &detail)
                    .await;
            }
        }
        reported
            .retain(|(r, u)| r != resource.as_str() || report.failed.iter().any(|f| &f.user == u));
    }
}

/// The shortest time between two passes of the reaper.
const MIN_PASS: Duration = Duration::from_millis(100);

/// How often the reaper also asks the agents to sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Runs forever: revokes due leases every `every`, and asks agents to sweep every minute.
pub async fn run_reaper(state: Arc<AppState>, every: Duration) {
    let mut reported = HashSet::new();
    let mut last_sweep: Option<tokio::time::Instant> = None;
    loop {
        reap_once(&state).await;
        if let Err(e) = state.store.forget_proofs(Utc::now().timestamp()).await {
            tracing::warn!(error = %e, "reaper cannot forget old proofs");
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            sweep_once(&state, &mut reported).await;
            last_sweep = Some(tokio::time::Instant::now());
        }
        // Until the next lease is due, if that is sooner than `every`; a change on this
        // replica (a lease made or ended) wakes it to look again.
        let until_due = match state.store.next_due().await {
            Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            _ => every,
        };
        let mut changed = state.changed.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(until_due.clamp(MIN_PASS, every)) => {}
            _ = changed.changed() => {
                // However busy the server, no more than one pass per MIN_PASS.
                tokio::time::sleep(MIN_PASS).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_detail_says_when_login_was_disabled() {
        let user = p0_core::Username::new("p0_alice_0123456789").unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let report = RevokeReport {
            user_dropped: true,
            sessions_terminated: 2,
            disabled_at: Some(at),
            ..RevokeReport::default()
        };
        assert_eq!(
            revoked_detail(&user, &report),
            "user p0_alice_0123456789 removed, 2 session(s) ended; login disabled and sessions ended at 2026-11-30T12:00:00.250Z"
        );
    }
}
