//! A custom `Router`: reads are approved, anything touching a `pii` schema needs the privacy
//! team, everything else needs one DBA, and requests longer than an hour are denied. First its
//! decisions on their own, then the same router inside a real p0-server (with the agent, a
//! throwaway PostgreSQL and the development issuer), deciding requests that arrive over HTTP.
//!
//!     cargo run -p p0-examples --example custom_router

use p0_core::api::{CreateRequest, RequestStatus, RequestView};
use p0_core::proof;
use p0_core::route::Approver;
use p0_core::seal::key_fingerprint;
use p0_core::{
    AccessRequest, Decision, Intent, ObjectKind, PermissionExtractor, PermissionSet,
    PostgresExtractor, Privilege, RequestId, ResourceId, Router,
};
use p0_core::{KeyPair, SignedRequest};
use p0_stack::{Stack, DEMO_RULES, RESOURCE};
use std::sync::Arc;
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let router = PrivacyAwareRouter;
    let x = PostgresExtractor::new().with_database("app");
    let resource = ResourceId::new("pg/app")?;
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
    in_a_real_server().await
}

/// The router in p0-server: three requests by alice over HTTP, signed with her CLI key.
async fn in_a_real_server() -> anyhow::Result<()> {
    let mut stack = Stack::start(DEMO_RULES, 3600).await?;
    stack.stop_server();
    stack.set_router(Arc::new(PrivacyAwareRouter));
    stack.start_server().await?;
    let http = reqwest::Client::new();
    let keys = KeyPair::generate()?;
    let nonce = key_fingerprint(keys.public_pem.as_bytes())?;
    let token: serde_json::Value = http
        .post(format!("{}/dev/token", stack.server_url))
        .json(&serde_json::json!({"user": "alice@example.com", "nonce": nonce}))
        .send()
        .await?
        .json()
        .await?;
    let token = token["id_token"].as_str().unwrap_or_default().to_string();
    for (sql, secs, expected) in [
        (
            "SELECT count(*) FROM sales.orders",
            900,
            RequestStatus::Active,
        ),
        (
            "UPDATE sales.orders SET total = 0",
            900,
            RequestStatus::PendingApproval,
        ),
        ("SELECT 1 FROM sales.orders", 7200, RequestStatus::Denied),
    ] {
        let signed = SignedRequest {
            request_id: RequestId::generate(),
            resource: ResourceId::new(RESOURCE)?,
            intent: Intent::Query(sql.into()),
            reason: "example".into(),
            duration_secs: secs,
            issued_at: chrono::Utc::now().timestamp(),
        };
        let signature = signed.sign(&keys.private_pem)?;
        let body = serde_json::to_vec(&CreateRequest {
            signed,
            signature,
            public_key: keys.public_pem.clone(),
        })?;
        // Every call proves possession of the key the token commits to.
        let now = chrono::Utc::now().timestamp();
        let proof = proof::sign(
            &keys.private_pem,
            "POST",
            "/v1/requests",
            &body,
            &token,
            now,
        )?;
        let v: RequestView = http
            .post(format!("{}/v1/requests", stack.server_url))
            .bearer_auth(&token)
            .header(
                proof::KEY_HEADER,
                proof::key_header(keys.public_pem.as_bytes())?,
            )
            .header(proof::PROOF_HEADER, proof)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .json()
            .await?;
        let user = v.grant.as_ref().map(|g| format!(" as {}", g.username));
        println!(
            "server: {sql} ({secs}s) -> {}{}",
            v.status.as_str(),
            user.unwrap_or_default()
        );
        anyhow::ensure!(
            v.status == expected,
            "expected {expected:?}: {:?}",
            v.message
        );
    }
    Ok(())
}
