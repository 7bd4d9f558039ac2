//! The marker p0 records on every user and role it creates, and what a back-end finds when it
//! looks a name up. Revocation, `list_managed` and the sweeper touch only marked accounts.

use super::plan::{AccountKind, ManagedAccount};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The prefix of a rendered marker (PostgreSQL keeps it as the role's comment).
pub const MARKER: &str = "p0-managed:";

/// The content of the marker: what p0 created, for which request, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// User or shared role.
    pub kind: AccountKind,
    /// For users: the request they serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// For users: the role they were granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// For users: when they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    /// For users: their request's [`Claim`] was recorded before they were created. Users made
    /// before claims existed lack it; their request is claimed when they are revoked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claimed: bool,
}

impl Marker {
    /// The marker of a shared role (it names no request and never expires by itself).
    pub fn role() -> Self {
        Self {
            kind: AccountKind::Role,
            request: None,
            role: None,
            expires: None,
            claimed: false,
        }
    }

    /// `p0-managed:` followed by the marker as JSON.
    pub fn render(&self) -> String {
        format!(
            "{MARKER}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// Reads a rendered marker; `None` for anything else.
    pub fn parse(text: &str) -> Option<Marker> {
        serde_json::from_str(text.strip_prefix(MARKER)?).ok()
    }

    /// The account `name` as `list_managed` reports it.
    pub fn account(self, name: String) -> ManagedAccount {
        ManagedAccount {
            name,
            kind: self.kind,
            expires_at: self.expires,
            request_id: self.request,
        }
    }
}

/// The prefix of a rendered [`Claim`].
pub const CLAIM: &str = "p0-claim:";

/// A request id taken for good: recorded durably, in the database, before the request's user
/// is created, and kept after the user is gone until no signed call for that request can be
/// accepted any more ([`CLAIM_SECS`]). A second provisioning of the same request — a replay
/// after the user was revoked, on another agent instance, or after a restart — finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The request.
    pub request: String,
    /// When it may be forgotten.
    pub until: DateTime<Utc>,
}

/// How long a claim is kept: the longest an approved request may wait for its pickup (seven
/// days), plus the longest freshness window an agent accepts (an hour, by which a signed
/// `issued_at` may lie ahead), plus the rest of a day for agents' clocks that disagree — so
/// that every call a claim's request could still be accepted with finds it.
pub const CLAIM_SECS: i64 = 8 * 86_400;

impl Claim {
    /// The claim of `request`, kept [`CLAIM_SECS`] from now.
    pub fn new(request: String) -> Self {
        Self {
            request,
            until: Utc::now() + chrono::TimeDelta::seconds(CLAIM_SECS),
        }
    }

    /// `p0-claim:` followed by the claim as JSON.
    pub fn render(&self) -> String {
        format!("{CLAIM}{}", serde_json::to_string(self).unwrap_or_default())
    }

    /// Reads a rendered claim; `None` for anything else.
    pub fn parse(text: &str) -> Option<Claim> {
        serde_json::from_str(text.strip_prefix(CLAIM)?).ok()
    }
}

/// What a back-end finds under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// No account of that name.
    Absent,
    /// An account p0 did not create (no marker): never touched.
    Unmarked,
    /// An account p0 created, with its marker.
    Managed(Marker),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_and_nothing_else_does() {
        let m = Marker {
            kind: AccountKind::User,
            request: Some("r1".into()),
            role: Some("p0r_x".into()),
            expires: None,
            claimed: true,
        };
        assert_eq!(Marker::parse(&m.render()), Some(m));
        assert_eq!(Marker::parse("{\"kind\":\"user\"}"), None);
        assert_eq!(Marker::parse("p0-managed:not json"), None);
    }

    #[test]
    fn a_claim_reads_back_and_a_marker_is_no_claim() {
        let c = Claim {
            request: "r1r1r1r1".into(),
            until: Utc::now(),
        };
        assert_eq!(Claim::parse(&c.render()), Some(c));
        assert_eq!(Claim::parse(&Marker::role().render()), None);
        assert_eq!(Claim::parse("p0-claim:{}"), None);
    }
}
