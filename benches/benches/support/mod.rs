//! What the benches that call the server share: a development-issuer login, the
//! proof-of-possession headers every API call carries, and a query request made as the CLI
//! makes it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use p0_core::seal::key_fingerprint;
use p0_core::KeyPair;

/// An ID token for `user` from the stack's development issuer, committed to `kp`.
pub async fn dev_token(http: &reqwest::Client, server: &str, user: &str, kp: &KeyPair) -> String {
    let nonce = key_fingerprint(kp.public_pem.as_bytes()).unwrap();
    let tok: serde_json::Value = http
        .post(format!("{server}/dev/token"))
        .json(&serde_json::json!({"user": user, "nonce": nonce}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tok["id_token"].as_str().unwrap().to_string()
}

/// The proof-of-possession headers of one call.
pub fn proven(
    kp: &KeyPair,
    method: &str,
    path: &str,
    body: &[u8],
    token: &str,
) -> reqwest::header::HeaderMap {
    use p0_core::proof;
    let now = chrono::Utc::now().timestamp();
    let mut h = reqwest::header::HeaderMap::new();
    let key = proof::key_header(kp.public_pem.as_bytes()).unwrap();
    h.insert(proof::KEY_HEADER, key.parse().unwrap());
    let p = proof::sign(&kp.private_pem, method, path, body, token, now).unwrap();
    h.insert(proof::PROOF_HEADER, p.parse().unwrap());
    h
}

/// A query request for `sql` on `resource`, for `secs` seconds, signed by `kp` as the CLI signs
/// it and posted to `server`: the server's answer.
pub async fn request_query(
    http: &reqwest::Client,
    server: &str,
    kp: &KeyPair,
    token: &str,
    resource: &str,
    sql: &str,
    secs: u64,
) -> p0_core::api::RequestView {
    let signed = p0_core::SignedRequest {
        request_id: p0_core::RequestId::generate(),
        resource: p0_core::ResourceId::new(resource).unwrap(),
        intent: p0_core::Intent::Query(sql.into()),
        reason: "bench".into(),
        duration_secs: secs,
        issued_at: chrono::Utc::now().timestamp(),
    };
    let signature = signed.sign(&kp.private_pem).unwrap();
    let body = serde_json::to_vec(&p0_core::api::CreateRequest {
        signed,
        signature,
        public_key: kp.public_pem.clone(),
    })
    .unwrap();
    http.post(format!("{server}/v1/requests"))
        .bearer_auth(token)
        .headers(proven(kp, "POST", "/v1/requests", &body, token))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
