//! The app under test: a router over an in-memory store, users with keys and tokens, and
//! calls with proofs of possession signed as the CLI signs them.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use p0_core::api::RequestView;
use p0_core::proof;
use p0_core::seal::key_fingerprint;
use p0_core::{
    IdClaims, IdTokenVerifier, Intent, KeyPair, RequestId, ResourceId, RoleName, SignedRequest,
    Token, VerifyError,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

/// Accepts exactly the tokens it was given, as the claims they stand for.
pub struct Tokens(HashMap<String, IdClaims>);

#[async_trait]
impl IdTokenVerifier for Tokens {
    async fn verify(&self, token: &Token) -> Result<IdClaims, VerifyError> {
        self.0
            .get(token.expose_secret())
            .cloned()
            .ok_or_else(|| VerifyError::Invalid("unknown token".into()))
    }
}

pub struct Who {
    pub kp: &'static KeyPair,
    pub token: String,
}

/// The users of every test: alice asks, bob and dave approve (group `dba`), root is an admin,
/// ann an auditor, mallory nobody.
pub const USERS: &[(&str, &str)] = &[
    ("alice", ""),
    ("bob", "dba"),
    ("dave", "dba"),
    ("root", "admins"),
    ("ann", "audit"),
    ("mallory", ""),
];

/// The users' keys, made once: generating keys is the slow part of a test.
pub fn keys() -> &'static [KeyPair] {
    static KEYS: OnceLock<Vec<KeyPair>> = OnceLock::new();
    KEYS.get_or_init(|| USERS.iter().map(|_| KeyPair::generate().unwrap()).collect())
}

pub struct App {
    router: axum::Router,
    who: HashMap<&'static str, Who>,
}

pub async fn app(dev_issuer: bool) -> App {
    let store = p0_server::store::open("sqlite::memory:").await.unwrap();
    app_on(dev_issuer, store)
}

/// The app over `store`: two apps over one PostgreSQL store are two server replicas.
pub fn app_on(dev_issuer: bool, store: Arc<dyn p0_server::store::Store>) -> App {
    let mut who = HashMap::new();
    let mut claims = HashMap::new();
    for (&(name, group), kp) in USERS.iter().zip(keys()) {
        let nonce = key_fingerprint(kp.public_pem.as_bytes()).unwrap();
        let token = format!("token-of-{name}");
        claims.insert(
            token.clone(),
            IdClaims {
                iss: "test".into(),
                sub: name.into(),
                email: Some(name.into()),
                groups: [group]
                    .iter()
                    .filter(|g| !g.is_empty())
                    .map(|g| g.to_string())
                    .collect(),
                nonce: Some(nonce),
                exp: i64::MAX,
            },
        );
        who.insert(name, Who { kp, token });
    }
    let config = p0_server::ServerConfig::from_toml(
        &"listen = \"127.0.0.1:0\"\nstore = \"sqlite::memory:\"\nissuer = \"http://issuer.test\"\naudience = \"p0\"\nrules = \"-\"\n\
         admins = [\"group:admins\"]\nauditors = [\"group:audit\"]\n\
         [[resource]]\nname = \"pg/app\"\nengine = \"postgres\"\nhost = \"db\"\nport = 5432\ndatabase = \"app\"\n\
         agent_url = \"AGENT\"\nagent_secret = \"s\"\n"
            .replace("AGENT", &p0_testkit::explain_only_agent().unwrap()),
    )
    .unwrap();
    let rules = p0_core::RulesRouter::from_toml(
        "[[rule]]\nname = \"reporting\"\nroles = [\"reporting\"]\naction = \"approval\"\napprovers = [\"group:dba\"]\n",
    )
    .unwrap();
    let dev = dev_issuer
        .then(|| Arc::new(p0_core::DangerousDevIssuer::new("http://issuer.test").unwrap()));
    let state = p0_server::AppState::new(
        &config,
        store,
        Arc::new(rules),
        Arc::new(Tokens(claims)),
        dev,
    )
    .unwrap();
    App {
        router: p0_server::build_router(state),
        who,
    }
}

/// How a call authenticates.
pub enum Auth<'a> {
    /// No headers at all.
    None,
    /// Token, key and a proof of this very call.
    Proven(&'a Who),
    /// Exactly these headers.
    Headers(Vec<(&'static str, String)>),
}

impl App {
    pub fn who(&self, name: &str) -> &Who {
        &self.who[name]
    }

    /// The headers of a proven call.
    pub fn headers(
        &self,
        w: &Who,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let now = chrono::Utc::now().timestamp();
        let p = proof::sign(&w.kp.private_pem, method, path, body, &w.token, now).unwrap();
        vec![
            ("authorization", format!("Bearer {}", w.token)),
            (
                proof::KEY_HEADER,
                proof::key_header(w.kp.public_pem.as_bytes()).unwrap(),
            ),
            (proof::PROOF_HEADER, p),
        ]
    }

    pub async fn send(
        &self,
        auth: Auth<'_>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let (s, v, _) = self.send_full(auth, method, path, body).await;
        (s, v)
    }

    /// A proven call without a body: status, JSON and the next page's `before`, if named.
    pub async fn send_raw(
        &self,
        w: &Who,
        method: &str,
        path: &str,
    ) -> (StatusCode, Value, Option<String>) {
        self.send_full(Auth::Proven(w), method, path, b"").await
    }

    async fn send_full(
        &self,
        auth: Auth<'_>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> (StatusCode, Value, Option<String>) {
        let headers = match auth {
            Auth::None => vec![],
            Auth::Proven(w) => self.headers(w, method, path, body),
            Auth::Headers(h) => h,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body.to_vec())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let next = resp
            .headers()
            .get("x-p0-next-before")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            next,
        )
    }

    pub async fn call(
        &self,
        name: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        self.send(Auth::Proven(self.who(name)), method, path, body)
            .await
    }

    /// A signed request by `name` for the role `reporting`, for `secs` seconds.
    pub fn create_body(&self, name: &str, secs: u64) -> Vec<u8> {
        let w = self.who(name);
        let signed = SignedRequest {
            request_id: RequestId::generate(),
            resource: ResourceId::new("pg/app").unwrap(),
            intent: Intent::Role(RoleName::new("reporting").unwrap()),
            reason: "monthly report".into(),
            duration_secs: secs,
            issued_at: chrono::Utc::now().timestamp(),
        };
        serde_json::to_vec(&json!({
            "signature": signed.sign(&w.kp.private_pem).unwrap(),
            "signed": signed,
            "public_key": w.kp.public_pem,
        }))
        .unwrap()
    }

    /// A request by `name` that waits for one approval from `dba`; its view.
    pub async fn pending(&self, name: &str) -> RequestView {
        let (s, v) = self
            .call(name, "POST", "/v1/requests", &self.create_body(name, 600))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"], "pending_approval", "{v}");
        serde_json::from_value(v).unwrap()
    }
}

/// Asserts the API's error shape: this status, code and message, on one line.
#[track_caller]
pub fn refused((s, v): (StatusCode, Value), status: u16, code: &str, message: &str) {
    assert_eq!(s.as_u16(), status, "{v}");
    assert_eq!(v["code"], code, "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.starts_with(message), "{v}");
    assert!(!m.contains('\n'), "{v}");
}
