//! What a requester asks for, as they signed it.

use super::names::{RequestId, ResourceId, RoleName};
use serde::{Deserialize, Serialize};

/// What the requester asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Run this SQL: p0 grants what it needs.
    Query(String),
    /// Membership of an existing role.
    Role(RoleName),
}

/// A request for access, as the requester signed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessRequest {
    /// Unique id, also the replay key.
    pub id: RequestId,
    /// Who asks (the ID token's subject or email).
    pub requester: String,
    /// Which database target.
    pub resource: ResourceId,
    /// What for.
    pub intent: Intent,
    /// Why, in the requester's words.
    pub reason: String,
    /// For how long, in seconds.
    pub duration_secs: u64,
    /// The requester's public key (SPKI PEM); the password is sealed to it.
    pub public_key: String,
}
