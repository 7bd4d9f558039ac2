//! The wire types of p0's two HTTP APIs: CLI ↔ server (`/v1/requests…`) and server ↔ agent
//! (`/v1/provision…`), and the HMAC that authenticates the server to the agent.

use crate::provision::ProvisionPlan;
use crate::route::Decision;
use crate::sign::SignedRequest;
use crate::types::{PermissionSet, RequestId, Username};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// CLI → server: a new request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// What the requester signed.
    pub signed: SignedRequest,
    /// Their signature over it.
    pub signature: String,
    /// Their public key (SPKI PEM): the password is sealed to it.
    pub public_key: String,
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for approvals.
    PendingApproval,
    /// Approved; the agent is creating the user.
    Provisioning,
    /// Credentials exist.
    Active,
    /// Refused by a rule or an approver.
    Denied,
    /// Provisioning failed.
    Failed,
    /// Revoked early.
    Revoked,
    /// Revoked at expiry.
    Expired,
}

impl RequestStatus {
    /// Whether nothing more will happen to the request.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RequestStatus::PendingApproval | RequestStatus::Provisioning
        )
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::PendingApproval => "pending_approval",
            RequestStatus::Provisioning => "provisioning",
            RequestStatus::Active => "active",
            RequestStatus::Denied => "denied",
            RequestStatus::Failed => "failed",
            RequestStatus::Revoked => "revoked",
            RequestStatus::Expired => "expired",
        }
    }
}

/// A live grant as the server holds it. Where to connect travels only inside the sealed grant
/// ([`crate::grant`]): the server cannot send the CLI anywhere else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    /// The ephemeral user.
    pub username: Username,
    /// The sealed grant (password and connection target), sealed to the requester's key and
    /// signed by the agent.
    pub sealed_password: String,
    /// The role granted.
    pub role: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// Server → CLI: a request as it stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestView {
    /// Its id.
    pub id: RequestId,
    /// Who asked.
    pub requester: String,
    /// What they signed.
    pub signed: SignedRequest,
    /// Where it is.
    pub status: RequestStatus,
    /// The permissions it needs (for query requests).
    pub permissions: Option<PermissionSet>,
    /// The routing decision.
    pub decision: Option<Decision>,
    /// Who approved what the request is now (approvals given for an earlier content of the
    /// request do not count and are not listed).
    pub approvals: Vec<String>,
    /// Credentials, while active (only shown to the requester).
    pub grant: Option<GrantView>,
    /// A reason for denial or failure.
    pub message: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The name of the rule that decided, when the router names its rules.
    #[serde(default)]
    pub rule: Option<String>,
    /// The server's [`approval_digest`] of the request; an approval must name it.
    #[serde(default)]
    pub digest: String,
}

impl RequestView {
    /// The [`approval_digest`] of what this view shows, computed here rather than taken
    /// from the server.
    pub fn approval_digest(&self) -> String {
        approval_digest(&self.requester, &self.signed, self.permissions.as_ref())
    }
}

/// What an approver is shown, in a fixed order: the digest of it is what an approval binds to.
#[derive(Serialize)]
struct Shown<'a> {
    request_id: &'a RequestId,
    requester: &'a str,
    resource: &'a crate::types::ResourceId,
    intent: &'a crate::types::Intent,
    reason: &'a str,
    duration_secs: u64,
    permissions: Option<&'a PermissionSet>,
}

/// `hex(SHA-256("p0-approval-v1\n" JSON))` of what an approver is shown: the request id,
/// the requester, the signed resource, intent (SQL or role), reason and duration, and the
/// permission set (in its canonical order). An approval names this digest; the server counts
/// only approvals whose digest is the request's current one, so if anything shown changes,
/// earlier approvals no longer count.
pub fn approval_digest(
    requester: &str,
    signed: &SignedRequest,
    permissions: Option<&PermissionSet>,
) -> String {
    use sha2::Digest as _;
    let shown = Shown {
        request_id: &signed.request_id,
        requester,
        resource: &signed.resource,
        intent: &signed.intent,
        reason: &signed.reason,
        duration_secs: signed.duration_secs,
        permissions,
    };
    // serde_json of these types cannot fail; an empty body would still be a stable digest.
    let json = serde_json::to_vec(&shown).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"p0-approval-v1\n");
    h.update(&json);
    hex::encode(h.finalize())
}

/// CLI → server: an approval of what the approver was shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The [`approval_digest`] of the request as the approver saw it.
    pub digest: String,
}

/// An error body with a stable code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable: `unauthenticated`, `bad_request`, `not_found`, `forbidden`, `denied`,
    /// `conflict`, `unavailable`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// Server → agent: create the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionCall {
    /// What to create.
    pub plan: ProvisionPlan,
    /// The requester's ID token.
    pub id_token: String,
    /// The requester's public key.
    pub public_key: String,
    /// What the requester signed.
    pub signed: SignedRequest,
    /// Their signature.
    pub signature: String,
    /// The requester's proof ([`crate::proof`]) of the call that triggered provisioning, when
    /// that call was their poll of an approved request (`GET /v1/requests/ID`): the agent takes
    /// it as the fresh act of the requester when the signed request itself is older than its
    /// freshness window (approvals take time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_proof: Option<String>,
}

/// Agent → server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionResult {
    /// The user.
    pub username: Username,
    /// The sealed grant ([`crate::grant`]): password and connection target, sealed to the
    /// requester's key and signed by the agent.
    pub sealed_password: String,
    /// The role.
    pub role: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// Server → agent: remove a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeCall {
    /// The user.
    pub username: Username,
}

