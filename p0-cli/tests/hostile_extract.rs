//! One request must not stop the agent (issue 13, part 1). The query that crashed it — `SELECT
//! 1+1+...` with 40,000 terms, and its depth-only variant just under the size bound — is sent
//! to a live agent (as a server holding its HMAC secret would) and to the server (as a
//! requester would); each is refused with a one-line reason naming the bound, and a normal
//! request right after is served by the same processes. The agent runs in this test's own
//! process: a stack overflow there would abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::api::{hmac_sign, HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use p0_core::seal::key_fingerprint;
use p0_core::{Intent, KeyPair, RequestId, ResourceId, SignedRequest};
use p0_stack::{Stack, DEMO_RULES};
use serde_json::{json, Value};

const NORMAL: &str = "SELECT name FROM sales.customers";

/// 40,000 terms, 80 KB: what crashed the agent.
fn forty_thousand_terms() -> String {
    format!("SELECT {}", vec!["1"; 40_000].join("+"))
}

/// 32,000 terms, just under the 64 KiB size bound: refused for its depth alone.
fn deep_but_small() -> String {
    format!("SELECT {}", vec!["1"; 32_000].join("+"))
}

async fn explain(stack: &Stack, http: &reqwest::Client, sql: &str) -> (u16, Value) {
    let path = "/v1/explain";
    let body = serde_json::to_vec(&json!({ "sql": sql })).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let r = http
        .post(format!("{}{path}", stack.agent_url))
        .header(HMAC_TIME_HEADER, ts.to_string())
        .header(
            HMAC_SIG_HEADER,
            hmac_sign(stack.hmac_secret().as_bytes(), ts, path, &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn assert_refused((status, body): &(u16, Value), why: &str) {
    assert_eq!(*status, 422, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(why) && !msg.contains('\n'), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_forty_thousand_term_query_is_refused_by_the_agent_which_goes_on_serving() {
    let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let http = reqwest::Client::new();
    assert_refused(
        &explain(&stack, &http, &forty_thousand_terms()).await,
        "query larger than 65536 bytes",
    );
    assert_refused(
        &explain(&stack, &http, &deep_but_small()).await,
        "query nesting deeper than 1000 levels",
    );
    let long_and = format!(
        "SELECT name FROM sales.customers WHERE {}",
        vec!["name = 'x'"; 3_000].join(" AND ")
    );
    assert_refused(
        &explain(&stack, &http, &long_and).await,
        "query nesting deeper than 1000 levels",
    );
    let (status, body) = explain(&stack, &http, NORMAL).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["permissions"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_forty_thousand_term_query_is_refused_through_the_server_which_goes_on_serving() {
    let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let http = reqwest::Client::new();
    let alice = KeyPair::generate().unwrap();
    let nonce = key_fingerprint(alice.public_pem.as_bytes()).unwrap();
    let token = stack
        .dev_issuer()
        .unwrap()
        .issue("alice@example.com", &[], &nonce, "p0")
        .unwrap()
        .expose_secret()
        .to_string();
    let create = |sql: String| {
        let signed = SignedRequest {
            request_id: RequestId::generate(),
            resource: ResourceId::new(stack.resource.clone()).unwrap(),
            intent: Intent::Query(sql),
            reason: "report".into(),
            duration_secs: 300,
            issued_at: chrono::Utc::now().timestamp(),
        };
        let body = serde_json::to_vec(&json!({
            "signed": signed,
            "signature": signed.sign(&alice.private_pem).unwrap(),
            "public_key": alice.public_pem,
        }))
        .unwrap();
        // Every API call proves possession of the key the token commits to.
        let proof = p0_core::proof::sign(
            &alice.private_pem,
            "POST",
            "/v1/requests",
            &body,
            &token,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
        let req = http
            .post(format!("{}/v1/requests", stack.server_url))
            .bearer_auth(&token)
            .header(
                p0_core::proof::KEY_HEADER,
                p0_core::proof::key_header(alice.public_pem.as_bytes()).unwrap(),
            )
            .header(p0_core::proof::PROOF_HEADER, proof)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_refused(
        &create(forty_thousand_terms()).await,
        "query larger than 65536 bytes",
    );
    assert_refused(
        &create(deep_but_small()).await,
        "query nesting deeper than 1000 levels",
    );
    let (status, body) = create(NORMAL.into()).await;
    assert!(status == 200 || status == 201, "{status} {body}");
    // The agent behind the server is still up too.
    let (status, body) = explain(&stack, &http, NORMAL).await;
    assert_eq!(status, 200, "{body}");
}
