//! A request id is used once: remembered in memory until its grant (or token) expires, and
//! checked against the markers the database holds, which survive restarts and are shared by
//! every instance.

use super::reply::{replayed, unavailable, Refusal};
use crate::provision::DatabaseProvisioner;
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
        id: &RequestId,
        until: i64,
        now: i64,
        provisioner: &dyn DatabaseProvisioner,
    ) -> Result<(), Refusal> {
        {
            let mut seen = self.seen.lock().await;
            seen.retain(|_, u| *u > now);
            if seen.contains_key(id) {
                return Err(replayed());
            }
            seen.insert(id.clone(), until);
        }
        let managed = provisioner.list_managed().await.map_err(unavailable)?;
        if managed
            .iter()
            .any(|a| a.request_id.as_deref() == Some(id.as_str()))
        {
            return Err(replayed());
        }
        Ok(())
    }
}
