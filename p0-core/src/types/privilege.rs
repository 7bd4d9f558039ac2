//! Objects, privileges and one permission: a privilege on an object, maybe on some columns.

use crate::error::TypeError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

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
    /// A function (aggregates and window functions included).
    Function,
    /// A procedure: what `CALL` runs, granted `EXECUTE ON PROCEDURE`.
    Procedure,
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

impl ObjectRef {
    /// A procedure in a schema with its argument types.
    pub fn procedure(
        schema: impl Into<String>,
        name: impl Into<String>,
        signature: impl Into<String>,
    ) -> Self {
        Self {
            kind: ObjectKind::Procedure,
            ..Self::function(schema, name, signature)
        }
    }

    /// Whether it is a routine (a function or a procedure): EXECUTE, and a signature.
    pub fn is_routine(&self) -> bool {
        matches!(self.kind, ObjectKind::Function | ObjectKind::Procedure)
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
            Function | Procedure => matches!(self, Execute),
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn procedures_are_their_own_kind_in_json() {
        let p = Permission::new(
            Privilege::Execute,
            ObjectRef::procedure("app", "add_log", "text"),
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["object"]["type"], "procedure");
        let back: Permission = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        assert!(Privilege::Execute.applies_to(ObjectKind::Procedure));
        assert!(!Privilege::Select.applies_to(ObjectKind::Procedure));
        assert_eq!(p.object.to_string(), "procedure app.add_log(text)");
    }
}
