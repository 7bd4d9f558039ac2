//! The hostile-server suite: the test is a compromised control plane. It holds the agent's
//! HMAC secret and talks to a real agent over a real PostgreSQL, and tries everything a
//! compromised server could. Every case must be refused with a clear error, leave nothing in
//! the database, and be logged. Each case is a trial of its own (`refused::…`), against one
//! stack started once; the checks of what the cases left run after them all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine as _;
use p0_core::api::{hmac_sign, ProvisionCall, HMAC_SIG_HEADER, HMAC_TIME_HEADER};
use p0_core::provision::{Access, ProvisionPlan};
use p0_core::seal::key_fingerprint;
use p0_core::{Intent, KeyPair, PermissionSet, RequestId, ResourceId, RoleName, SignedRequest};
use p0_stack::{Stack, DEMO_RULES};
use serde_json::{json, Value};

use libtest_mimic::Arguments;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::trials::{slug, Gate, Suite};

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

/// The stack under attack, and the calls every case starts from.
struct Hostile {
    stack: Stack,
    evil: Evil,
    logs: Logs,
    issuer_url: String,
    alice: KeyPair,
    server_key: KeyPair,
    nonce: String,
    /// A valid call, provisioned and revoked once: its replay is a case.
    ok: ProvisionCall,
    /// A valid call never sent: every other case breaks it.
    call: ProvisionCall,
    /// Cases refused so far, and forged calls of the flood refused: each must be logged.
    refused: AtomicUsize,
    flooded: AtomicUsize,
}

async fn start(logs: Logs) -> Hostile {
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
    let (s, v) = evil.post("/v1/provision", &base(&ok)).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = evil
        .post("/v1/revoke", &json!({"username": v["username"]}))
        .await;
    assert_eq!(s, 200);
    assert!(stack.managed_roles().unwrap().is_empty());
    // A user p0 did not create, for the revocation cases.
    stack
        .pg
        .psql("app", "CREATE ROLE p0_imposter LOGIN")
        .unwrap();
    let call = evil.valid(&alice, Intent::Query(SQL.into())).await;
    Hostile {
        stack,
        evil,
        logs,
        issuer_url,
        alice,
        server_key,
        nonce,
        ok,
        call,
        refused: AtomicUsize::new(0),
        flooded: AtomicUsize::new(0),
    }
}

fn base(c: &ProvisionCall) -> Value {
    serde_json::to_value(c).unwrap()
}

impl Hostile {
    /// The valid call with `edit` applied, sent to `/v1/provision`.
    async fn provision_edited(&self, edit: impl FnOnce(&mut Value)) -> (u16, Value) {
        let mut c = base(&self.call);
        edit(&mut c);
        self.evil.post("/v1/provision", &c).await
    }

    /// A signed request for `role`, valid in every other respect.
    async fn role_request(&self, role: &str) -> (u16, Value) {
        let role_call = self
            .evil
            .valid(&self.alice, Intent::Role(RoleName::new(role).unwrap()))
            .await;
        self.evil.post("/v1/provision", &base(&role_call)).await
    }

    /// The valid call carrying `token` as the requester's ID token.
    async fn with_token(&self, token: String) -> (u16, Value) {
        self.provision_edited(|c| c["id_token"] = json!(token))
            .await
    }

    /// A token the dev issuer signs with whatever claims it is given.
    fn forged(&self, cl: Value) -> String {
        self.evil
            .issuer
            .issue_claims(&cl)
            .unwrap()
            .expose_secret()
            .to_string()
    }

    fn claims(&self, issuer: &str, aud: &str, exp_shift: i64) -> Value {
        claims(issuer, aud, &self.nonce, exp_shift)
    }

    async fn revoke(&self, username: &str) -> (u16, Value) {
        self.evil
            .post("/v1/revoke", &json!({ "username": username }))
            .await
    }

    /// The valid call under the server's HMAC, signed with `secret` at `ts_shift`.
    async fn transport(&self, secret: &str, ts_shift: i64) -> (u16, Value) {
        let body = serde_json::to_vec(&base(&self.call)).unwrap();
        self.evil
            .post_raw("/v1/provision", &body, secret, ts_shift)
            .await
    }
}

