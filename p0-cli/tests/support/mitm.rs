//! The hostile listeners and the man in the middle of the CLI suites: a proxy in front of the
//! real server that rewrites its answers, a hostile database listener (`fake_db.py`), grants
//! sealed by an attacker, and the check that the CLI refused and leaked nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p0_core::grant::ConnectTarget;
use p0_core::Engine;
use p0_stack::{Stack, DEMO_RULES};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cli::text;

pub type Mutation = Box<dyn Fn(&mut Value) + Send + Sync>;

/// A man in the middle in front of the real server: forwards every call, and rewrites the
/// `grant` of every request in an answer with the current mutation.
pub struct Evil {
    pub url: String,
    mutate: Arc<Mutex<Option<Mutation>>>,
    mutate_view: Arc<Mutex<Option<Mutation>>>,
}

impl Evil {
    pub async fn start(upstream: &str) -> Self {
        let mutate: Arc<Mutex<Option<Mutation>>> = Arc::default();
        let mutate_view: Arc<Mutex<Option<Mutation>>> = Arc::default();
        let (m, mv, up) = (mutate.clone(), mutate_view.clone(), upstream.to_string());
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let (m, mv, up, http) = (m.clone(), mv.clone(), up.clone(), http.clone());
                async move {
                    let mut req = http.request(method, format!("{up}{uri}")).body(body);
                    for (k, v) in headers.iter() {
                        if k != "host" && k != "content-length" {
                            req = req.header(k, v);
                        }
                    }
                    let resp = req.send().await.unwrap();
                    let status = resp.status();
                    let bytes = resp.bytes().await.unwrap();
                    let mut out = bytes.to_vec();
                    if let (Ok(mut v), Some(f)) = (
                        serde_json::from_slice::<Value>(&bytes),
                        mv.lock().unwrap().as_ref(),
                    ) {
                        if v["signed"].is_object() {
                            f(&mut v);
                            out = serde_json::to_vec(&v).unwrap();
                        }
                    }
                    if let (Ok(mut v), Some(f)) = (
                        serde_json::from_slice::<Value>(&out),
                        m.lock().unwrap().as_ref(),
                    ) {
                        let mut views: Vec<&mut Value> = match &mut v {
                            Value::Array(a) => a.iter_mut().collect(),
                            one => vec![one],
                        };
                        for view in views.iter_mut() {
                            if view["grant"].is_object() {
                                f(&mut view["grant"]);
                            }
                        }
                        out = serde_json::to_vec(&v).unwrap();
                    }
                    (
                        axum::http::StatusCode::from_u16(status.as_u16()).unwrap(),
                        [("content-type", "application/json")],
                        out,
                    )
                }
            },
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Self {
            url,
            mutate,
            mutate_view,
        }
    }

    pub fn set(&self, f: impl Fn(&mut Value) + Send + Sync + 'static) {
        *self.mutate.lock().unwrap() = Some(Box::new(f));
    }

    /// Rewrites every request view in an answer (not only its grant).
    pub fn set_view(&self, f: impl Fn(&mut Value) + Send + Sync + 'static) {
        *self.mutate_view.lock().unwrap() = Some(Box::new(f));
    }
}

