//! The domain types shared by every part of p0.

use crate::error::TypeError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// A database engine p0 knows how to extract for and provision on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    #[serde(rename = "mysql")]
    MySql,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "postgres",
            Engine::MySql => "mysql",
        })
    }
}

impl FromStr for Engine {
    type Err = TypeError;
    fn from_str(s: &str) -> Result<Self, TypeError> {
        match s.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Ok(Engine::Postgres),
            "mysql" | "mariadb" => Ok(Engine::MySql),
            _ => Err(TypeError::Invalid {
                what: "engine",
                value: s.into(),
                why: "expected `postgres` or `mysql`",
            }),
        }
    }
}

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses a value, refusing anything that is not a valid name.
            pub fn new(value: impl Into<String>) -> Result<Self, TypeError> {
                let value = value.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(why) => Err(TypeError::Invalid { what: $what, value, why }),
                }
            }

            /// A value built by p0 itself from characters that are always valid.
            #[allow(dead_code)]
            pub(crate) fn trusted(value: String) -> Self {
                debug_assert!(Self::new(value.clone()).is_ok(), "{value}");
                Self(value)
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TypeError;
            fn try_from(value: String) -> Result<Self, TypeError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = TypeError;
            fn from_str(s: &str) -> Result<Self, TypeError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn check_slug(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > max {
        return Err("length out of range");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err("only a-z, 0-9 and _ are allowed");
    }
    if !s.as_bytes()[0].is_ascii_lowercase() {
        return Err("must start with a letter");
    }
    Ok(())
}

checked_name!(
    /// A database user created by p0: `p0_<requester slug>_<short id>`, lowercase ASCII,
    /// at most 63 bytes (PostgreSQL's limit; MySQL's limit of 32 is applied by its provisioner).
    Username,
    "user name",
    |s| {
        check_slug(s, 63)?;
        if !s.starts_with("p0_") {
            return Err("managed users start with `p0_`");
        }
        Ok(())
    }
);

checked_name!(
    /// A database role: either an ephemeral role made by p0 or a pre-existing role asked for by name.
    RoleName,
    "role name",
    |s| {
        if s.is_empty() || s.len() > 63 {
            return Err("length must be 1 to 63 bytes");
        }
        if s.chars().any(|c| c.is_control()) {
            return Err("control characters are not allowed");
        }
        Ok(())
    }
);

checked_name!(
    /// The identifier of one access request: 8 to 64 characters of `A-Za-z0-9-_`.
    RequestId,
    "request id",
    |s| {
        if s.len() < 8 || s.len() > 64 {
            return Err("length must be 8 to 64 characters");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("only A-Z, a-z, 0-9, - and _ are allowed");
        }
        Ok(())
    }
);

checked_name!(
    /// A named database target, e.g. `pg/prod`.
    ResourceId,
    "resource",
    |s| {
        if s.is_empty() || s.len() > 128 {
            return Err("length must be 1 to 128 characters");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b)) {
            return Err("only A-Z, a-z, 0-9 and -_./: are allowed");
        }
        Ok(())
    }
);

impl RequestId {
    /// A fresh random request id (128 bits, hex).
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self(hex::encode(b))
    }
}

/// What kind of database object a permission applies to.
///
/// `Table` covers views, materialized views, partitioned and foreign tables: they share one
/// privilege namespace in both PostgreSQL and MySQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ObjectKind {
    /// A database (PostgreSQL: the database; MySQL: a schema, which MySQL calls a database).
    Database,
    /// A schema (PostgreSQL only).
    Schema,
    /// A table, view, materialized view, partitioned or foreign table.
    Table,
    /// A sequence.
    Sequence,
    /// A function or procedure.
    Function,
}

/// A reference to one database object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// What kind of object it is.
    #[serde(rename = "type")]
    pub kind: ObjectKind,
    /// The schema (PostgreSQL) or database (MySQL) holding it; absent for databases and schemas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The object's name, unquoted.
    pub name: String,
    /// For functions: the argument types, e.g. `integer, integer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl ObjectRef {
    /// A database.
    pub fn database(name: impl Into<String>) -> Self {
        Self {
            kind: ObjectKind::Database,
            schema: None,
            name: name.into(),
            signature: None,
        }
    }
    /// A schema.
    pub fn schema(name: impl Into<String>) -> Self {
        Self {
            kind: ObjectKind::Schema,
            schema: None,
            name: name.into(),
            signature: None,
        }
    }
    /// A table (or view) in a schema.
    pub fn table(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: ObjectKind::Table,
            schema: Some(schema.into()),
            name: name.into(),
            signature: None,
        }
    }
    /// A sequence in a schema.
    pub fn sequence(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: ObjectKind::Sequence,
            schema: Some(schema.into()),
            name: name.into(),
            signature: None,
        }
    }
    /// A function in a schema with its argument types.
    pub fn function(
        schema: impl Into<String>,
        name: impl Into<String>,
        signature: impl Into<String>,
    ) -> Self {
        Self {
            kind: ObjectKind::Function,
            schema: Some(schema.into()),
            name: name.into(),
            signature: Some(signature.into()),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = format!("{:?}", self.kind).to_lowercase();
        match &self.schema {
            Some(s) => write!(f, "{kind} {s}.{}", self.name)?,
            None => write!(f, "{kind} {}", self.name)?,
        }
        if let Some(sig) = &self.signature {
            write!(f, "({sig})")?;
        }
        Ok(())
    }
}

/// A privilege that p0 may grant. Role attributes and administrative privileges are not
/// privileges here: they cannot be expressed, and parsing them fails with a clear reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
#[allow(missing_docs)]
pub enum Privilege {
    Connect,
    Temporary,
    Usage,
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
    References,
    Trigger,
    Execute,
    Create,
}

