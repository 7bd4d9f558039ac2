//! The set of permissions one request needs, ordered, deduplicated and hashed stably.

use super::privilege::{ObjectRef, Permission, Privilege};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// An ordered, deduplicated set of permissions with a stable hash.
///
/// Column grants on one (object, privilege) merge; a whole-object grant absorbs column grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet {
    entries: BTreeMap<(ObjectRef, Privilege), Option<BTreeSet<String>>>,
}

impl PermissionSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one permission, merging with what is there.
    pub fn insert(&mut self, p: Permission) {
        let key = (p.object, p.privilege);
        match (self.entries.get_mut(&key), p.columns) {
            (Some(None), _) => {}
            (Some(slot @ Some(_)), None) => *slot = None,
            (Some(Some(have)), Some(cols)) => have.extend(cols),
            (None, cols) => {
                self.entries
                    .insert(key, cols.map(|c| c.into_iter().collect()));
            }
        }
    }

    /// Adds every permission of `other`.
    pub fn extend(&mut self, other: impl IntoIterator<Item = Permission>) {
        for p in other {
            self.insert(p);
        }
    }

    /// Whether `p` is covered by this set (same object and privilege, and its columns a subset).
    pub fn covers(&self, p: &Permission) -> bool {
        match self.entries.get(&(p.object.clone(), p.privilege)) {
            None => false,
            Some(None) => true,
            Some(Some(have)) => p
                .columns
                .as_ref()
                .is_some_and(|cols| cols.iter().all(|c| have.contains(c))),
        }
    }

    /// Whether every permission of this set is covered by `wider`.
    pub fn is_subset_of(&self, wider: &PermissionSet) -> bool {
        self.iter().all(|p| wider.covers(&p))
    }

    /// The permissions in a stable order: databases, schemas, then objects by name.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.entries
            .iter()
            .map(|((object, privilege), cols)| Permission {
                privilege: *privilege,
                object: object.clone(),
                columns: cols.as_ref().map(|c| c.iter().cloned().collect()),
            })
    }

    /// The number of (object, privilege) entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A stable SHA-256 over the canonical form, hex-encoded. Equal sets hash equally whatever
    /// order their permissions were added in.
    pub fn stable_hash(&self) -> String {
        let mut h = Sha256::new();
        for p in self.iter() {
            // serde_json of our own types cannot fail; fall back to Display to stay total.
            let line = serde_json::to_string(&p).unwrap_or_else(|_| p.to_string());
            h.update(line.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut s = Self::new();
        s.extend(iter);
        s
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Permission>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sel(t: &str, cols: Option<&[&str]>) -> Permission {
        Permission {
            privilege: Privilege::Select,
            object: ObjectRef::table("public", t),
            columns: cols.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn json_shape_matches_the_interface() {
        let set: PermissionSet = [sel("film", Some(&["title"]))].into_iter().collect();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(
            json,
            r#"[{"privilege":"SELECT","object":{"type":"table","schema":"public","name":"film"},"columns":["title"]}]"#
        );
        let back: PermissionSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn whole_object_absorbs_columns() {
        let mut s = PermissionSet::new();
        s.insert(sel("a", Some(&["x"])));
        s.insert(sel("a", Some(&["y"])));
        assert_eq!(
            s.iter().next().unwrap().columns,
            Some(vec!["x".into(), "y".into()])
        );
        s.insert(sel("a", None));
        s.insert(sel("a", Some(&["z"])));
        assert_eq!(s.iter().next().unwrap().columns, None);
    }

    proptest! {
        #[test]
        fn hash_ignores_insertion_order(tables in proptest::collection::vec("[a-c]{1,2}", 0..8), cols in proptest::collection::vec(proptest::option::of("[x-z]"), 0..8)) {
            let perms: Vec<Permission> = tables.iter().zip(cols.iter().chain(std::iter::repeat(&None)))
                .map(|(t, c)| sel(t, c.as_ref().map(|c| vec![c.as_str()]).as_deref())).collect();
            let a: PermissionSet = perms.iter().cloned().collect();
            let b: PermissionSet = perms.iter().rev().cloned().collect();
            prop_assert_eq!(a.stable_hash(), b.stable_hash());
            prop_assert!(a.is_subset_of(&b) && b.is_subset_of(&a));
            for p in &perms { prop_assert!(a.covers(p)); }
        }
    }
}
