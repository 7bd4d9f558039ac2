//! The sealed grant: the password **and** where to use it, as one authenticated message from
//! the agent to the requester's CLI.
//!
//! A password alone is not enough to protect: whoever chooses the host a client connects to
//! can ask that client for the password in cleartext. So the agent seals the connection target
//! (resource, host, port, database, user, expiry, TLS expectation) together with the password,
//! and the CLI connects only where the sealed target says.
//!
//! Construction (format version 2), from maintained crates only:
//! - a fresh AES-256-GCM key, wrapped with RSA-OAEP-SHA256 to the requester's public key;
//! - the password encrypted under it with a random 96-bit nonce, with the target's exact JSON
//!   bytes and the agent's public key as authenticated data: a target or agent key of anyone
//!   else's choosing makes the tag fail;
//! - an Ed25519 signature by the agent's own key over all of it, so a CLI that knows the agent's
//!   key (pinned on first use, as SSH pins host keys) refuses an envelope that someone else
//!   sealed to its public key with a target and password of their own.
//!
//! Wire form: `base64url(JSON {v, target, key, nonce, ct, agent, sig})`, every binary field
//! base64url without padding, `target` being the JSON bytes of [`ConnectTarget`].

use crate::error::GrantError;
use crate::seal::{parse_private, parse_public};
use crate::secret::{Password, SecretBytes};
use crate::types::{Engine, RequestId, ResourceId, Username};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, Verifier};
use rand::RngCore;
use rsa::Oaep;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const VERSION: u8 = 2;
const DOMAIN: &[u8] = b"p0-grant-v2\0";
/// Largest sealed grant accepted (a CA certificate chain included).
const MAX_SEALED: usize = 64 * 1024;

/// What the client may do about TLS to the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum TlsExpectation {
    /// No TLS: the client must then refuse any password exchange but SCRAM (PostgreSQL) or
    /// a hashed plugin (MySQL), so the password never crosses the wire.
    Off,
    /// TLS with the server certificate verified against `ca_pem` (or the system roots) and
    /// the host name checked.
    VerifyFull {
        /// PEM certificates of the CA that signs the database's certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_pem: Option<String>,
    },
}

/// Where a grant is used. Every field comes from the agent's own configuration, never from
/// the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectTarget {
    /// The request the grant answers.
    pub request_id: RequestId,
    /// The resource it is for.
    pub resource: ResourceId,
    /// The database engine.
    pub engine: Engine,
    /// Host name or IP address clients connect to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// The ephemeral user.
    pub username: Username,
    /// When the grant ends.
    pub expires_at: DateTime<Utc>,
    /// What the client must do about TLS.
    pub tls: TlsExpectation,
}

impl ConnectTarget {
    /// Refuses a target that a client could misread: a host that is not a plain host name or
    /// address (a list, a socket path, an option), a database name with control characters,
    /// port 0, a CA that is not PEM.
    pub fn check(&self) -> Result<(), GrantError> {
        let host_ok = !self.host.is_empty()
            && self.host.len() <= 253
            && !self.host.starts_with(['-', '.'])
            && self.host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_')
            });
        if !host_ok {
            return Err(GrantError::Target(format!(
                "host `{}` is not a host name or address",
                self.host.escape_default()
            )));
        }
        if self.port == 0 {
            return Err(GrantError::Target("port 0".into()));
        }
        if self.database.is_empty()
            || self.database.len() > 64
            || self.database.chars().any(|c| c.is_control())
        {
            return Err(GrantError::Target(format!(
                "database name `{}` is not valid",
                self.database.escape_default()
            )));
        }
        if let TlsExpectation::VerifyFull { ca_pem: Some(ca) } = &self.tls {
            if !ca.trim_start().starts_with("-----BEGIN CERTIFICATE-----") || ca.contains('\0') {
                return Err(GrantError::Target("the CA is not a PEM certificate".into()));
            }
        }
        Ok(())
    }
}

/// The agent's signing key (Ed25519). Redacted `Debug`; the key bytes are zeroized on drop.
pub struct AgentSigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for AgentSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentSigningKey({})", self.public().fingerprint())
    }
}

impl AgentSigningKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Parses a PKCS#8 PEM key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, GrantError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self)
            .map_err(|_| GrantError::Key("not an Ed25519 PKCS#8 PEM private key".into()))
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Result<SecretBytes, GrantError> {
        use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
        let pem = self
            .0
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| GrantError::Key(e.to_string()))?;
        Ok(SecretBytes::new(pem.as_bytes().to_vec()))
    }

    /// Its public half.
    pub fn public(&self) -> AgentKey {
        AgentKey(self.0.verifying_key().to_bytes())
    }
}

/// An agent's public key, as the CLI pins it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AgentKey([u8; 32]);

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

impl AgentKey {
    /// base64url of the raw key: the form kept in the CLI's known-agents file.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses [`AgentKey::encode`]'s form.
    pub fn decode(text: &str) -> Result<Self, GrantError> {
        let raw = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| GrantError::Malformed)?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| GrantError::Malformed)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| GrantError::Malformed)?;
        Ok(Self(bytes))
    }

    /// `SHA256:` and the base64 of its digest, as people compare keys.
    pub fn fingerprint(&self) -> String {
        format!("SHA256:{}", URL_SAFE_NO_PAD.encode(Sha256::digest(self.0)))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    v: u8,
    target: String,
    key: String,
    nonce: String,
    ct: String,
    agent: String,
    sig: String,
}