/// A hostile database listener; what the client sent is in `out`.
pub struct FakeDb {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for FakeDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeDb {
    pub fn start(mode: &str, cert: Option<(&Path, &Path)>, steal: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port_file, out) = (dir.path().join("port"), dir.path().join("out"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_db.py");
        let mut c = Command::new("python3");
        c.arg(script).arg(mode).arg(&port_file).arg(&out);
        if let Some((cert, key)) = cert {
            c.arg(cert).arg(key);
        }
        if let Some(p) = steal {
            c.env("P0_STEAL", p);
        }
        let mut child = c.spawn().unwrap();
        for _ in 0..100 {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                return Self {
                    child,
                    port: p.trim().parse().unwrap(),
                    out,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("fake database did not start");
    }

    pub fn received(&self) -> Vec<u8> {
        std::fs::read(&self.out).unwrap_or_default()
    }
}

/// A self-signed certificate and key for 127.0.0.1.
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

pub struct User {
    pub dir: tempfile::TempDir,
}

impl User {
    pub fn login(server: &str, email: &str) -> Self {
        let u = User {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = u.p0(&["login", "--dev", email, "--server", server]);
        assert!(out.status.success(), "login: {}", text(&out));
        u
    }

    pub fn p0(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_p0"))
            .args(args)
            .env("P0_CONFIG_DIR", self.dir.path())
            .env("TMPDIR", self.dir.path())
            .output()
            .unwrap()
    }

    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("key.pub.pem")).unwrap()
    }

    pub fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap()
    }

    /// Runs the engine's client through p0 for a read that is approved at once.
    pub fn query(&self, engine: Engine, resource: &str, extra: &[&str]) -> Output {
        let mut args: Vec<&str> = match engine {
            Engine::MySql => vec![
                "mysql",
                "-D",
                resource,
                "-e",
                "SELECT count(*) FROM app.orders",
            ],
            _ => vec![
                "psql",
                "-d",
                resource,
                "-c",
                "SELECT count(*) FROM sales.orders",
                "-X",
            ],
        };
        args.extend(["--reason", "report", "--duration", "1m"]);
        args.extend(extra);
        self.p0(&args)
    }
}

pub fn envelope(grant: &Value) -> Value {
    let raw = URL_SAFE_NO_PAD
        .decode(grant["sealed_password"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

pub fn sealed_target(grant: &Value) -> ConnectTarget {
    let env = envelope(grant);
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(env["target"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// Moves the sealed target to `port` without re-sealing: the password stays the agent's.
pub fn splice_port(port: u16) -> impl Fn(&mut Value) + Send + Sync {
    move |grant: &mut Value| {
        let mut env = envelope(grant);
        let mut t = sealed_target(grant);
        t.host = "127.0.0.1".into();
        t.port = port;
        env["target"] = Value::String(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t).unwrap()));
        grant["sealed_password"] =
            Value::String(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&env).unwrap()));
    }
}

/// Replaces the grant with one the attacker sealed to the requester's public key: their own
/// password, target and agent key, for the same request.
pub fn reseal(
    public_key: String,
    password: &'static str,
    edit: impl Fn(&mut ConnectTarget) + Send + Sync + 'static,
) -> impl Fn(&mut Value) + Send + Sync {
    let evil = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    move |grant: &mut Value| {
        let mut t = sealed_target(grant);
        t.host = "127.0.0.1".into();
        edit(&mut t);
        grant["sealed_password"] =
            Value::String(seal_by_hand(public_key.as_bytes(), &t, password, &evil));
    }
}

/// The agent's construction (`p0_core::grant`), made by an attacker who skips every check of
/// the values: RSA-OAEP-wrapped AES-256-GCM, the target as authenticated data, Ed25519.
pub fn seal_by_hand(
    pk: &[u8],
    t: &ConnectTarget,
    password: &str,
    key: &ed25519_dalek::SigningKey,
) -> String {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use ed25519_dalek::Signer;
    use rsa::pkcs8::DecodePublicKey;
    let tj = serde_json::to_vec(t).unwrap();
    let agent = key.verifying_key().to_bytes();
    let mut aad = b"p0-grant-v2\0".to_vec();
    aad.extend_from_slice(&(tj.len() as u64).to_be_bytes());
    aad.extend_from_slice(&tj);
    aad.extend_from_slice(&agent);
    let (k, nonce) = ([7u8; 32], [9u8; 12]);
    let ct = aes_gcm::Aes256Gcm::new_from_slice(&k)
        .unwrap()
        .encrypt(
            aes_gcm::Nonce::from_slice(&nonce),
            Payload {
                msg: password.as_bytes(),
                aad: &aad,
            },
        )
        .unwrap();
    let rsa =
        rsa::RsaPublicKey::from_public_key_pem(std::str::from_utf8(pk).unwrap().trim()).unwrap();
    let wrapped = rsa
        .encrypt(&mut rand::rngs::OsRng, rsa::Oaep::new::<sha2::Sha256>(), &k)
        .unwrap();
    let mut signed = aad.clone();
    for part in [&wrapped[..], &nonce[..], &ct[..]] {
        signed.extend_from_slice(&(part.len() as u64).to_be_bytes());
        signed.extend_from_slice(part);
    }
    let sig = key.sign(&signed).to_bytes();
    let e = |b: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(b));
    let env = serde_json::json!({"v": 2, "target": e(&tj), "key": e(&wrapped), "nonce": e(&nonce), "ct": e(&ct), "agent": e(&agent), "sig": e(&sig)});
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&env).unwrap())
}

pub struct Setup {
    pub stack: Stack,
    pub evil: Evil,
}

pub async fn setup(engine: Engine) -> Setup {
    let stack = Stack::start_engine(engine, DEMO_RULES, 1).await.unwrap();
    let evil = Evil::start(&stack.server_url).await;
    Setup { stack, evil }
}

/// The CLI refused with one line, and nothing of the password, key or token reached `db`.
pub fn assert_refused_and_nothing_leaked(
    out: &Output,
    user: &User,
    db: &FakeDb,
    password: &str,
    what: &str,
) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what}: the CLI went on: {}",
        text(out)
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("p0: "),
        "{what}: no clear refusal: {stderr}"
    );
    assert!(
        stderr.contains("refus"),
        "{what}: the error does not say it refused: {stderr}"
    );
    let got = db.received();
    let has = |needle: &[u8]| !needle.is_empty() && got.windows(needle.len()).any(|w| w == needle);
    assert!(
        !has(password.as_bytes()),
        "{what}: the listener received the password"
    );
    let key = user.file("key.pem");
    let body: Vec<u8> = key
        .iter()
        .copied()
        .filter(|b| !b"-\n ".contains(b))
        .collect();
    assert!(
        !has(&body[40..100]),
        "{what}: the listener received the private key"
    );
    assert!(
        !has(&user.file("token")[..60]),
        "{what}: the listener received the token"
    );
}
