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
}

impl Marker {
    /// The marker of a shared role (it names no request and never expires by itself).
    pub fn role() -> Self {
        Self {
            kind: AccountKind::Role,
            request: None,
            role: None,
            expires: None,
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
        };
        assert_eq!(Marker::parse(&m.render()), Some(m));
        assert_eq!(Marker::parse("{\"kind\":\"user\"}"), None);
        assert_eq!(Marker::parse("p0-managed:not json"), None);
    }
}