impl Privilege {
    /// The SQL keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Connect => "CONNECT",
            Privilege::Temporary => "TEMPORARY",
            Privilege::Usage => "USAGE",
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Truncate => "TRUNCATE",
            Privilege::References => "REFERENCES",
            Privilege::Trigger => "TRIGGER",
            Privilege::Execute => "EXECUTE",
            Privilege::Create => "CREATE",
        }
    }

    /// Whether this privilege can apply to an object of `kind` (PostgreSQL's rules; MySQL's
    /// provisioner narrows them further).
    pub fn applies_to(self, kind: ObjectKind) -> bool {
        use ObjectKind::*;
        use Privilege::*;
        match kind {
            Database => matches!(self, Connect | Temporary | Create),
            Schema => matches!(self, Usage | Create),
            Table => matches!(
                self,
                Select | Insert | Update | Delete | Truncate | References | Trigger
            ),
            Sequence => matches!(self, Usage | Select | Update),
            Function => matches!(self, Execute),
        }
    }

    /// Whether this privilege may be restricted to columns.
    pub fn allows_columns(self) -> bool {
        matches!(
            self,
            Privilege::Select | Privilege::Insert | Privilege::Update | Privilege::References
        )
    }
}

/// Role attributes and administrative privileges, refused by name so the error says why.
const NEVER_GRANTED: &[&str] = &[
    "SUPERUSER",
    "CREATEROLE",
    "CREATEDB",
    "REPLICATION",
    "BYPASSRLS",
    "LOGIN",
    "INHERIT",
    "SUPER",
    "FILE",
    "PROCESS",
    "SHUTDOWN",
    "RELOAD",
    "GRANT OPTION",
    "CREATE USER",
    "REPLICATION SLAVE",
    "REPLICATION CLIENT",
    "ALL",
    "ALL PRIVILEGES",
    "PROXY",
    "SET USER",
    "CONNECTION ADMIN",
    "READ_ONLY ADMIN",
    "BINLOG ADMIN",
    "SYSTEM_VARIABLES_ADMIN",
];

impl FromStr for Privilege {
    type Err = TypeError;
    fn from_str(s: &str) -> Result<Self, TypeError> {
        let up = s.trim().to_ascii_uppercase();
        Ok(match up.as_str() {
            "CONNECT" => Privilege::Connect,
            "TEMPORARY" | "TEMP" => Privilege::Temporary,
            "USAGE" => Privilege::Usage,
            "SELECT" => Privilege::Select,
            "INSERT" => Privilege::Insert,
            "UPDATE" => Privilege::Update,
            "DELETE" => Privilege::Delete,
            "TRUNCATE" => Privilege::Truncate,
            "REFERENCES" => Privilege::References,
            "TRIGGER" => Privilege::Trigger,
            "EXECUTE" => Privilege::Execute,
            "CREATE" => Privilege::Create,
            other if NEVER_GRANTED.contains(&other) => {
                return Err(TypeError::Invalid {
                    what: "privilege",
                    value: s.into(),
                    why: "role attributes and administrative privileges are never granted",
                })
            }
            _ => {
                return Err(TypeError::Invalid {
                    what: "privilege",
                    value: s.into(),
                    why: "unknown privilege",
                })
            }
        })
    }
}

impl TryFrom<String> for Privilege {
    type Error = TypeError;
    fn try_from(value: String) -> Result<Self, TypeError> {
        value.parse()
    }
}

impl From<Privilege> for &'static str {
    fn from(p: Privilege) -> &'static str {
        p.as_str()
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One privilege on one object, optionally restricted to some columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// The privilege.
    pub privilege: Privilege,
    /// The object it applies to.
    pub object: ObjectRef,
    /// The columns it is restricted to; `None` means the whole object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

impl Permission {
    /// A privilege on a whole object.
    pub fn new(privilege: Privilege, object: ObjectRef) -> Self {
        Self {
            privilege,
            object,
            columns: None,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.privilege)?;
        if let Some(cols) = &self.columns {
            write!(f, " ({})", cols.join(", "))?;
        }
        write!(f, " on {}", self.object)
    }
}

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

/// The life of a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeaseState {
    /// Credentials exist and work until `expires_at`.
    Active,
    /// Revocation started and has not finished yet.
    Revoking,
    /// The user and, when unshared, the role are gone.
    Revoked,
}

/// Credentials that exist in a database for one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    /// The request it serves.
    pub request_id: RequestId,
    /// Where.
    pub resource: ResourceId,
    /// The ephemeral user.
    pub username: Username,
    /// The role that holds the grants.
    pub role: RoleName,
    /// When it ends.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Where it is in its life.
    pub state: LeaseState,
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
    fn role_attributes_cannot_be_parsed_as_privileges() {
        for a in [
            "SUPERUSER",
            "createrole",
            "BYPASSRLS",
            "SUPER",
            "FILE",
            "GRANT OPTION",
            "ALL",
        ] {
            let e = a.parse::<Privilege>().unwrap_err().to_string();
            assert!(e.contains("never granted"), "{a}: {e}");
        }
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

    #[test]
    fn names_are_checked() {
        assert!(Username::new("p0_alice_1234abcd").is_ok());
        assert!(Username::new("alice").is_err());
        assert!(Username::new("p0_a\"; drop").is_err());
        assert!(RequestId::new("short").is_err());
        assert!(RoleName::new("x\0y").is_err());
        assert!(ResourceId::new("pg/prod").is_ok());
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
