//! The hostile-server suite, CLI side: the test is a compromised control plane (or anything
//! between CLI and server) that rewrites the server's answers to the real `p0` binary, and a
//! hostile database listener (`support/fake_db.py`) that asks the client for what a thief
//! would want. Each attack is one test; each asserts that the CLI refuses with one line and
//! that the listener received neither the password nor the CLI's key or token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p0_core::grant::{ConnectTarget, TlsExpectation};
use p0_core::Engine;
use p0_stack::{Stack, DEMO_RULES};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Mutation = Box<dyn Fn(&mut Value) + Send + Sync>;

/// A man in the middle in front of the real server: forwards every call, and rewrites the
/// `grant` of every request in an answer with the current mutation.
struct Evil {
    url: String,
    mutate: Arc<Mutex<Option<Mutation>>>,
    mutate_view: Arc<Mutex<Option<Mutation>>>,
}

impl Evil {
    async fn start(upstream: &str) -> Self {
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

    fn set(&self, f: impl Fn(&mut Value) + Send + Sync + 'static) {
        *self.mutate.lock().unwrap() = Some(Box::new(f));
    }

    /// Rewrites every request view in an answer (not only its grant).
    fn set_view(&self, f: impl Fn(&mut Value) + Send + Sync + 'static) {
        *self.mutate_view.lock().unwrap() = Some(Box::new(f));
    }
}

/// A hostile database listener; what the client sent is in `out`.
struct FakeDb {
    child: Child,
    port: u16,
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
    fn start(mode: &str, cert: Option<(&Path, &Path)>, steal: Option<&Path>) -> Self {
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

    fn received(&self) -> Vec<u8> {
        std::fs::read(&self.out).unwrap_or_default()
    }
}

/// A self-signed certificate and key for 127.0.0.1.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
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

struct User {
    dir: tempfile::TempDir,
}

impl User {
    fn login(server: &str, email: &str) -> Self {
        let u = User {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = u.p0(&["login", "--dev", email, "--server", server]);
        assert!(out.status.success(), "login: {}", text(&out));
        u
    }

    fn p0(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_p0"))
            .args(args)
            .env("P0_CONFIG_DIR", self.dir.path())
            .env("TMPDIR", self.dir.path())
            .output()
            .unwrap()
    }

    fn public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("key.pub.pem")).unwrap()
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap()
    }

