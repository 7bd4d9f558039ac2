//! The request lifecycle, without HTTP: where a request may go from where it is, who may approve
//! it and what an approval binds to, what a lease comes to at pickup, at revocation and at
//! expiry, and who sees what. Routes and the reaper call these and store the result; every
//! refusal is a [`Refusal`], answered once in `error`.
//!
//! - created → `provisioning` (automatic), `pending_approval` or `denied` (by a rule): [`initial`];
//! - `pending_approval` → `provisioning` (enough approvals) or `denied` (by an approver, or
//!   withdrawn by the requester);
//! - `provisioning` → `active`, `failed`, or back to `pending_approval` when its approvals no
//!   longer hold for what it is;
//! - `active` → `revoked` (ended early) or `expired` (by the reaper).
//!
//! `denied`, `failed`, `revoked` and `expired` are final.

mod approval;
mod lease;
mod status;
mod visibility;

pub use approval::{approve, deny, may_approve, Approved};
pub use lease::{
    covers, expired, failed, may_end, pickup, provisioned, revoke_failed, revoked, Pickup,
};
pub use status::{check_duration, initial, Actor, Refusal};
pub use visibility::{auditor, oversees, sees, view, Overseers};
