//! Routing: who must approve a request, if anyone.

use crate::error::RouteError;
use crate::types::{AccessRequest, PermissionSet, ResourceId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Someone who may approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approver {
    /// One user, by email or subject.
    User(String),
    /// Anyone in a group claim.
    Group(String),
}

impl Approver {
    /// Parses `user:NAME` or `group:NAME`, the form of rules files and server configs.
    pub fn parse(s: &str) -> Result<Self, RouteError> {
        match s.split_once(':') {
            Some(("user", u)) if !u.is_empty() => Ok(Approver::User(u.into())),
            Some(("group", g)) if !g.is_empty() => Ok(Approver::Group(g.into())),
            _ => Err(RouteError::Rules(format!(
                "`{s}` must be `user:NAME` or `group:NAME`"
            ))),
        }
    }

    /// Whether `principal`, a member of `groups`, is this approver.
    pub fn includes(&self, principal: &str, groups: &[String]) -> bool {
        match self {
            Approver::User(u) => u == principal,
            Approver::Group(g) => groups.iter().any(|x| x == g),
        }
    }
}

impl fmt::Display for Approver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Approver::User(u) => write!(f, "user:{u}"),
            Approver::Group(g) => write!(f, "group:{g}"),
        }
    }
}

/// The outcome of routing. Exhaustive on purpose: every caller must handle `Deny`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// Grant now, for at most `max_duration`.
    Approve {
        /// The longest grant allowed.
        max_duration: Duration,
    },
    /// Wait for `count` approvals from `approvers`.
    NeedsApproval {
        /// Who may approve.
        approvers: Vec<Approver>,
        /// How many distinct approvals are needed.
        count: u32,
        /// The longest grant allowed.
        max_duration: Duration,
        /// Whether the requester may approve their own request.
        allow_self_approval: bool,
    },
    /// Refuse.
    Deny {
        /// Why, for the requester.
        reason: String,
    },
}

/// A decision and the rule that made it, for approvers and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The decision.
    pub decision: Decision,
    /// The name of the rule that matched, when the router has named rules.
    pub rule: Option<String>,
}

/// Decides what happens to a request. Infallible by signature: an implementation that cannot
/// decide returns [`Decision::Deny`] (fail closed).
pub trait Router: Send + Sync {
    /// Routes one request whose permissions have been extracted.
    fn route(
        &self,
        request: &AccessRequest,
        permissions: &PermissionSet,
        groups: &[String],
    ) -> Decision;

    /// Routes one request and names the rule that decided, when there is one.
    fn route_explained(
        &self,
        request: &AccessRequest,
        permissions: &PermissionSet,
        groups: &[String],
    ) -> Routed {
        Routed {
            decision: self.route(request, permissions, groups),
            rule: None,
        }
    }

    /// Everyone who may approve some request on `resource`: they see that resource's requests
    /// and may end its leases. None by default (then only a request's own approvers do).
    fn approvers_of(&self, resource: &ResourceId) -> Vec<Approver> {
        let _ = resource;
        Vec::new()
    }
}
