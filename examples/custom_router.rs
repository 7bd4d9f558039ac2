//! A custom `Router`: reads are approved, anything touching a `pii` schema needs the privacy
//! team, everything else needs one DBA, and requests longer than an hour are denied.
//!
//!     cargo run -p p0-examples --example custom_router

use p0_core::route::Approver;
use p0_core::{
    AccessRequest, Decision, Intent, ObjectKind, PermissionExtractor, PermissionSet,
    PostgresExtractor, Privilege, RequestId, ResourceId, Router,
};
use std::time::Duration;

struct PrivacyAwareRouter;

impl Router for PrivacyAwareRouter {
    fn route(&self, req: &AccessRequest, set: &PermissionSet, _groups: &[String]) -> Decision {
        if req.duration_secs > 3600 {
            return Decision::Deny {
                reason: "at most one hour".into(),
            };
        }
        let touches_pii = set.iter().any(|p| {
            p.object.schema.as_deref() == Some("pii")
                || (p.object.kind == ObjectKind::Schema && p.object.name == "pii")
        });
        let reads_only = set.iter().all(|p| {
            matches!(
                p.privilege,
                Privilege::Select | Privilege::Usage | Privilege::Connect
            )
        });
        let max_duration = Duration::from_secs(req.duration_secs);
        match (touches_pii, reads_only) {
            (true, _) => Decision::NeedsApproval {
                approvers: vec![Approver::Group("privacy".into())],
                count: 1,
                max_duration,
                allow_self_approval: false,
            },
            (false, true) => Decision::Approve { max_duration },
            (false, false) => Decision::NeedsApproval {
                approvers: vec![Approver::Group("dba".into())],
                count: 1,
                max_duration,
                allow_self_approval: false,
            },
        }
    }
}

fn main() {
    let router = PrivacyAwareRouter;
    let x = PostgresExtractor::new().with_database("app");
    let Ok(resource) = ResourceId::new("pg/app") else {
        return;
    };
    for (sql, secs) in [
        ("SELECT * FROM sales.orders", 900),
        ("SELECT email FROM pii.people", 900),
        ("UPDATE sales.orders SET total = 0", 900),
        ("SELECT 1 FROM sales.orders", 86_400),
    ] {
        let req = AccessRequest {
            id: RequestId::generate(),
            requester: "alice@example.com".into(),
            resource: resource.clone(),
            intent: Intent::Query(sql.into()),
            reason: "example".into(),
            duration_secs: secs,
            public_key: String::new(),
        };
        let set = x.extract(sql).map(|e| e.permissions).unwrap_or_default();
        let decision = match router.route(&req, &set, &[]) {
            Decision::Approve { .. } => "approve".to_string(),
            Decision::NeedsApproval { approvers, .. } => format!("needs approval by {approvers:?}"),
            Decision::Deny { reason } => format!("deny: {reason}"),
        };
        println!("{sql} ({secs}s) -> {decision}");
    }
}
