//! The hostile-server suite: the test is a compromised control plane. It holds the agent's
//! HMAC secret and talks to a real agent over a real PostgreSQL, and tries everything a
//! compromised server could. Every case must be refused with a clear error, leave nothing in
//! the database, and be logged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use p0_core::api::{hmac_sign, ProvisionCall, HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use p0_core::provision::{Access, ProvisionPlan};
use p0_core::seal::key_fingerprint;
use p0_core::{Intent, KeyPair, PermissionSet, RequestId, ResourceId, RoleName, SignedRequest};
use p0_stack::{Stack, DEMO_RULES};
use serde_json::{json, Value};

use std::sync::Arc;

use p0_testkit::LogCapture as Logs;

struct Evil {
    http: reqwest::Client,
    agent: String,
    secret: String,
    issuer: Arc<p0_core::DangerousDevIssuer>,
    resource: ResourceId,
}

const USER: &str = "alice@example.com";
const SQL: &str = "SELECT name FROM sales.customers";

impl Evil {
    async fn post_raw(&self, path: &str, body: &[u8], secret: &str, ts_shift: i64) -> (u16, Value) {
        let ts = chrono::Utc::now().timestamp() + ts_shift;
        let sig = hmac_sign(secret.as_bytes(), ts, path, body);
        let r = self
            .http
            .post(format!("{}{path}", self.agent))
            .header(HMAC_TIME_HEADER, ts.to_string())
            .header(HMAC_SIG_HEADER, sig)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, &serde_json::to_vec(body).unwrap(), &self.secret, 0)
            .await
    }

    async fn needed(&self, sql: &str) -> PermissionSet {
        let (s, v) = self.post("/v1/explain", &json!({ "sql": sql })).await;
        assert_eq!(s, 200, "{v}");
        serde_json::from_value(v["permissions"].clone()).unwrap()
    }

    fn token(&self, kp: &KeyPair) -> String {
        let nonce = key_fingerprint(kp.public_pem.as_bytes()).unwrap();
        self.issuer
            .issue(USER, &[], &nonce, "p0")
            .unwrap()
            .expose_secret()
            .to_string()
    }

    /// A call that is valid in every respect: the starting point every case breaks.
    async fn valid(&self, kp: &KeyPair, intent: Intent) -> ProvisionCall {
        let signed = SignedRequest {
            request_id: RequestId::generate(),
            resource: self.resource.clone(),
            intent: intent.clone(),
            reason: "report".into(),
            duration_secs: 300,
            issued_at: chrono::Utc::now().timestamp(),
        };
        let access = match &intent {
            Intent::Query(sql) => Access::Permissions(self.needed(sql).await),
            Intent::Role(r) => Access::Role(r.clone()),
        };
        ProvisionCall {
            plan: ProvisionPlan {
                request_id: signed.request_id.clone(),
                requester: USER.into(),
                resource: self.resource.clone(),
                access,
                expires_at: chrono::Utc::now() + chrono::TimeDelta::seconds(240),
            },
            id_token: self.token(kp),
            public_key: kp.public_pem.clone(),
            signature: signed.sign(&kp.private_pem).unwrap(),
            signed,
            pickup_proof: None,
        }
    }
}

fn jwt(header: Value, claims: Value, sig: &[u8]) -> String {
    let e = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    format!(
        "{}.{}.{}",
        e(&header),
        e(&claims),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    )
}

