//! A request id is used once: remembered in memory until its grant (or token) expires, and
//! durably by the provisioner — [`Managed`](crate::provision::Managed) claims each request in
//! the database ([`Claim`](crate::provision::Claim)) and refuses one claimed before, after its
//! user is gone too; another provisioner is asked whether the request's user exists.

use super::reply::{replayed, unavailable, Refusal};
use crate::provision::{DatabaseProvisioner, ProvisionPlan};
use crate::types::RequestId;
use std::collections::HashMap;
use tokio::sync::Mutex;

/// Request ids already used, with when they may be forgotten.
#[derive(Debug, Default)]
pub(crate) struct ReplayGuard {
    seen: Mutex<HashMap<RequestId, i64>>,
}

impl ReplayGuard {
    /// Claims `id` until `until` (seconds since the epoch), or refuses it as used: first in
    /// memory (the claim stays, whatever happens next), then durably, from what `provisioner`
    /// manages.
    pub(crate) async fn claim(
        &self,
        plan: &ProvisionPlan,
        until: i64,
        now: i64,
        provisioner: &dyn DatabaseProvisioner,
    ) -> Result<(), Refusal> {
        let id = &plan.request_id;
        {
            let mut seen = self.seen.lock().await;
            seen.retain(|_, u| *u > now);
            if seen.contains_key(id) {
                return Err(replayed());
            }
            seen.insert(id.clone(), until);
        }
        // A provisioner that claims requests refuses a used one itself, in the same round
        // trip that claims it; another is asked whether the request's user exists.
        if !provisioner.claims_requests()
            && provisioner
                .serves_request(plan)
                .await
                .map_err(unavailable)?
        {
            return Err(replayed());
        }
        Ok(())
    }
}
