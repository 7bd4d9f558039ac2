//! Provisioning plans as the agent receives them (JSON from the server): parsing and the
//! static escalation guard must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p0_core::{GuardPolicy, ProvisionPlan};

fuzz_target!(|data: &[u8]| {
    if let Ok(plan) = serde_json::from_slice::<ProvisionPlan>(data) {
        let policy = GuardPolicy::for_database("app", "p0_agent");
        if let p0_core::Access::Permissions(set) = &plan.access {
            let _ = policy.check_permissions(set);
            let _ = set.stable_hash();
        }
        let _ = p0_core::provision::username_for(&plan.requester, &plan.request_id, 32);
    }
});