type Attempt = Pin<Box<dyn Future<Output = (u16, Value)>>>;
type Case = (&'static str, fn(Arc<Hostile>) -> Attempt);

macro_rules! cases {
    ($($name:literal => |$h:ident| $body:expr;)*) => {
        vec![$(
            ($name, (|$h: Arc<Hostile>| -> Attempt { Box::pin(async move { $body }) }) as fn(Arc<Hostile>) -> Attempt),
        )*]
    };
}

/// Every attack: what it is called, and the call it makes.
fn cases() -> Vec<Case> {
    cases! {
        "replay of a used request" => |h| h.evil.post("/v1/provision", &base(&h.ok)).await;
        // (i) roles for the agent's own user or outside the allowlist.
        "grant the agent's own role" => |h| h.provision_edited(|c| c["plan"]["access"] = json!({"role": "postgres"})).await;
        "signed request for the agent's own role" => |h| h.role_request("postgres").await;
        "superuser role" => |h| h.role_request("boss").await;
        "role not on the allowlist" => |h| h.role_request("analyst").await;
        // (ii) attributes and grant option.
        "SUPERUSER" => |h| h.provision_edited(|c| c["plan"]["access"]["permissions"] =
            json!([{"privilege": "SUPERUSER", "object": {"type": "database", "name": "app"}}])).await;
        "CREATEROLE" => |h| h.provision_edited(|c| c["plan"]["access"]["permissions"] =
            json!([{"privilege": "CREATEROLE", "object": {"type": "database", "name": "app"}}])).await;
        "BYPASSRLS" => |h| h.provision_edited(|c| c["plan"]["access"]["permissions"] =
            json!([{"privilege": "BYPASSRLS", "object": {"type": "database", "name": "app"}}])).await;
        "WITH GRANT OPTION" => |h| h.provision_edited(|c| c["plan"]["access"]["permissions"][0]["grant_option"] = json!(true)).await;
        // (iii) wider than the signed query.
        "permission beyond the signed query" => |h| h.provision_edited(|c| {
            c["plan"]["access"]["permissions"].as_array_mut().unwrap().push(json!({"privilege": "SELECT", "object": {"type": "table", "schema": "sales", "name": "payroll"}}));
        }).await;
        "query swapped after signing" => |h| {
            let wider = serde_json::to_value(h.evil.needed("SELECT * FROM sales.payroll").await).unwrap();
            h.provision_edited(|c| {
                c["signed"]["intent"] = json!({"query": "SELECT * FROM sales.payroll"});
                c["plan"]["access"]["permissions"] = wider;
            }).await
        };
        // (iv) the server's own key.
        "server's key swapped in" => |h| h.provision_edited(|c| c["public_key"] = json!(h.server_key.public_pem)).await;
        "server's key swapped in and re-signed" => |h| h.provision_edited(|c| {
            let signed: SignedRequest = serde_json::from_value(c["signed"].clone()).unwrap();
            c["public_key"] = json!(h.server_key.public_pem);
            c["signature"] = json!(signed.sign(&h.server_key.private_pem).unwrap());
        }).await;
        // (vi) tokens.
        "expired token" => |h| h.with_token(h.forged(h.claims(&h.issuer_url, "p0", -3600))).await;
        "token for another audience" => |h| h.with_token(h.forged(h.claims(&h.issuer_url, "other-app", 600))).await;
        "token from another issuer" => |h| h.with_token(h.forged(h.claims("https://evil.example", "p0", 600))).await;
        "alg=none token" => |h| h.with_token(jwt(
            json!({"alg": "none", "typ": "JWT"}),
            h.claims(&h.issuer_url, "p0", 600),
            b"",
        )).await;
        "HS256 token keyed with the RSA public key" => |h| h.with_token(hs256_keyed_with_the_public_key(&h)).await;
        "token signed by another key" => |h| h.with_token(
            p0_core::DangerousDevIssuer::new(h.issuer_url.clone())
                .unwrap()
                .issue(USER, &[], &h.nonce, "p0")
                .unwrap()
                .expose_secret()
                .to_string(),
        ).await;
        "token without a nonce" => |h| h.with_token(h.forged(
            json!({"iss": h.issuer_url, "sub": USER, "email": USER, "aud": "p0", "exp": chrono::Utc::now().timestamp() + 600}),
        )).await;
        "garbage token" => |h| h.with_token("not.a.token".to_string()).await;
        "plan for another requester" => |h| h.provision_edited(|c| c["plan"]["requester"] = json!("bob@example.com")).await;
        "expiry beyond the signed duration" => |h| h.provision_edited(|c| c["plan"]["expires_at"] =
            json!((chrono::Utc::now() + chrono::TimeDelta::hours(20)).to_rfc3339())).await;
        "another resource" => |h| h.provision_edited(|c| c["plan"]["resource"] = json!("pg/other")).await;
        // (vii) injection through names.
        "injection through an object name" => |h| h.provision_edited(|c| {
            c["plan"]["access"]["permissions"].as_array_mut().unwrap().push(json!({"privilege": "SELECT", "object": {"type": "table", "schema": "sales", "name": "customers\"; DROP TABLE sales.payroll; --"}}));
        }).await;
        "injection through a role name" => |h| h.provision_edited(|c| c["plan"]["access"] = json!({"role": "analyst'; DROP TABLE sales.payroll; --"})).await;
        "injection through a user name" => |h| h.revoke("p0_x\"; DROP TABLE sales.payroll; --").await;
        // (viii) revoking what p0 did not create.
        "revoke a user p0 did not create" => |h| h.revoke("p0_imposter").await;
        "revoke the agent's own user" => |h| h.revoke("postgres").await;
        // Transport: the server's HMAC.
        "wrong HMAC secret" => |h| h.transport("not-the-secret-at-all", 0).await;
        "stale HMAC timestamp" => |h| h.transport(&h.evil.secret, -3600).await;
        "malformed body" => |h| h.evil.post("/v1/provision", &json!({"plan": "garbage"})).await;
    }
}

/// An HS256 token whose HMAC key is the issuer's public JWK (the algorithm-confusion attack).
fn hs256_keyed_with_the_public_key(h: &Hostile) -> String {
    use hmac::{Hmac, Mac};
    let jwks = h.evil.issuer.jwks();
    let head = json!({"alg": "HS256", "typ": "JWT", "kid": jwks["keys"][0]["kid"]});
    let cl = h.claims(&h.issuer_url, "p0", 600);
    let e = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let input = format!("{}.{}", e(&head), e(&cl));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(
        serde_json::to_string(&jwks["keys"][0]).unwrap().as_bytes(),
    )
    .unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// A refusal: a 4xx with a clear one-line message.
fn assert_refused(name: &str, status: u16, body: &Value) {
    assert!(
        (400..500).contains(&status),
        "{name}: status {status} {body}"
    );
    let msg = body["message"].as_str().unwrap_or_default();
    println!("{status} {name}: {msg}");
    assert!(
        !msg.is_empty() && !msg.contains('\n'),
        "{name}: unclear error {body}"
    );
}

async fn nothing_was_changed(h: &Hostile) {
    assert_eq!(
        h.stack
            .pg
            .psql("app", "SELECT count(*) FROM sales.payroll")
            .unwrap()
            .trim(),
        "1"
    );
    let left: Vec<String> = h
        .stack
        .managed_roles()
        .unwrap()
        .into_iter()
        .filter(|r| r != "p0_imposter")
        .collect();
    assert!(left.is_empty(), "left in the database: {left:?}");
}

/// (ix) a flood of 1,000 forged calls: all refused, and the agent still works after.
async fn a_flood_is_refused(h: &Hostile) {
    let body = serde_json::to_vec(&base(&h.call)).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (http, url, body) = (
            h.evil.http.clone(),
            format!("{}/v1/provision", h.evil.agent),
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
    h.flooded.store(refused, Ordering::SeqCst);
    assert_eq!(refused, 1000);
    let fresh = h.evil.valid(&h.alice, Intent::Query(SQL.into())).await;
    let (s, v) = h.evil.post("/v1/provision", &base(&fresh)).await;
    assert_eq!(s, 200, "the agent must still serve after the flood: {v}");
}

fn every_refusal_was_logged(h: &Hostile) {
    let cases = h.refused.load(Ordering::SeqCst);
    let flood = h.flooded.load(Ordering::SeqCst);
    let refusals = h.logs.contents().matches("agent refused a call").count();
    assert!(
        refusals >= cases + flood,
        "every refusal is logged ({refusals})"
    );
    println!("hostile suite: {cases} distinct cases refused, {flood}-call flood refused");
}

fn main() {
    let args = Arguments::from_args();
    let logs = Logs::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();
    let suite = Suite::new(4, move || start(logs.clone()));
    let table = cases();
    assert!(table.len() >= 25, "{} cases", table.len());
    let (cases_done, checked, flooded) = (Gate::new(), Gate::new(), Gate::new());
    let mut cases = Vec::new();
    for (name, attempt) in table {
        cases.push(suite.ordered(
            format!("refused::{}", slug(name)),
            vec![],
            Some(cases_done.clone()),
            move |h: Arc<Hostile>| async move {
                let (status, body) = attempt(h.clone()).await;
                assert_refused(name, status, &body);
                h.refused.fetch_add(1, Ordering::SeqCst);
            },
        ));
    }
    cases_done.expect(&args, &cases);
    let after = vec![
        suite.ordered(
            "after_the_cases::the_payroll_is_intact_and_no_user_is_left",
            vec![cases_done.clone()],
            Some(checked.clone()),
            |h: Arc<Hostile>| async move { nothing_was_changed(&h).await },
        ),
        suite.ordered(
            "after_the_cases::a_flood_of_1000_forged_calls_is_refused_and_the_agent_still_serves",
            vec![cases_done.clone(), checked.clone()],
            Some(flooded.clone()),
            |h: Arc<Hostile>| async move { a_flood_is_refused(&h).await },
        ),
        suite.ordered(
            "after_the_cases::every_refusal_is_logged",
            vec![cases_done.clone(), checked.clone(), flooded.clone()],
            None,
            |h: Arc<Hostile>| async move { every_refusal_was_logged(&h) },
        ),
    ];
    checked.expect(&args, &after[..1]);
    flooded.expect(&args, &after[1..2]);
    cases.extend(after);
    suite.run(&args, cases).exit();
}
