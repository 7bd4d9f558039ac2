//! What an [`crate::agent::Agent`] is built from: everything comes from the agent's own
//! configuration, nothing from the server.

use crate::error::GrantError;
use crate::grant::{AgentSigningKey, ConnectTarget, TlsExpectation};
use crate::provision::DatabaseProvisioner;
use crate::secret::SecretBytes;
use crate::types::{Engine, RequestId, ResourceId, Username};
use crate::verify::IdTokenVerifier;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// How far a signed request's `issued_at` (or a pickup proof) may be from now, unless
/// [`AgentSettings::max_request_age_secs`] says otherwise.
pub const DEFAULT_MAX_REQUEST_AGE_SECS: i64 = 300;

/// The shortest server HMAC secret accepted, in bytes.
pub const MIN_HMAC_SECRET_LEN: usize = 16;

/// Settings an agent cannot start with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentSetupError {
    /// The server's HMAC secret is shorter than [`MIN_HMAC_SECRET_LEN`].
    #[error("hmac_secret must be at least 16 characters")]
    HmacSecretTooShort,
    /// The freshness window is zero or negative.
    #[error("max_request_age_secs must be between 1 and 3600 (a request's claim must outlive every window it could be accepted in)")]
    MaxAge,
    /// Clients could misread where to connect.
    #[error(transparent)]
    Target(#[from] GrantError),
}

/// Where clients connect: the agent's side of every [`ConnectTarget`], sealed with every
/// password so nobody between agent and CLI can send the CLI elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectEndpoint {
    /// Host name or address users reach the database at.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// What the client must do about TLS.
    pub tls: TlsExpectation,
}

impl ConnectEndpoint {
    /// The target of one grant at this endpoint.
    pub fn target(
        &self,
        request_id: RequestId,
        resource: ResourceId,
        engine: Engine,
        username: Username,
        expires_at: DateTime<Utc>,
    ) -> ConnectTarget {
        ConnectTarget {
            request_id,
            resource,
            engine,
            host: self.host.clone(),
            port: self.port,
            database: self.database.clone(),
            username,
            expires_at,
            tls: self.tls.clone(),
        }
    }

    /// The check the CLI makes on every grant ([`ConnectTarget::check`]), made once at start
    /// so a misconfigured endpoint fails then rather than on every grant.
    pub fn check(&self, resource: &ResourceId, engine: Engine) -> Result<(), GrantError> {
        let probe = Username::new("p0_check").map_err(|e| GrantError::Target(e.to_string()))?;
        self.target(
            RequestId::generate(),
            resource.clone(),
            engine,
            probe,
            Utc::now(),
        )
        .check()
    }
}

/// What an agent is built from: the required parts in [`AgentSettings::new`], the rest with
/// defaults that the builder methods change.
pub struct AgentSettings {
    pub(crate) resource: ResourceId,
    pub(crate) engine: Engine,
    pub(crate) verifier: Arc<dyn IdTokenVerifier>,
    pub(crate) provisioner: Arc<dyn DatabaseProvisioner>,
    pub(crate) endpoint: ConnectEndpoint,
    pub(crate) signing_key: AgentSigningKey,
    pub(crate) hmac_secret: Option<SecretBytes>,
    pub(crate) max_age: i64,
    pub(crate) catalog_url: Option<String>,
    pub(crate) default_database: Option<String>,
}

impl std::fmt::Debug for AgentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSettings")
            .field("resource", &self.resource)
            .field("engine", &self.engine)
            .field("endpoint", &self.endpoint)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl AgentSettings {
    /// An agent for `resource`, a database of `engine` that `provisioner` manages: it accepts
    /// the ID tokens `verifier` accepts, seals grants to `endpoint` and signs them with
    /// `signing_key`. Without [`Self::hmac_secret`] it authenticates no server (for a transport
    /// that authenticates the caller itself, such as IAM on Lambda); without
    /// [`Self::live_catalog`] it extracts queries from their text alone.
    pub fn new(
        resource: ResourceId,
        engine: Engine,
        verifier: Arc<dyn IdTokenVerifier>,
        provisioner: Arc<dyn DatabaseProvisioner>,
        endpoint: ConnectEndpoint,
        signing_key: AgentSigningKey,
    ) -> Self {
        Self {
            resource,
            engine,
            verifier,
            provisioner,
            endpoint,
            signing_key,
            hmac_secret: None,
            max_age: DEFAULT_MAX_REQUEST_AGE_SECS,
            catalog_url: None,
            default_database: None,
        }
    }

    /// The secret the server signs its calls with (at least [`MIN_HMAC_SECRET_LEN`] bytes).
    #[must_use]
    pub fn hmac_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.hmac_secret = Some(SecretBytes::new(secret.into()));
        self
    }

    /// How far a signed request's `issued_at` (or the requester's pickup proof, for a request
    /// that waited for approval) may be from now, in seconds: 1 to 3,600.
    #[must_use]
    pub fn max_request_age_secs(mut self, secs: i64) -> Self {
        self.max_age = secs;
        self
    }

    /// Reads the live catalog at `url`, in the agent's engine (a snapshot reused for a few
    /// seconds), to resolve the names of query requests.
    #[must_use]
    pub fn live_catalog(mut self, url: impl Into<String>) -> Self {
        self.catalog_url = Some(url.into());
        self
    }

    /// The database unqualified MySQL names belong to.
    #[must_use]
    pub fn default_database(mut self, database: Option<String>) -> Self {
        self.default_database = database;
        self
    }

    /// Refuses settings an agent cannot start with.
    pub(crate) fn check(&self) -> Result<(), AgentSetupError> {
        if self
            .hmac_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < MIN_HMAC_SECRET_LEN)
        {
            return Err(AgentSetupError::HmacSecretTooShort);
        }
        // A request's claim is kept for eight days: seven of pickup, an hour of window at
        // most, and the rest for clocks that disagree.
        if self.max_age <= 0 || self.max_age > 3_600 {
            return Err(AgentSetupError::MaxAge);
        }
        self.endpoint.check(&self.resource, self.engine)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn endpoint(host: &str) -> ConnectEndpoint {
        ConnectEndpoint {
            host: host.into(),
            port: 5432,
            database: "app".into(),
            tls: TlsExpectation::Off,
        }
    }

    #[test]
    fn endpoints_are_checked_as_the_cli_checks_them() {
        let pg = ResourceId::new("pg/app").unwrap();
        assert!(endpoint("db.internal").check(&pg, Engine::Postgres).is_ok());
        let err = endpoint("a,b").check(&pg, Engine::Postgres).unwrap_err();
        assert!(err.to_string().contains("`a,b`"), "{err}");
        let t = endpoint("db").target(
            RequestId::generate(),
            pg,
            Engine::Postgres,
            Username::new("p0_x").unwrap(),
            Utc::now(),
        );
        assert_eq!(
            (t.host.as_str(), t.port, t.database.as_str()),
            ("db", 5432, "app")
        );
    }
}
