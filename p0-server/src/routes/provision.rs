//! Provisioning, on the requester's behalf only: at creation of an automatically approved
//! request, or at the requester's poll that picks up an approved one.

use crate::error::{internal, not_found, ApiResult};
use crate::lifecycle::{self, Pickup};
use crate::shown;
use crate::state::AppState;
use crate::store::RequestRecord;
use chrono::Utc;
use p0_core::api::{GrantView, ProvisionCall, ProvisionResult};
use p0_core::provision::{Access, ProvisionPlan};
use p0_core::Intent;

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
            state.webhook(shown::pending(rec));
            state.notify();
            return Ok(());
        }
    };
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
            state.store.update(rec).await?;
            state
                .store
                .audit("system", "lease.created", Some(rec.id.as_str()), &detail)
                .await?;
        }
        Err(e) => {
            lifecycle::failed(rec, e.to_string())?;
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
