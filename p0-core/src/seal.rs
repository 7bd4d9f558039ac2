//! Sealing secrets to the requester's public key.
//!
//! Format of a sealed secret, before base64url (no padding): one version byte, then the
//! ciphertext. Version 1 is RSA-OAEP with SHA-256 (and MGF1-SHA-256) directly over the secret,
//! which fits the passwords p0 makes (at most 190 bytes under a 2048-bit key). A later version
//! can wrap a symmetric key instead without breaking clients that understand version 1.

use crate::error::SealError;
use crate::secret::SecretBytes;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

/// Seal a secret to a public key; open it with the private key.
pub trait Sealer: Send + Sync {
    /// Encrypts `secret` to `public_key` (SPKI, PEM or DER). Returns the sealed text.
    fn seal(&self, public_key: &[u8], secret: &[u8]) -> Result<String, SealError>;
    /// Decrypts a sealed text with `private_key` (PKCS#8, PEM or DER).
    fn open(&self, private_key: &SecretBytes, sealed: &str) -> Result<SecretBytes, SealError>;
}

/// RSA-OAEP-SHA256 sealing (format version 1).
#[derive(Debug, Default, Clone, Copy)]
pub struct RsaOaepSealer;

const V1: u8 = 1;

/// A fresh RSA key pair for a CLI.
#[derive(Debug)]
pub struct KeyPair {
    /// PKCS#8 PEM.
    pub private_pem: SecretBytes,
    /// SPKI PEM.
    pub public_pem: String,
}

impl KeyPair {
    /// Generates a 2048-bit RSA key pair from the OS CSPRNG.
    pub fn generate() -> Result<Self, SealError> {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .map_err(|e| SealError::Key(e.to_string()))?;
        let private_pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| SealError::Key(e.to_string()))?;
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| SealError::Key(e.to_string()))?;
        Ok(Self {
            private_pem: SecretBytes::new(private_pem.as_bytes().to_vec()),
            public_pem,
        })
    }
}

pub(crate) fn parse_public(key: &[u8]) -> Result<RsaPublicKey, SealError> {
    let parsed = match std::str::from_utf8(key) {
        Ok(pem) if pem.trim_start().starts_with("-----BEGIN") => {
            RsaPublicKey::from_public_key_pem(pem.trim())
        }
        _ => RsaPublicKey::from_public_key_der(key),
    };
    parsed.map_err(|e| SealError::Key(e.to_string()))
}

pub(crate) fn parse_private(key: &[u8]) -> Result<RsaPrivateKey, SealError> {
    let parsed = match std::str::from_utf8(key) {
        Ok(pem) if pem.trim_start().starts_with("-----BEGIN") => {
            RsaPrivateKey::from_pkcs8_pem(pem.trim())
        }
        _ => RsaPrivateKey::from_pkcs8_der(key),
    };
    parsed.map_err(|e| SealError::Key(e.to_string()))
}

/// An RSASSA-PKCS1-v1_5 SHA-256 signature of `msg` with `private_key` (PKCS#8, PEM or DER):
/// the request's signature and each call's proof of possession. Made with `ring`, whose
/// constant-time RSA signs about ten times faster than the `rsa` crate (the CLI signs on
/// every call); the signature is deterministic, the same bytes either way, and the `rsa`
/// crate verifies it. A key `ring` does not take (under 2048 bits) is signed with `rsa`.
pub(crate) fn sign_pkcs1_sha256(private_key: &[u8], msg: &[u8]) -> Result<Vec<u8>, SealError> {
    use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    use rsa::pkcs8::SecretDocument;
    let doc = match std::str::from_utf8(private_key) {
        Ok(pem) if pem.trim_start().starts_with("-----BEGIN") => {
            SecretDocument::from_pem(pem.trim())
                .map_err(|e| SealError::Key(e.to_string()))?
                .1
        }
        _ => SecretDocument::try_from(private_key).map_err(|e| SealError::Key(e.to_string()))?,
    };
    match RsaKeyPair::from_pkcs8(doc.as_bytes()) {
        Ok(key) => {
            let mut sig = vec![0; key.public().modulus_len()];
            key.sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                msg,
                &mut sig,
            )
            .map_err(|_| SealError::Seal)?;
            Ok(sig)
        }
        Err(_) => {
            use rsa::signature::{SignatureEncoding, Signer};
            let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(parse_private(doc.as_bytes())?);
            Ok(key.try_sign(msg).map_err(|_| SealError::Seal)?.to_vec())
        }
    }
}

/// `base64url(SHA-256(SPKI DER))` of a public key: the value the ID token's nonce commits to.
pub fn key_fingerprint(public_key: &[u8]) -> Result<String, SealError> {
    let der = parse_public(public_key)?
        .to_public_key_der()
        .map_err(|e| SealError::Key(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_bytes())))
}