fn claims(issuer: &str, aud: &str, nonce: &str, exp_shift: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": issuer, "sub": USER, "email": USER, "aud": aud, "nonce": nonce, "iat": now, "exp": now + exp_shift})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compromised_server_gets_nothing() {
    let logs = Logs::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();
    let stack = Stack::start(DEMO_RULES, 3600).await.unwrap();
    let issuer_url = format!("{}/dev", stack.server_url);
    let evil = Evil {
        http: reqwest::Client::new(),
        agent: stack.agent_url.clone(),
        secret: stack.hmac_secret().to_string(),
        issuer: stack.dev_issuer().unwrap(),
        resource: ResourceId::new(stack.resource.clone()).unwrap(),
    };
    stack
        .pg
        .psql(
            "app",
            "CREATE ROLE analyst NOLOGIN; CREATE ROLE boss SUPERUSER NOLOGIN",
        )
        .unwrap();
    let alice = KeyPair::generate().unwrap();
    let server_key = KeyPair::generate().unwrap();
    let nonce = key_fingerprint(alice.public_pem.as_bytes()).unwrap();

    // The suite can fail: a valid call succeeds, and is cleaned up.
    let ok = evil.valid(&alice, Intent::Query(SQL.into())).await;
    let (s, v) = evil
        .post("/v1/provision", &serde_json::to_value(&ok).unwrap())
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = evil
        .post("/v1/revoke", &json!({"username": v["username"]}))
        .await;
    assert_eq!(s, 200);
    assert!(stack.managed_roles().unwrap().is_empty());

    // A replay of the very same call.
    let mut cases: Vec<(&str, u16, Value)> = Vec::new();
    let (s, v) = evil
        .post("/v1/provision", &serde_json::to_value(&ok).unwrap())
        .await;
    cases.push(("replay of a used request", s, v));

    let mut push = |name: &'static str, r: (u16, Value)| cases.push((name, r.0, r.1));
    let base = |c: &ProvisionCall| serde_json::to_value(c).unwrap();
    let call = evil.valid(&alice, Intent::Query(SQL.into())).await;

    // (i) roles for the agent's own user or outside the allowlist.
    let mut c = base(&call);
    c["plan"]["access"] = json!({"role": "postgres"});
    push(
        "grant the agent's own role",
        evil.post("/v1/provision", &c).await,
    );
    let role_call = evil
        .valid(&alice, Intent::Role(RoleName::new("postgres").unwrap()))
        .await;
    push(
        "signed request for the agent's own role",
        evil.post("/v1/provision", &base(&role_call)).await,
    );
    let role_call = evil
        .valid(&alice, Intent::Role(RoleName::new("boss").unwrap()))
        .await;
    push(
        "superuser role",
        evil.post("/v1/provision", &base(&role_call)).await,
    );
    let role_call = evil
        .valid(&alice, Intent::Role(RoleName::new("analyst").unwrap()))
        .await;
    push(
        "role not on the allowlist",
        evil.post("/v1/provision", &base(&role_call)).await,
    );

    // (ii) attributes and grant option.
    for (name, privilege) in [
        ("SUPERUSER", "SUPERUSER"),
        ("CREATEROLE", "CREATEROLE"),
        ("BYPASSRLS", "BYPASSRLS"),
    ] {
        let mut c = base(&call);
        c["plan"]["access"]["permissions"] =
            json!([{"privilege": privilege, "object": {"type": "database", "name": "app"}}]);
        cases.push((name, 0, Value::Null));
        let r = evil.post("/v1/provision", &c).await;
        let last = cases.last_mut().unwrap();
        (last.1, last.2) = r;
    }
    let mut c = base(&call);
    c["plan"]["access"]["permissions"][0]["grant_option"] = json!(true);
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("WITH GRANT OPTION", r.0, r.1));

    // (iii) wider than the signed query.
    let mut c = base(&call);
    c["plan"]["access"]["permissions"].as_array_mut().unwrap().push(json!({"privilege": "SELECT", "object": {"type": "table", "schema": "sales", "name": "payroll"}}));
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("permission beyond the signed query", r.0, r.1));
    let mut c = base(&call);
    c["signed"]["intent"] = json!({"query": "SELECT * FROM sales.payroll"});
    c["plan"]["access"]["permissions"] =
        serde_json::to_value(evil.needed("SELECT * FROM sales.payroll").await).unwrap();
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("query swapped after signing", r.0, r.1));

    // (iv) the server's own key.
    let mut c = base(&call);
    c["public_key"] = json!(server_key.public_pem);
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("server's key swapped in", r.0, r.1));
    let mut c = base(&call);
    let signed: SignedRequest = serde_json::from_value(c["signed"].clone()).unwrap();
    c["public_key"] = json!(server_key.public_pem);
    c["signature"] = json!(signed.sign(&server_key.private_pem).unwrap());
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("server's key swapped in and re-signed", r.0, r.1));

    // (vi) tokens.
    let forged = |cl: Value| {
        evil.issuer
            .issue_claims(&cl)
            .unwrap()
            .expose_secret()
            .to_string()
    };
    let token_cases: Vec<(&str, String)> = vec![
        (
            "expired token",
            forged(claims(&issuer_url, "p0", &nonce, -3600)),
        ),
        (
            "token for another audience",
            forged(claims(&issuer_url, "other-app", &nonce, 600)),
        ),
        (
            "token from another issuer",
            forged(claims("https://evil.example", "p0", &nonce, 600)),
        ),
        (
            "alg=none token",
            jwt(
                json!({"alg": "none", "typ": "JWT"}),
                claims(&issuer_url, "p0", &nonce, 600),
                b"",
            ),
        ),
        ("HS256 token keyed with the RSA public key", {
            use hmac::{Hmac, Mac};
            let h =
                json!({"alg": "HS256", "typ": "JWT", "kid": evil.issuer.jwks()["keys"][0]["kid"]});
            let cl = claims(&issuer_url, "p0", &nonce, 600);
            let e = |v: &Value| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(v).unwrap())
            };
            let input = format!("{}.{}", e(&h), e(&cl));
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(
                serde_json::to_string(&evil.issuer.jwks()["keys"][0])
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap();
            mac.update(input.as_bytes());
            format!(
                "{input}.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(mac.finalize().into_bytes())
            )
        }),
        (
            "token signed by another key",
            p0_core::DangerousDevIssuer::new(issuer_url.clone())
                .unwrap()
                .issue(USER, &[], &nonce, "p0")
                .unwrap()
                .expose_secret()
                .to_string(),
        ),
        (
            "token without a nonce",
            forged(
                json!({"iss": issuer_url, "sub": USER, "email": USER, "aud": "p0", "exp": chrono::Utc::now().timestamp() + 600}),
            ),
        ),
        ("garbage token", "not.a.token".to_string()),
    ];
    for (name, token) in token_cases {
        let mut c = base(&call);
        c["id_token"] = json!(token);
        let r = evil.post("/v1/provision", &c).await;
        cases.push((name, r.0, r.1));
    }
    let mut c = base(&call);
    c["plan"]["requester"] = json!("bob@example.com");
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("plan for another requester", r.0, r.1));
    let mut c = base(&call);
    c["plan"]["expires_at"] =
        json!((chrono::Utc::now() + chrono::TimeDelta::hours(20)).to_rfc3339());
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("expiry beyond the signed duration", r.0, r.1));
    let mut c = base(&call);
    c["plan"]["resource"] = json!("pg/other");
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("another resource", r.0, r.1));

    // (vii) injection through names.
    let mut c = base(&call);
    c["plan"]["access"]["permissions"].as_array_mut().unwrap().push(json!({"privilege": "SELECT", "object": {"type": "table", "schema": "sales", "name": "customers\"; DROP TABLE sales.payroll; --"}}));
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("injection through an object name", r.0, r.1));
    let mut c = base(&call);
    c["plan"]["access"] = json!({"role": "analyst'; DROP TABLE sales.payroll; --"});
    let r = evil.post("/v1/provision", &c).await;
    cases.push(("injection through a role name", r.0, r.1));
    let r = evil
        .post(
            "/v1/revoke",
            &json!({"username": "p0_x\"; DROP TABLE sales.payroll; --"}),
        )
        .await;
    cases.push(("injection through a user name", r.0, r.1));

    // (viii) revoking what p0 did not create.
    stack
        .pg
        .psql("app", "CREATE ROLE p0_imposter LOGIN")
        .unwrap();
    let r = evil
        .post("/v1/revoke", &json!({"username": "p0_imposter"}))
        .await;
    cases.push(("revoke a user p0 did not create", r.0, r.1));
    let r = evil
        .post("/v1/revoke", &json!({"username": "postgres"}))
        .await;
    cases.push(("revoke the agent's own user", r.0, r.1));

    // Transport: the server's HMAC.
    let body = serde_json::to_vec(&base(&call)).unwrap();
    let r = evil
        .post_raw("/v1/provision", &body, "not-the-secret-at-all", 0)
        .await;
    cases.push(("wrong HMAC secret", r.0, r.1));
    let r = evil
        .post_raw("/v1/provision", &body, &evil.secret, -3600)
        .await;
    cases.push(("stale HMAC timestamp", r.0, r.1));
    let r = evil
        .post("/v1/provision", &json!({"plan": "garbage"}))
        .await;
    cases.push(("malformed body", r.0, r.1));

    assert!(cases.len() >= 25, "{} cases", cases.len());
    for (name, status, body) in &cases {
        assert!(
            (400..500).contains(status),
            "{name}: status {status} {body}"
        );
        let msg = body["message"].as_str().unwrap_or_default();
        println!("{status} {name}: {msg}");
        assert!(
            !msg.is_empty() && !msg.contains('\n'),
            "{name}: unclear error {body}"
        );
    }
    assert_eq!(
        stack
            .pg
            .psql("app", "SELECT count(*) FROM sales.payroll")
            .unwrap()
            .trim(),
        "1"
    );
    let left: Vec<String> = stack
        .managed_roles()
        .unwrap()
        .into_iter()
        .filter(|r| r != "p0_imposter")
        .collect();
    assert!(left.is_empty(), "left in the database: {left:?}");

    // (ix) a flood of 1,000 forged calls: all refused, and the agent still works after.
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (http, url, body) = (
            evil.http.clone(),
            format!("{}/v1/provision", evil.agent),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header(HMAC_TIME_HEADER, "0")
                .header(HMAC_SIG_HEADER, "00")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    let mut refused = 0;
    for t in tasks {
        if t.await.unwrap() == 401 {
            refused += 1;
        }
    }
    assert_eq!(refused, 1000);
    let fresh = evil.valid(&alice, Intent::Query(SQL.into())).await;
    let (s, v) = evil.post("/v1/provision", &base(&fresh)).await;
    assert_eq!(s, 200, "the agent must still serve after the flood: {v}");

    let logged = logs.contents();
    let refusals = logged.matches("agent refused a call").count();
    assert!(
        refusals >= cases.len() + 1000,
        "every refusal is logged ({refusals})"
    );
    println!(
        "hostile suite: {} distinct cases refused, 1000-call flood refused",
        cases.len()
    );
}
