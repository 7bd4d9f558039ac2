//! The sweeper's failures reach the audit log: the reaper asks each agent to sweep and records
//! each user the agent removed, and each one it could not remove once until it stops failing.
//! The agent here only answers sweeps as a stuck database would make it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use axum::routing::post;
use p0_core::{IdClaims, IdTokenVerifier, Token, VerifyError};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct NoTokens;

#[async_trait]
impl IdTokenVerifier for NoTokens {
    async fn verify(&self, _: &Token) -> Result<IdClaims, VerifyError> {
        Err(VerifyError::Invalid("no tokens here".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_the_sweeper_cannot_remove_is_in_the_audit_log_once_until_it_recovers() {
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    let answers: Vec<Value> = vec![
        json!({"removed": ["p0_gone_1"], "failed": [{"user": "p0_stuck_1", "error": "database `cold` takes no connections", "attempts": 1}]}),
        json!({"removed": [], "failed": [{"user": "p0_stuck_1", "error": "database `cold` takes no connections", "attempts": 2}]}),
        json!({"removed": [], "failed": []}),
        json!({"removed": [], "failed": [{"user": "p0_stuck_1", "error": "again", "attempts": 1}]}),
    ];
    let agent = axum::Router::new().route(
        "/v1/sweep",
        post(move || {
            let i = count.fetch_add(1, Ordering::SeqCst);
            let answer = answers[i.min(3)].clone();
            async move { axum::Json(answer) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, agent).await.unwrap() });
    let config = p0_server::ServerConfig::from_toml(&format!(
        "listen = \"127.0.0.1:0\"\nstore = \"sqlite::memory:\"\nissuer = \"test\"\naudience = \"p0\"\nrules = \"-\"\n\
         [[resource]]\nname = \"pg/app\"\nengine = \"postgres\"\nhost = \"db\"\nport = 5432\ndatabase = \"app\"\n\
         agent_url = \"{agent_url}\"\nagent_secret = \"s\"\n"
    ))
    .unwrap();
    let store = Arc::new(
        p0_server::store::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap(),
    );
    let rules = p0_core::RulesRouter::from_toml("").unwrap();
    let state = p0_server::AppState::new(
        &config,
        store.clone(),
        Arc::new(rules),
        Arc::new(NoTokens),
        None,
    )
    .unwrap();
    let mut reported = HashSet::new();
    let actions = |log: &[p0_core::audit::AuditEntry], action: &str| {
        log.iter().filter(|e| e.action == action).count()
    };
    use p0_server::store::Store;
    for _ in 0..2 {
        p0_server::sweep_once(&state, &mut reported).await;
    }
    let log = store.audit_log().await.unwrap();
    assert_eq!(actions(&log, "agent.swept"), 1);
    assert_eq!(actions(&log, "agent.sweep_failed"), 1, "{log:?}");
    let failed = log
        .iter()
        .find(|e| e.action == "agent.sweep_failed")
        .unwrap();
    assert!(failed.detail.contains("p0_stuck_1") && failed.detail.contains("takes no connections"));
    // It recovers, then fails again: on record again.
    for _ in 0..2 {
        p0_server::sweep_once(&state, &mut reported).await;
    }
    let log = store.audit_log().await.unwrap();
    assert_eq!(actions(&log, "agent.sweep_failed"), 2);
    assert_eq!(n.load(Ordering::SeqCst), 4);
    p0_core::audit::verify_chain(&log).unwrap();
}
