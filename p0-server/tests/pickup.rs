//! What the server forwards to the agent, seen by a recording agent: the requester's poll that
//! picks up an approved request sends its own proof of possession along (`pickup_proof`), so
//! the agent can take the pickup as the requester's fresh act; provisioning at creation sends
//! none. No database: the agent here only records and answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use axum::routing::post;
use p0_core::api::{ProvisionCall, RequestView};
use p0_core::proof;
use p0_core::seal::key_fingerprint;
use p0_core::{
    IdClaims, IdTokenVerifier, Intent, KeyPair, ObjectRef, Permission, PermissionSet, Privilege,
    RequestId, ResourceId, SignedRequest, Token, VerifyError,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// Tokens of the form `user|group|nonce`, accepted as they are (the proof is what is tested).
struct PlainTokens;

#[async_trait]
impl IdTokenVerifier for PlainTokens {
    async fn verify(&self, token: &Token) -> Result<IdClaims, VerifyError> {
        let parts: Vec<&str> = token.expose_secret().split('|').collect();
        Ok(IdClaims {
            iss: "test".into(),
            sub: parts[0].into(),
            email: Some(parts[0].into()),
            groups: vec![parts[1].into()]
                .into_iter()
                .filter(|g: &String| !g.is_empty())
                .collect(),
            nonce: Some(parts[2].into()),
            exp: i64::MAX,
        })
    }
}

struct Who {
    kp: KeyPair,
    token: String,
}

fn who(name: &str, group: &str) -> Who {
    let kp = KeyPair::generate().unwrap();
    let nonce = key_fingerprint(kp.public_pem.as_bytes()).unwrap();
    Who {
        token: format!("{name}|{group}|{nonce}"),
        kp,
    }
}

/// A proven call; returns the status, the body and the proof it carried.
async fn call(base: &str, w: &Who, method: &str, path: &str, body: &[u8]) -> (u16, Value, String) {
    let now = chrono::Utc::now().timestamp();
    let p = proof::sign(&w.kp.private_pem, method, path, body, &w.token, now).unwrap();
    let resp = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(&w.token)
        .header(
            proof::KEY_HEADER,
            proof::key_header(w.kp.public_pem.as_bytes()).unwrap(),
        )
        .header(proof::PROOF_HEADER, &p)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null), p)
}

fn create_body(w: &Who, sql: &str) -> Vec<u8> {
    let signed = SignedRequest {
        request_id: RequestId::generate(),
        resource: ResourceId::new("pg/app").unwrap(),
        intent: Intent::Query(sql.into()),
        reason: "r".into(),
        duration_secs: 60,
        issued_at: chrono::Utc::now().timestamp(),
    };
    serde_json::to_vec(&json!({
        "signature": signed.sign(&w.kp.private_pem).unwrap(),
        "signed": signed,
        "public_key": w.kp.public_pem,
    }))
    .unwrap()
}

async fn serve(router: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pickup_poll_forwards_its_proof_and_creation_none() {
    let calls: Arc<Mutex<Vec<ProvisionCall>>> = Arc::default();
    let seen = calls.clone();
    let agent = axum::Router::new()
        .route(
            "/v1/explain",
            post(|axum::Json(v): axum::Json<Value>| async move {
                let privilege = if v["sql"].as_str().unwrap().starts_with("SELECT") {
                    Privilege::Select
                } else {
                    Privilege::Update
                };
                let set: PermissionSet =
                    [Permission::new(privilege, ObjectRef::table("public", "t"))]
                        .into_iter()
                        .collect();
                axum::Json(json!({ "permissions": set }))
            }),
        )
        .route(
            "/v1/provision",
            post(move |axum::Json(call): axum::Json<ProvisionCall>| {
                let seen = seen.clone();
                async move {
                    let answer = json!({
                        "username": "p0_alice_0123456789",
                        "sealed_password": "sealed",
                        "role": "p0r_x",
                        "expires_at": call.plan.expires_at,
                    });
                    seen.lock().unwrap().push(call);
                    axum::Json(answer)
                }
            }),
        );
    let agent_url = serve(agent).await;
    let config = p0_server::ServerConfig::from_toml(&format!(
        "listen = \"127.0.0.1:0\"\nstore = \"sqlite::memory:\"\nissuer = \"test\"\naudience = \"p0\"\nrules = \"-\"\n\
         [[resource]]\nname = \"pg/app\"\nengine = \"postgres\"\nhost = \"db\"\nport = 5432\ndatabase = \"app\"\n\
         agent_url = \"{agent_url}\"\nagent_secret = \"s\"\n"
    ))
    .unwrap();
    let rules = p0_core::RulesRouter::from_toml(
        "[[rule]]\nname = \"reads\"\nprivileges = [\"SELECT\"]\naction = \"approve\"\n\n\
         [[rule]]\nname = \"writes\"\naction = \"approval\"\napprovers = [\"group:dba\"]\n",
    )
    .unwrap();
    let store = Arc::new(
        p0_server::store::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap(),
    );
    let state =
        p0_server::AppState::new(&config, store, Arc::new(rules), Arc::new(PlainTokens), None)
            .unwrap();
    let base = serve(p0_server::build_router(state)).await;
    let alice = who("alice@example.com", "");
    let bob = who("bob@example.com", "dba");

    // Auto-approved: provisioned at creation, with no pickup proof.
    let (s, v, _) = call(
        &base,
        &alice,
        "POST",
        "/v1/requests",
        &create_body(&alice, "SELECT a FROM t"),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (201, Some("active")), "{v}");
    assert_eq!(calls.lock().unwrap().last().unwrap().pickup_proof, None);

    // Approved, then picked up by alice's poll: that poll's proof goes to the agent.
    let (s, v, _) = call(
        &base,
        &alice,
        "POST",
        "/v1/requests",
        &create_body(&alice, "UPDATE t SET a = 1"),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (201, Some("pending_approval")),
        "{v}"
    );
    let id = v["id"].as_str().unwrap().to_string();
    let (_, v, _) = call(&base, &bob, "GET", &format!("/v1/requests/{id}"), b"").await;
    let shown: RequestView = serde_json::from_value(v).unwrap();
    let approve = serde_json::to_vec(&json!({ "digest": shown.approval_digest() })).unwrap();
    let (s, v, _) = call(
        &base,
        &bob,
        "POST",
        &format!("/v1/requests/{id}/approve"),
        &approve,
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("provisioning")),
        "{v}"
    );
    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "an approver's call provisions nothing"
    );
    // Bob's poll does not pick it up either: only the requester's does.
    let (s, v, _) = call(&base, &bob, "GET", &format!("/v1/requests/{id}"), b"").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("provisioning")),
        "{v}"
    );
    assert_eq!(calls.lock().unwrap().len(), 1);
    let path = format!("/v1/requests/{id}?wait=5");
    let (s, v, sent) = call(&base, &alice, "GET", &path, b"").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "{v}");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    let pickup = calls[1].pickup_proof.clone().unwrap();
    assert_eq!(pickup, sent);
    assert_eq!(calls[1].id_token, alice.token);
    // And it verifies as the agent will check it: alice's key, GET of this path, her token.
    let claims = proof::open(alice.kp.public_pem.as_bytes(), &pickup).unwrap();
    assert_eq!(
        (claims.htm.as_str(), claims.htu.as_str()),
        ("GET", path.as_str())
    );
    assert_eq!(claims.ath, proof::digest(alice.token.as_bytes()));
}
