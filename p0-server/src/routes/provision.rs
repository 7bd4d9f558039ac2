//! Provisioning, on the requester's behalf only: at creation of an automatically approved
//! request, or at the requester's poll that picks up an approved one.

use crate::error::{conflict, internal, not_found, ApiResult};
use crate::lifecycle::{self, Pickup};
use crate::state::AppState;
use crate::store::RequestRecord;
use chrono::Utc;
use p0_core::api::{GrantView, ProvisionCall, ProvisionResult};
use p0_core::provision::{Access, ProvisionPlan};
use p0_core::Intent;

/// How long a replica's claim on asking the agent lasts: past the agent call's own timeout.
const CLAIM: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// Asks the agent for the user, with the requester's own token. Called only on the
/// requester's behalf (creation or their poll), never with stored credentials. `pickup_proof`
/// is the requester's proof of the poll that picks up an approved request: the agent takes it
/// as their fresh act.
pub async fn provision(
    state: &AppState,
    rec: &mut RequestRecord,
    token: &str,
    pickup_proof: Option<&str>,
) -> ApiResult<()> {
    {
        let mut busy = state.provisioning.lock().await;
        if !busy.insert(rec.id.clone()) {
            return Ok(());
        }
    }
    let result = provision_locked(state, rec, token, pickup_proof).await;
    state.provisioning.lock().await.remove(&rec.id);
    result
}

async fn provision_locked(
    state: &AppState,
    rec: &mut RequestRecord,
    token: &str,
    pickup_proof: Option<&str>,
) -> ApiResult<()> {
    let Some((_, agent)) = state.resources.get(&rec.signed.resource) else {
        return Err(not_found("unknown resource"));
    };
    let expires_at = match lifecycle::pickup(rec, Utc::now())? {
        Pickup::Grant { expires_at } => expires_at,
        Pickup::Void => {
            state.store.update(rec).await?;
            state
                .store
                .audit(
                    "system",
                    "request.approvals_void",
                    Some(rec.id.as_str()),
                    &rec.digest(),
                )
                .await?;
            state.announce_pending(rec);
            state.notify();
            return Ok(());
        }
    };
    // Claim the call: of the replicas picking the request up at once, only the one whose
    // conditional update lands asks the agent (the others answer 409, and the client's next
    // poll sees the outcome). A claim left by a replica that died ends after CLAIM.
    let now = Utc::now();
    if rec.claimed_until.is_some_and(|t| t > now) {
        return Err(conflict(
            "the request is being provisioned; try again shortly",
        ));
    }
    rec.claimed_until = Some(now + CLAIM);
    state.store.update(rec).await?;
    let access = match (&rec.signed.intent, &rec.permissions) {
        (Intent::Query(_), Some(set)) => Access::Permissions(set.clone()),
        (Intent::Role(r), _) => Access::Role(r.clone()),
        _ => return Err(internal("query request without permissions")),
    };
    let call = ProvisionCall {
        plan: ProvisionPlan {
            request_id: rec.id.clone(),
            requester: rec.requester.clone(),
            resource: rec.signed.resource.clone(),
            access,
            expires_at,
        },
        id_token: token.to_string(),
        public_key: rec.public_key.clone(),
        signed: rec.signed.clone(),
        signature: rec.signature.clone(),
        pickup_proof: pickup_proof.map(str::to_string),
    };
    match agent
        .call::<_, ProvisionResult>("/v1/provision", &call)
        .await
    {
        Ok(r) => {
            let detail = format!("user {} until {}", r.username, r.expires_at.to_rfc3339());
            let grant = GrantView {
                username: r.username,
                sealed_password: r.sealed_password,
                role: r.role,
                expires_at: r.expires_at,
            };
            lifecycle::provisioned(rec, grant)?;
            rec.claimed_until = None;
            rec.message = None;
            state.store.update(rec).await?;
            state
                .store
                .audit("system", "lease.created", Some(rec.id.as_str()), &detail)
                .await?;
        }
        // The agent could not be reached (or failed on its side): the request stays approved
        // and provisioning; the requester's next poll, with a fresh proof, tries again.
        Err(crate::agent_client::AgentError::Unavailable(why)) => {
            tracing::warn!(request = %rec.id, error = %why, "agent unavailable at pick-up; the next poll tries again");
            rec.claimed_until = None;
            rec.message = Some(format!(
                "the agent could not be reached ({why}); trying again at the next poll"
            ));
            state.store.update(rec).await?;
        }
        Err(e) => {
            lifecycle::failed(rec, e.to_string())?;
            rec.claimed_until = None;
            state.store.update(rec).await?;
            state
                .store
                .audit(
                    "system",
                    "lease.failed",
                    Some(rec.id.as_str()),
                    &e.to_string(),
                )
                .await?;
        }
    }
    state.notify();
    Ok(())
}