/// Server → agent: the permissions some SQL needs, resolved against the live catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainCall {
    /// The SQL (empty when a role is asked for).
    #[serde(default)]
    pub sql: String,
    /// An existing role asked for by name instead of SQL: the agent says whether it would
    /// hand it out, before anyone approves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::RoleName>,
}

/// Header carrying the signing time (seconds since the epoch).
pub const HMAC_TIME_HEADER: &str = "x-p0-timestamp";
/// Header carrying `hex(HMAC-SHA256(secret, timestamp "\n" path "\n" body))`.
pub const HMAC_SIG_HEADER: &str = "x-p0-signature";
/// Largest clock difference accepted.
pub const HMAC_MAX_SKEW_SECS: i64 = 300;

/// The HMAC over one call.
pub fn hmac_sign(secret: &[u8], timestamp: i64, path: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks an HMAC in constant time, and the timestamp's freshness.
pub fn hmac_verify(
    secret: &[u8],
    timestamp: i64,
    path: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> bool {
    if (now - timestamp).abs() > HMAC_MAX_SKEW_SECS {
        return false;
    }
    let Ok(sig) = hex::decode(signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approval_digest_covers_everything_an_approver_is_shown() {
        use crate::types::{Intent, ObjectRef, Permission, Privilege, ResourceId};
        let signed = SignedRequest {
            request_id: RequestId::new("0123456789abcdef").unwrap(),
            resource: ResourceId::new("pg/app").unwrap(),
            intent: Intent::Query("UPDATE t SET a = 1".into()),
            reason: "fix".into(),
            duration_secs: 60,
            issued_at: 1,
        };
        let set: PermissionSet = [Permission::new(
            Privilege::Update,
            ObjectRef::table("public", "t"),
        )]
        .into_iter()
        .collect();
        let d = approval_digest("alice", &signed, Some(&set));
        assert_eq!(d.len(), 64);
        assert_eq!(d, approval_digest("alice", &signed, Some(&set)));
        let mut later = signed.clone();
        later.issued_at = 2;
        assert_eq!(d, approval_digest("alice", &later, Some(&set)), "not shown");
        let changes: Vec<SignedRequest> = vec![
            SignedRequest {
                intent: Intent::Query("DELETE FROM t".into()),
                ..signed.clone()
            },
            SignedRequest {
                reason: "other".into(),
                ..signed.clone()
            },
            SignedRequest {
                duration_secs: 61,
                ..signed.clone()
            },
            SignedRequest {
                resource: ResourceId::new("pg/other").unwrap(),
                ..signed.clone()
            },
            SignedRequest {
                request_id: RequestId::new("fedcba9876543210").unwrap(),
                ..signed.clone()
            },
        ];
        for c in &changes {
            assert_ne!(d, approval_digest("alice", c, Some(&set)), "{c:?}");
        }
        assert_ne!(d, approval_digest("mallory", &signed, Some(&set)));
        assert_ne!(d, approval_digest("alice", &signed, None));
        let mut wider = set.clone();
        wider.insert(Permission::new(
            Privilege::Delete,
            ObjectRef::table("public", "t"),
        ));
        assert_ne!(d, approval_digest("alice", &signed, Some(&wider)));
    }

    #[test]
    fn hmac_checks_body_path_and_time() {
        let s = hmac_sign(b"k", 100, "/v1/provision", b"{}");
        assert!(hmac_verify(b"k", 100, "/v1/provision", b"{}", &s, 120));
        assert!(!hmac_verify(b"k", 100, "/v1/provision", b"{ }", &s, 120));
        assert!(!hmac_verify(b"k", 100, "/v1/revoke", b"{}", &s, 120));
        assert!(!hmac_verify(b"other", 100, "/v1/provision", b"{}", &s, 120));
        assert!(!hmac_verify(b"k", 100, "/v1/provision", b"{}", &s, 1000));
    }
}

/// Makes requester-controlled text safe to show: control characters (terminal escapes,
/// carriage returns), bidirectional overrides and invisible separators are shown as `\u{..}`
/// instead of acting on the terminal or the page, so what is shown is what was asked (and
/// what an approval's digest covers). Newlines and tabs stay.
pub fn printable(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hidden = matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2028}'..='\u{2029}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        );
        if (c.is_control() && c != '\n' && c != '\t') || hidden {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// [`printable`] for text shown on one line (a row of a listing, an error): newlines and tabs
/// are shown escaped too, so nobody's text can add a row of its own.
pub fn printable_line(s: &str) -> String {
    printable(s).replace('\n', "\\n").replace('\t', "\\t")
}

#[cfg(test)]
mod printable_tests {
    use super::{printable, printable_line};

    #[test]
    fn a_line_stays_one_line() {
        assert_eq!(printable_line("a\nb\tc\u{1b}"), "a\\nb\\tc\\u{1b}");
    }

    #[test]
    fn what_could_hide_or_reorder_text_is_shown_escaped() {
        assert_eq!(printable("SELECT 1\n\tFROM t"), "SELECT 1\n\tFROM t");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(
            printable("x\u{200b}y\u{2066}z\u{feff}"),
            "x\\u{200b}y\\u{2066}z\\u{feff}"
        );
        assert_eq!(printable("a\rb"), "a\\u{d}b");
    }
}
