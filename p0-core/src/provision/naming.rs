//! How p0 names the users and roles it creates.

use crate::types::{PermissionSet, RequestId, ResourceId, RoleName, Username};
use sha2::{Digest, Sha256};

/// `p0_<requester slug>_<10 hex of the request id's hash>`, at most `max_len` bytes.
///
/// The slug keeps only `a-z0-9` of the requester's local part, so any requester string gives a
/// valid name and the suffix keeps names of distinct requests apart.
pub fn username_for(requester: &str, request_id: &RequestId, max_len: usize) -> Username {
    let local = requester.split('@').next().unwrap_or_default();
    let mut slug: String = local
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let suffix = &hex::encode(Sha256::digest(request_id.as_str().as_bytes()))[..10];
    let room = max_len
        .saturating_sub("p0_".len() + 1 + suffix.len())
        .max(1);
    slug.truncate(room);
    let slug = slug.trim_matches('_');
    let slug = if slug.is_empty() { "user" } else { slug };
    // Only a-z0-9_ after the p0_ prefix: valid by construction.
    Username::trusted(format!("p0_{slug}_{suffix}"))
}

/// `p0r_<16 hex of SHA-256(resource, permission set)>`: one role per (resource, set), shared
/// by every concurrent user with the same grants so table ACLs do not grow per user.
pub fn role_name_for(resource: &ResourceId, set: &PermissionSet) -> RoleName {
    let mut h = Sha256::new();
    h.update(resource.as_str().as_bytes());
    h.update(b"\n");
    h.update(set.stable_hash().as_bytes());
    RoleName::trusted(format!("p0r_{}", &hex::encode(h.finalize())[..16]))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_stay_distinct() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        let long = "Very.Long-Name+tag_with'quotes\"and;semicolons@example.com";
        let ua = username_for(long, &a, 32);
        assert!(ua.as_str().len() <= 32, "{ua}");
        assert_ne!(ua, username_for(long, &b, 32));
        assert_eq!(
            username_for("x@y", &a, 63).as_str().len(),
            "p0_x_".len() + 10
        );
        assert!(username_for("'\"; --", &a, 63)
            .as_str()
            .starts_with("p0_user_"));
    }
}
