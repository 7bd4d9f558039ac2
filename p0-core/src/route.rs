//! Routing: who must approve a request, if anyone.

use crate::types::{AccessRequest, PermissionSet};
use serde::{Deserialize, Serialize};
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
}