impl Sealer for RsaOaepSealer {
    fn seal(&self, public_key: &[u8], secret: &[u8]) -> Result<String, SealError> {
        let key = parse_public(public_key)?;
        let ct = key
            .encrypt(&mut rand::rngs::OsRng, Oaep::new::<Sha256>(), secret)
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(ct.len() + 1);
        out.push(V1);
        out.extend_from_slice(&ct);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn open(&self, private_key: &SecretBytes, sealed: &str) -> Result<SecretBytes, SealError> {
        let raw = URL_SAFE_NO_PAD
            .decode(sealed.trim())
            .map_err(|_| SealError::Malformed)?;
        let (&version, ct) = raw.split_first().ok_or(SealError::Malformed)?;
        if version != V1 {
            return Err(SealError::Version(version));
        }
        let key = parse_private(private_key.expose_secret())?;
        // RUSTSEC-2023-0071 (Marvin): decryption timing. It runs once per grant on the
        // requester's own machine, not as an oracle an attacker can query; see deny.toml.
        let pt = key
            .decrypt(Oaep::new::<Sha256>(), ct)
            .map_err(|_| SealError::Open)?;
        Ok(SecretBytes::new(pt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::EncodePublicKey;

    #[test]
    fn ring_signs_the_same_bytes_as_the_rsa_crate() {
        use rsa::signature::{SignatureEncoding, Signer};
        let kp = KeyPair::generate().unwrap();
        let msg = b"the canonical request";
        let ours = sign_pkcs1_sha256(kp.private_pem.expose_secret(), msg).unwrap();
        let key = parse_private(kp.private_pem.expose_secret()).unwrap();
        let theirs = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()).sign(msg);
        assert_eq!(ours, theirs.to_vec());
        // DER in, and a key `ring` refuses (1024 bits) signed by the `rsa` crate instead.
        let der = key.to_pkcs8_der().unwrap();
        assert_eq!(sign_pkcs1_sha256(der.as_bytes(), msg).unwrap(), ours);
        let small = RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let small_der = small.to_pkcs8_der().unwrap();
        let sig = sign_pkcs1_sha256(small_der.as_bytes(), msg).unwrap();
        assert_eq!(
            sig,
            rsa::pkcs1v15::SigningKey::<Sha256>::new(small)
                .sign(msg)
                .to_vec()
        );
        assert!(sign_pkcs1_sha256(b"not a key", msg).is_err());
    }

    #[test]
    fn round_trip_pem_and_der() {
        let kp = KeyPair::generate().unwrap();
        let s = RsaOaepSealer;
        let sealed = s
            .seal(kp.public_pem.as_bytes(), b"s3cret-password")
            .unwrap();
        assert_eq!(
            s.open(&kp.private_pem, &sealed).unwrap().expose_secret(),
            b"s3cret-password"
        );
        let der = RsaPublicKey::from_public_key_pem(&kp.public_pem)
            .unwrap()
            .to_public_key_der()
            .unwrap();
        let sealed = s.seal(der.as_bytes(), b"x").unwrap();
        let priv_der = parse_private(kp.private_pem.expose_secret())
            .unwrap()
            .to_pkcs8_der()
            .unwrap();
        assert_eq!(
            s.open(&SecretBytes::new(priv_der.as_bytes().to_vec()), &sealed)
                .unwrap()
                .expose_secret(),
            b"x"
        );
    }

    #[test]
    fn wrong_key_fails() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        let sealed = RsaOaepSealer.seal(a.public_pem.as_bytes(), b"pw").unwrap();
        assert!(matches!(
            RsaOaepSealer.open(&b.private_pem, &sealed),
            Err(SealError::Open)
        ));
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let kp = KeyPair::generate().unwrap();
        let sealed = RsaOaepSealer.seal(kp.public_pem.as_bytes(), b"pw").unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(matches!(
            RsaOaepSealer.open(&kp.private_pem, &URL_SAFE_NO_PAD.encode(&raw)),
            Err(SealError::Open)
        ));
        raw[0] = 9;
        assert!(matches!(
            RsaOaepSealer.open(&kp.private_pem, &URL_SAFE_NO_PAD.encode(&raw)),
            Err(SealError::Version(9))
        ));
        assert!(matches!(
            RsaOaepSealer.open(&kp.private_pem, "!!!"),
            Err(SealError::Malformed)
        ));
        assert!(matches!(
            RsaOaepSealer.open(&kp.private_pem, ""),
            Err(SealError::Malformed)
        ));
    }

    #[test]
    fn fingerprint_is_the_same_for_pem_and_der() {
        let kp = KeyPair::generate().unwrap();
        let der = RsaPublicKey::from_public_key_pem(&kp.public_pem)
            .unwrap()
            .to_public_key_der()
            .unwrap();
        assert_eq!(
            key_fingerprint(kp.public_pem.as_bytes()).unwrap(),
            key_fingerprint(der.as_bytes()).unwrap()
        );
    }
}
