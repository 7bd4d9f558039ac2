//! Unit tests of `grant`.

use super::*;
use crate::seal::KeyPair;
use serde_json::Value;

fn target() -> ConnectTarget {
    ConnectTarget {
        request_id: RequestId::generate(),
        resource: ResourceId::new("pg/app").unwrap(),
        engine: Engine::Postgres,
        host: "db.internal".into(),
        port: 5432,
        database: "app".into(),
        username: Username::new("p0_alice_abc").unwrap(),
        expires_at: Utc::now() + chrono::TimeDelta::minutes(5),
        tls: TlsExpectation::Off,
    }
}

/// A sealed grant for the test target, to `kp`, by `agent`.
fn seal_to(kp: &KeyPair, password: &str, agent: &AgentSigningKey) -> String {
    seal(
        kp.public_pem.as_bytes(),
        &target(),
        &Password::new(password.into()),
        agent,
    )
    .unwrap()
}

fn envelope(sealed: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(sealed).unwrap()).unwrap()
}

fn reencode(env: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(env).unwrap())
}

#[test]
fn round_trip_gives_the_agents_target_and_password() {
    let kp = KeyPair::generate().unwrap();
    let agent = AgentSigningKey::generate();
    let t = target();
    let sealed = seal(
        kp.public_pem.as_bytes(),
        &t,
        &Password::new("pw-123".into()),
        &agent,
    )
    .unwrap();
    let g = open(&kp.private_pem, &sealed).unwrap();
    assert_eq!(g.target, t);
    assert_eq!(g.password.expose_secret(), "pw-123");
    assert_eq!(g.agent_key, agent.public());
    g.check_for(&t.request_id, &t.resource, Utc::now()).unwrap();
    assert!(g
        .check_for(&RequestId::generate(), &t.resource, Utc::now())
        .is_err());
    assert!(g
        .check_for(
            &t.request_id,
            &ResourceId::new("pg/other").unwrap(),
            Utc::now()
        )
        .is_err());
    assert!(g
        .check_for(
            &t.request_id,
            &t.resource,
            Utc::now() + chrono::TimeDelta::hours(1)
        )
        .is_err());
}

#[test]
fn a_spliced_target_is_refused() {
    let kp = KeyPair::generate().unwrap();
    let agent = AgentSigningKey::generate();
    let sealed = seal_to(&kp, "pw", &agent);
    let mut env = envelope(&sealed);
    let mut t = target();
    t.port = 6666;
    env["target"] = Value::String(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t).unwrap()));
    assert!(matches!(
        open(&kp.private_pem, &reencode(&env)),
        Err(GrantError::Open)
    ));
}

#[test]
fn a_spliced_target_re_signed_by_another_agent_key_is_refused() {
    // The attacker replaces target, agent key and signature: the signature verifies under
    // their key, but the password's tag binds the real target and the real agent key.
    let kp = KeyPair::generate().unwrap();
    let agent = AgentSigningKey::generate();
    let evil = AgentSigningKey::generate();
    let sealed = seal_to(&kp, "pw", &agent);
    let mut env = envelope(&sealed);
    let mut t = target();
    t.host = "evil.example".into();
    let tj = serde_json::to_vec(&t).unwrap();
    let d = |k: &str| URL_SAFE_NO_PAD.decode(env[k].as_str().unwrap()).unwrap();
    let aad = aad(&tj, &evil.public().0);
    let sig = evil
        .0
        .sign(&signed_bytes(&aad, &d("key"), &d("nonce"), &d("ct")));
    env["target"] = Value::String(URL_SAFE_NO_PAD.encode(&tj));
    env["agent"] = Value::String(evil.public().encode());
    env["sig"] = Value::String(URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    assert!(matches!(
        open(&kp.private_pem, &reencode(&env)),
        Err(GrantError::Open)
    ));
}

#[test]
fn a_re_sealed_envelope_opens_only_under_its_sealers_key() {
    // Anyone with the requester's public key can seal a password of their own: it opens,
    // but names their key, which the CLI compares with the agent key it pinned.
    let kp = KeyPair::generate().unwrap();
    let evil = AgentSigningKey::generate();
    let agent = AgentSigningKey::generate();
    let sealed = seal_to(&kp, "theirs", &evil);
    let g = open(&kp.private_pem, &sealed).unwrap();
    assert_ne!(g.agent_key, agent.public());
}

#[test]
fn tampering_and_garbage_are_refused() {
    let kp = KeyPair::generate().unwrap();
    let agent = AgentSigningKey::generate();
    let sealed = seal_to(&kp, "pw", &agent);
    for field in ["key", "nonce", "ct", "sig"] {
        let mut env = envelope(&sealed);
        let mut raw = URL_SAFE_NO_PAD
            .decode(env[field].as_str().unwrap())
            .unwrap();
        raw[0] ^= 1;
        env[field] = Value::String(URL_SAFE_NO_PAD.encode(raw));
        assert!(open(&kp.private_pem, &reencode(&env)).is_err(), "{field}");
    }
    let mut env = envelope(&sealed);
    env["v"] = Value::from(1);
    assert!(matches!(
        open(&kp.private_pem, &reencode(&env)),
        Err(GrantError::Version(1))
    ));
    assert!(matches!(
        open(&kp.private_pem, ""),
        Err(GrantError::Missing)
    ));
    assert!(matches!(
        open(&kp.private_pem, "!!"),
        Err(GrantError::Missing)
    ));
    let old = crate::Sealer::seal(&crate::RsaOaepSealer, kp.public_pem.as_bytes(), b"pw").unwrap();
    assert!(matches!(
        open(&kp.private_pem, &old),
        Err(GrantError::Missing)
    ));
    let other = KeyPair::generate().unwrap();
    assert!(matches!(
        open(&other.private_pem, &sealed),
        Err(GrantError::Open)
    ));
}

#[test]
fn targets_a_client_could_misread_are_refused() {
    for host in [
        "",
        "a,b",
        "/tmp",
        "-oProxyCommand",
        "127.0.0.1\nlocal-infile=1",
        "h st",
    ] {
        let mut t = target();
        t.host = host.into();
        assert!(t.check().is_err(), "{host:?}");
    }
    let mut t = target();
    t.database = "app\nlocal-infile=1".into();
    assert!(t.check().is_err());
    let mut t = target();
    t.port = 0;
    assert!(t.check().is_err());
    let mut t = target();
    t.tls = TlsExpectation::VerifyFull {
        ca_pem: Some("garbage".into()),
    };
    assert!(t.check().is_err());
    for host in ["127.0.0.1", "db.internal", "[::1]", "::1", "my_host-1"] {
        let mut t = target();
        t.host = host.into();
        assert!(t.check().is_ok(), "{host}");
    }
}

#[test]
fn the_signing_key_round_trips_through_pem_and_debug_shows_no_secret() {
    let k = AgentSigningKey::generate();
    let pem = k.to_pkcs8_pem().unwrap();
    let back =
        AgentSigningKey::from_pkcs8_pem(std::str::from_utf8(pem.expose_secret()).unwrap()).unwrap();
    assert_eq!(back.public(), k.public());
    assert!(format!("{k:?}").starts_with("AgentSigningKey(SHA256:"));
    assert!(AgentSigningKey::from_pkcs8_pem("nope").is_err());
    assert_eq!(AgentKey::decode(&k.public().encode()).unwrap(), k.public());
}