fn aad(target: &[u8], agent: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + 8 + target.len() + 32);
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(&(target.len() as u64).to_be_bytes());
    out.extend_from_slice(target);
    out.extend_from_slice(agent);
    out
}

fn signed_bytes(aad: &[u8], key: &[u8], nonce: &[u8], ct: &[u8]) -> Vec<u8> {
    let mut out = aad.to_vec();
    for part in [key, nonce, ct] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Seals `password` and `target` to the requester's `public_key` (SPKI, PEM or DER), signed
/// by the agent.
pub fn seal(
    public_key: &[u8],
    target: &ConnectTarget,
    password: &Password,
    agent: &AgentSigningKey,
) -> Result<String, GrantError> {
    target.check()?;
    let rsa = parse_public(public_key).map_err(|e| GrantError::Key(e.to_string()))?;
    let target_json = serde_json::to_vec(target).map_err(|_| GrantError::Seal)?;
    let agent_pub = agent.public().0;
    let aad = aad(&target_json, &agent_pub);
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| GrantError::Seal)?;
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: password.expose_secret().as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| GrantError::Seal)?;
    let wrapped = rsa
        .encrypt(&mut rand::rngs::OsRng, Oaep::new::<Sha256>(), key.as_ref())
        .map_err(|_| GrantError::Seal)?;
    let sig = agent.0.sign(&signed_bytes(&aad, &wrapped, &nonce, &ct));
    let e = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let env = Envelope {
        v: VERSION,
        target: e(&target_json),
        key: e(&wrapped),
        nonce: e(&nonce),
        ct: e(&ct),
        agent: e(&agent_pub),
        sig: e(&sig.to_bytes()),
    };
    Ok(e(&serde_json::to_vec(&env).map_err(|_| GrantError::Seal)?))
}

/// An opened grant: the target, the password, and the key of the agent that sealed them.
#[derive(Debug)]
pub struct OpenedGrant {
    /// Where to connect; nowhere else.
    pub target: ConnectTarget,
    /// The password.
    pub password: Password,
    /// Who sealed it: compare with the key pinned for the resource.
    pub agent_key: AgentKey,
}

impl OpenedGrant {
    /// Checks that the grant answers the request the CLI made, for the resource it named,
    /// and has not ended.
    pub fn check_for(
        &self,
        request_id: &RequestId,
        resource: &ResourceId,
        now: DateTime<Utc>,
    ) -> Result<(), GrantError> {
        if &self.target.request_id != request_id {
            return Err(GrantError::Target(format!(
                "sealed for request `{}`, not `{request_id}`",
                self.target.request_id
            )));
        }
        if &self.target.resource != resource {
            return Err(GrantError::Target(format!(
                "sealed for resource `{}`, not `{resource}`",
                self.target.resource
            )));
        }
        if self.target.expires_at <= now {
            return Err(GrantError::Target("the grant has expired".into()));
        }
        Ok(())
    }
}

/// Opens a sealed grant with the requester's private key (PKCS#8). Fails unless the target,
/// the agent's key and the password are exactly as the agent sealed them.
pub fn open(private_key: &SecretBytes, sealed: &str) -> Result<OpenedGrant, GrantError> {
    if sealed.len() > MAX_SEALED {
        return Err(GrantError::Malformed);
    }
    let d = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| GrantError::Malformed);
    let raw = d(sealed.trim()).map_err(|_| GrantError::Missing)?;
    let env: Envelope = serde_json::from_slice(&raw).map_err(|_| GrantError::Missing)?;
    if env.v != VERSION {
        return Err(GrantError::Version(env.v));
    }
    let (target_json, wrapped, nonce, ct) =
        (d(&env.target)?, d(&env.key)?, d(&env.nonce)?, d(&env.ct)?);
    let agent_key = AgentKey::decode(&env.agent)?;
    let sig: [u8; 64] = d(&env.sig)?.try_into().map_err(|_| GrantError::Malformed)?;
    if nonce.len() != 12 {
        return Err(GrantError::Malformed);
    }
    let aad = aad(&target_json, &agent_key.0);
    let verifying =
        ed25519_dalek::VerifyingKey::from_bytes(&agent_key.0).map_err(|_| GrantError::Malformed)?;
    verifying
        .verify(
            &signed_bytes(&aad, &wrapped, &nonce, &ct),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .map_err(|_| GrantError::Open)?;
    let rsa =
        parse_private(private_key.expose_secret()).map_err(|e| GrantError::Key(e.to_string()))?;
    // RUSTSEC-2023-0071 (Marvin): decryption timing. It runs once per grant on the
    // requester's own machine, not as an oracle an attacker can query; see deny.toml.
    let key = Zeroizing::new(
        rsa.decrypt(Oaep::new::<Sha256>(), &wrapped)
            .map_err(|_| GrantError::Open)?,
    );
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| GrantError::Open)?;
    let pt = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| GrantError::Open)?,
    );
    // Only authenticated bytes are parsed.
    let target: ConnectTarget =
        serde_json::from_slice(&target_json).map_err(|_| GrantError::Malformed)?;
    target.check()?;
    let password = std::str::from_utf8(&pt).map_err(|_| GrantError::Malformed)?;
    Ok(OpenedGrant {
        target,
        password: Password::new(password.to_string()),
        agent_key,
    })
}

#[cfg(test)]
mod tests;