    /// Runs the engine's client through p0 for a read that is approved at once.
    fn query(&self, engine: Engine, resource: &str, extra: &[&str]) -> Output {
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn envelope(grant: &Value) -> Value {
    let raw = URL_SAFE_NO_PAD
        .decode(grant["sealed_password"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn sealed_target(grant: &Value) -> ConnectTarget {
    let env = envelope(grant);
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(env["target"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// Moves the sealed target to `port` without re-sealing: the password stays the agent's.
fn splice_port(port: u16) -> impl Fn(&mut Value) + Send + Sync {
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
fn reseal(
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
fn seal_by_hand(
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

struct Setup {
    stack: Stack,
    evil: Evil,
}

async fn setup(engine: Engine) -> Setup {
    let stack = Stack::start_engine(engine, DEMO_RULES, 1).await.unwrap();
    let evil = Evil::start(&stack.server_url).await;
    Setup { stack, evil }
}

/// The CLI refused with one line, and nothing of the password, key or token reached `db`.
fn assert_refused_and_nothing_leaked(
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

async fn spliced_target_is_refused(engine: Engine, mode: &str) {
    let s = setup(engine).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start(mode, None, None);
    s.evil.set(splice_port(db.port));
    let out = alice.query(engine, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "", "spliced target");
    assert!(text(&out).contains("does not verify"), "{}", text(&out));
    assert!(db.received().is_empty(), "the listener was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spliced_target_is_refused_postgres() {
    spliced_target_is_refused(Engine::Postgres, "pg-cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spliced_target_is_refused_mysql() {
    spliced_target_is_refused(Engine::MySql, "my-cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resealed_grant_is_refused_once_the_agent_key_is_pinned() {
    let s = setup(Engine::Postgres).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let ok = alice.query(Engine::Postgres, &s.stack.resource, &["-At"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("pinning the agent key"), "{}", text(&ok));
    let db = FakeDb::start("pg-cleartext", None, None);
    let port = db.port;
    s.evil
        .set(reseal(alice.public_key(), "attackers-own-pw", move |t| {
            t.port = port
        }));
    let out = alice.query(Engine::Postgres, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "attackers-own-pw", "resealed grant");
    assert!(text(&out).contains("pinned"), "{}", text(&out));
    assert!(db.received().is_empty(), "the listener was contacted");
}

/// Even where the CLI connects to a listener of someone else's choosing (a re-sealed grant
/// before any key was pinned, or a hijacked address), the client never answers a request
/// for a readable password.
async fn cleartext_request_gets_nothing(engine: Engine, mode: &str) {
    let s = setup(engine).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start(mode, None, None);
    let port = db.port;
    s.evil.set(reseal(
        alice.public_key(),
        "the-password-9f8e7d",
        move |t| t.port = port,
    ));
    let out = alice.query(engine, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "the-password-9f8e7d", mode);
    assert!(text(&out).contains("cut off"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cleartext_password_request_gets_nothing_postgres() {
    cleartext_request_gets_nothing(Engine::Postgres, "pg-cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cleartext_plugin_handshake_gets_nothing_mysql() {
    cleartext_request_gets_nothing(Engine::MySql, "my-cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switch_to_the_cleartext_plugin_gets_nothing_mysql() {
    cleartext_request_gets_nothing(Engine::MySql, "my-switch").await;
}

async fn self_signed_tls_is_refused(engine: Engine, mode: &str) {
    let s = setup(engine).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path(), "listener");
    let (ca, _) = self_signed(certs.path(), "declared-ca");
    let db = FakeDb::start(mode, Some((&cert, &key)), None);
    let (port, ca_pem) = (db.port, std::fs::read_to_string(ca).unwrap());
    s.evil
        .set(reseal(alice.public_key(), "the-password-tls-1", move |t| {
            t.port = port;
            t.tls = TlsExpectation::VerifyFull {
                ca_pem: Some(ca_pem.clone()),
            };
        }));
    let out = alice.query(engine, &s.stack.resource, &[]);
    // The client itself refuses the certificate: its own error, the password unsent.
    assert!(!out.status.success(), "{}", text(&out));
    let got = db.received();
    assert!(
        !got.windows(18).any(|w| w == b"the-password-tls-1"),
        "the listener received the password"
    );
    let t = text(&out).to_lowercase();
    assert!(
        t.contains("certificate") || t.contains("ssl") || t.contains("tls"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_with_a_self_signed_certificate_is_refused_postgres() {
    self_signed_tls_is_refused(Engine::Postgres, "pg-tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_with_a_self_signed_certificate_is_refused_mysql() {
    self_signed_tls_is_refused(Engine::MySql, "my-tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_infile_request_cannot_read_the_key_mysql() {
    let s = setup(Engine::MySql).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let key_path = alice.dir.path().join("key.pem");
    let db = FakeDb::start("my-infile", None, Some(&key_path));
    let port = db.port;
    s.evil
        .set(reseal(alice.public_key(), "infile-pw-1", move |t| {
            t.port = port
        }));
    let _ = alice.query(Engine::MySql, &s.stack.resource, &[]);
    let got = db.received();
    let key = alice.file("key.pem");
    assert!(
        !got.windows(64).any(|w| key.windows(64).any(|k| k == w)),
        "the listener read the private key through LOCAL INFILE"
    );
    // And the user cannot turn it back on through p0.
    let out = alice.query(Engine::MySql, &s.stack.resource, &["--local-infile=1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not allowed"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn option_injection_through_any_field_is_refused() {
    let s = setup(Engine::MySql).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start("my-infile", None, Some(&alice.dir.path().join("key.pem")));
    let port = db.port;
    type Edit = Box<dyn Fn(&mut ConnectTarget) + Send + Sync>;
    let injections: Vec<(&str, Edit)> = vec![
        (
            "host",
            Box::new(move |t| {
                t.port = port;
                t.host = "127.0.0.1\nlocal-infile=1".into()
            }),
        ),
        (
            "database",
            Box::new(move |t| {
                t.port = port;
                t.database = "app\nlocal-infile=1".into()
            }),
        ),
        (
            "host list",
            Box::new(move |t| {
                t.port = port;
                t.host = "127.0.0.1,evil.example".into()
            }),
        ),
    ];
    for (what, edit) in injections {
        s.evil.set(reseal(alice.public_key(), "inject-pw", edit));
        let out = alice.query(Engine::MySql, &s.stack.resource, &[]);
        assert_refused_and_nothing_leaked(&out, &alice, &db, "inject-pw", what);
        assert!(
            db.received().is_empty(),
            "{what}: the listener was contacted"
        );
    }
    // Through the password (a value the option file quotes), and the server's own fields.
    s.evil.set(reseal(
        alice.public_key(),
        "pw\"\nlocal-infile=1\n",
        move |t| t.port = port,
    ));
    let out = alice.query(Engine::MySql, &s.stack.resource, &[]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "local-infile=1", "password");
    s.evil
        .set(|g: &mut Value| g["username"] = Value::String("root\nlocal-infile=1".into()));
    let out = alice.query(Engine::MySql, &s.stack.resource, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(db.received().is_empty(), "the listener was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cleartext_request_after_authentication_ok_gets_nothing_from_any_driver() {
    // libpq ignores it; other drivers answer it: `p0 exec` runs any of them.
    let s = setup(Engine::Postgres).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let db = FakeDb::start("pg-ok-then-cleartext", None, None);
    let port = db.port;
    s.evil
        .set(reseal(alice.public_key(), "pw-after-ok-42", move |t| {
            t.port = port
        }));
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/naive_pg_client.py");
    let out = alice.p0(&[
        "exec",
        "-d",
        &s.stack.resource,
        "-c",
        "SELECT count(*) FROM sales.orders",
        "--reason",
        "r",
        "--",
        "python3",
        client.to_str().unwrap(),
    ]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "pw-after-ok-42", "cleartext after ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_name_split_across_the_handshake_gets_nothing_mysql() {
    cleartext_request_gets_nothing(Engine::MySql, "my-split-plugin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resumed_request_cannot_be_moved_to_another_resource() {
    let s = setup(Engine::Postgres).await;
    let alice = User::login(&s.evil.url, "alice@example.com");
    let out = alice.p0(&[
        "request",
        "-d",
        &s.stack.resource,
        "-c",
        "DELETE FROM sales.orders WHERE id = 0",
        "--reason",
        "r",
        "--no-wait",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let id = text(&out)
        .split_whitespace()
        .skip_while(|w| *w != "request")
        .nth(1)
        .unwrap()
        .to_string();
    // The server answers the resume as an active grant for a resource never used here, sealed
    // by a key of its own: no pin exists for that name, so first use would pin its key.
    let db = FakeDb::start("pg-cleartext", None, None);
    let (port, pk) = (db.port, alice.public_key());
    let evil = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let rid = id.clone();
    s.evil.set_view(move |v: &mut Value| {
        let t = ConnectTarget {
            request_id: p0_core::RequestId::new(rid.clone()).unwrap(),
            resource: p0_core::ResourceId::new("pg/elsewhere").unwrap(),
            engine: Engine::Postgres,
            host: "127.0.0.1".into(),
            port,
            database: "app".into(),
            username: p0_core::Username::new("p0_alice_0000000000").unwrap(),
            expires_at: chrono::Utc::now() + chrono::TimeDelta::minutes(5),
            tls: TlsExpectation::Off,
        };
        v["status"] = Value::String("active".into());
        v["signed"]["resource"] = Value::String("pg/elsewhere".into());
        v["grant"] = serde_json::json!({
            "username": "p0_alice_0000000000",
            "sealed_password": seal_by_hand(pk.as_bytes(), &t, "moved-pw-1", &evil),
            "role": "p0r_x",
            "expires_at": t.expires_at,
        });
    });
    let out = alice.p0(&["psql", "--resume", &id, "-c", "SELECT 1"]);
    assert_refused_and_nothing_leaked(&out, &alice, &db, "moved-pw-1", "moved resume");
    assert!(text(&out).contains("not `pg/"), "{}", text(&out));
    assert!(db.received().is_empty(), "the listener was contacted");
}
