//! The SCRAM-SHA-256 verifier PostgreSQL stores for a password (`SCRAM-SHA-256$<iterations>:
//! <salt>$<StoredKey>:<ServerKey>`, RFC 5802 and 7677), so only the verifier ever reaches the
//! server. Hi() is PBKDF2-HMAC-SHA-256 (the `pbkdf2` crate).
//!
//! The iteration count is [`SCRAM_ITERATIONS`], not PostgreSQL's 4,096: iterations slow the
//! guessing of a password from a stolen verifier, and p0's passwords are 40 characters from the
//! OS CSPRNG (about 238 bits), beyond guessing at any count. What the count does cost is CPU at
//! every creation (the server checks each new verifier against the empty password, running all
//! the iterations) and at every login (the client runs them). SECURITY.md gives the figures.

use crate::error::ProvisionError;
use crate::secret::Password;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hi() rounds in the verifiers p0 makes.
pub const SCRAM_ITERATIONS: u32 = 16;

/// The SCRAM-SHA-256 verifier of `password`, with a fresh 16-byte salt.
pub fn scram_verifier(password: &Password) -> Result<String, ProvisionError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    verifier_with(password.expose_secret().as_bytes(), &salt, SCRAM_ITERATIONS)
}

/// p0's passwords are ASCII letters and digits, which SASLprep leaves as they are.
fn verifier_with(password: &[u8], salt: &[u8], iterations: u32) -> Result<String, ProvisionError> {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
    let hmac = |key: &[u8], msg: &[u8]| {
        // HMAC takes a key of any length: this never fails.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| ProvisionError::Database("cannot key HMAC-SHA-256".into()))?;
        m.update(msg);
        Ok::<_, ProvisionError>(m.finalize().into_bytes())
    };
    let client_key = hmac(&salted, b"Client Key")?;
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key")?;
    Ok(format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_7677() {
        // RFC 7677 section 3: "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 rounds. The RFC
        // shows the exchange, not the keys; these are the keys that produce its
        // ServerSignature (and what PostgreSQL stores for that password and salt).
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = verifier_with(b"pencil", &salt, 4096).unwrap();
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn uses_p0s_count_and_a_fresh_salt() {
        let p = Password::generate();
        let (a, b) = (scram_verifier(&p).unwrap(), scram_verifier(&p).unwrap());
        assert!(a.starts_with(&format!("SCRAM-SHA-256${SCRAM_ITERATIONS}:")));
        assert_ne!(a, b);
        assert!(!a.contains(p.expose_secret()));
    }
}
