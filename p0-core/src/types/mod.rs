//! The domain types shared by every part of p0, one file per subject.

mod engine;
mod names;
mod permission_set;
mod privilege;
mod request;

pub use engine::Engine;
pub use names::{RequestId, ResourceId, RoleName, Username};
pub use permission_set::PermissionSet;
pub use privilege::{ObjectKind, ObjectRef, Permission, Privilege};
pub use request::{AccessRequest, Intent};
