//! The escalation guard: what an agent refuses whatever the server says.
//!
//! This is the static half, on typed values. Each provisioner adds the live half inside its own
//! `provision()`, so no caller can skip either: the object exists; a pre-existing role is on
//! the allowlist and, through every role it reaches, has no attribute, no predefined `pg_*`
//! role, no ADMIN or GRANT OPTION and owns nothing (MySQL/MariaDB: no global or administrative
//! privilege, GRANT OPTION, ADMIN OPTION or PROXY); no granted function is SECURITY DEFINER,
//! and no schema granted USAGE holds one that PUBLIC may execute unless
//! [`GuardPolicy::allow_definer_functions`] names it.

use crate::error::GuardError;
use crate::types::{ObjectKind, PermissionSet, Privilege, RoleName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What one agent is allowed to hand out, from the agent's own configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardPolicy {
    /// The databases this agent manages; every permission must stay inside them.
    pub databases: Vec<String>,
    /// If set, the only schemas permissions may touch; otherwise any non-system schema.
    #[serde(default)]
    pub schemas: Option<Vec<String>>,
    /// Pre-existing roles that may be handed out by name (`p0 psql --role`).
    #[serde(default)]
    pub role_allowlist: Vec<RoleName>,
    /// The agent's own database user: never granted to anyone, never touched.
    pub service_user: String,
    /// Whether CREATE on databases and schemas may be granted (off by default: it lets the
    /// grantee create objects that outlive the grant).
    #[serde(default)]
    pub allow_create: bool,
    /// SECURITY DEFINER functions that PUBLIC may execute and that a plan may still reach
    /// through USAGE on their schema, as `schema.name(argument types)` (e.g.
    /// `"public.current_tenant()"`). Any other such function makes the agent refuse the plan:
    /// by default PostgreSQL lets PUBLIC execute every function, so USAGE on a schema is
    /// enough to run its definer functions with their owner's rights.
    #[serde(default)]
    pub allow_definer_functions: Vec<String>,
}

impl GuardPolicy {
    /// A policy for one database, any non-system schema, no role allowlist.
    pub fn for_database(database: impl Into<String>, service_user: impl Into<String>) -> Self {
        Self {
            databases: vec![database.into()],
            schemas: None,
            role_allowlist: Vec::new(),
            service_user: service_user.into(),
            allow_create: false,
            allow_definer_functions: Vec::new(),
        }
    }

    /// Checks a permission set against the policy.
    pub fn check_permissions(&self, set: &PermissionSet) -> Result<(), GuardError> {
        if set.is_empty() {
            return Err(GuardError::Empty);
        }
        for p in set.iter() {
            let obj = &p.object;
            if !p.privilege.applies_to(obj.kind) {
                return Err(GuardError::Mismatch(
                    p.privilege.to_string(),
                    obj.to_string(),
                ));
            }
            if p.columns.is_some()
                && !(obj.kind == ObjectKind::Table && p.privilege.allows_columns())
            {
                return Err(GuardError::Mismatch(
                    format!("{} on columns", p.privilege),
                    obj.to_string(),
                ));
            }
            if p.columns.as_ref().is_some_and(|c| c.is_empty()) {
                return Err(GuardError::Mismatch(
                    format!("{} on no columns", p.privilege),
                    obj.to_string(),
                ));
            }
            if p.privilege == Privilege::Create && !self.allow_create {
                return Err(GuardError::NotAllowed(format!("CREATE on {obj}")));
            }
            if obj.is_routine() && obj.signature.is_none() {
                return Err(GuardError::BadName(format!("{obj} without a signature")));
            }
            let schema = match obj.kind {
                ObjectKind::Database => {
                    self.check_database(&obj.name)?;
                    continue;
                }
                ObjectKind::Schema => &obj.name,
                _ => obj
                    .schema
                    .as_deref()
                    .ok_or_else(|| GuardError::BadName(format!("{obj} without a schema")))?,
            };
            self.check_schema(schema)?;
            if obj.name == self.service_user {
                return Err(GuardError::ServiceUser(obj.name.clone()));
            }
        }
        Ok(())
    }

    /// Checks that `database` is one this agent manages.
    pub fn check_database(&self, database: &str) -> Result<(), GuardError> {
        if is_system_database(database) {
            return Err(GuardError::SystemSchema(database.into()));
        }
        if !self.databases.iter().any(|d| d == database) {
            return Err(GuardError::ForeignDatabase(database.into()));
        }
        Ok(())
    }

    /// Checks that `schema` is neither a system schema nor outside the configured ones.
    pub fn check_schema(&self, schema: &str) -> Result<(), GuardError> {
        if is_system_schema(schema) {
            return Err(GuardError::SystemSchema(schema.into()));
        }
        match &self.schemas {
            Some(allowed) if !allowed.iter().any(|s| s == schema) => {
                Err(GuardError::ForeignSchema(schema.into()))
            }
            _ => Ok(()),
        }
    }

    /// Checks a request for membership of an existing role.
    pub fn check_role(&self, role: &RoleName) -> Result<(), GuardError> {
        if role.as_str() == self.service_user {
            return Err(GuardError::ServiceUser(role.to_string()));
        }
        if !self.role_allowlist.contains(role) {
            return Err(GuardError::RoleNotAllowed(role.to_string()));
        }
        Ok(())
    }
}

impl GuardPolicy {
    /// Refuses an expiry in the past or further out than [`GuardPolicy::MAX_LIFETIME`].
    pub fn check_expiry(
        &self,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), GuardError> {
        if expires_at <= now {
            return Err(GuardError::Expiry(format!("`{expires_at}` is in the past")));
        }
        if expires_at - now > Self::MAX_LIFETIME {
            return Err(GuardError::Expiry(format!(
                "`{expires_at}` is more than 24 hours away"
            )));
        }
        Ok(())
    }

    /// The longest grant any agent hands out.
    pub const MAX_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(24);
}

/// PostgreSQL's and MySQL's system schemas (and PostgreSQL's reserved `pg_` prefix).
pub fn is_system_schema(schema: &str) -> bool {
    let s = schema.to_ascii_lowercase();
    s.starts_with("pg_")
        || matches!(
            s.as_str(),
            "information_schema" | "mysql" | "performance_schema" | "sys"
        )
}

fn is_system_database(db: &str) -> bool {
    matches!(
        db.to_ascii_lowercase().as_str(),
        "template0" | "template1" | "mysql" | "information_schema" | "performance_schema" | "sys"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ObjectRef, Permission};

    fn policy() -> GuardPolicy {
        GuardPolicy::for_database("app", "p0_agent")
    }

    fn one(p: Privilege, o: ObjectRef) -> PermissionSet {
        [Permission::new(p, o)].into_iter().collect()
    }

    #[test]
    fn refuses_what_it_must() {
        let g = policy();
        let cases = [
            one(
                Privilege::Select,
                ObjectRef::table("pg_catalog", "pg_authid"),
            ),
            one(
                Privilege::Select,
                ObjectRef::table("information_schema", "tables"),
            ),
            one(Privilege::Connect, ObjectRef::database("other")),
            one(Privilege::Connect, ObjectRef::database("template1")),
            one(Privilege::Create, ObjectRef::schema("public")),
            one(Privilege::Execute, ObjectRef::table("public", "t")),
            one(
                Privilege::Execute,
                ObjectRef {
                    signature: None,
                    ..ObjectRef::procedure("public", "p", "")
                },
            ),
            one(Privilege::Select, ObjectRef::procedure("public", "p", "")),
            one(
                Privilege::Execute,
                ObjectRef::procedure("pg_catalog", "p", ""),
            ),
            PermissionSet::new(),
        ];
        for c in cases {
            assert!(g.check_permissions(&c).is_err(), "{c:?}");
        }
        assert!(g.check_role(&RoleName::new("p0_agent").unwrap()).is_err());
        assert!(g.check_role(&RoleName::new("analyst").unwrap()).is_err());
    }

    #[test]
    fn allows_ordinary_reads() {
        let mut s = one(Privilege::Select, ObjectRef::table("public", "film"));
        s.insert(Permission::new(
            Privilege::Connect,
            ObjectRef::database("app"),
        ));
        s.insert(Permission::new(
            Privilege::Usage,
            ObjectRef::schema("public"),
        ));
        s.insert(Permission::new(
            Privilege::Execute,
            ObjectRef::procedure("public", "add_log", "text"),
        ));
        policy().check_permissions(&s).unwrap();
        let mut limited = policy();
        limited.schemas = Some(vec!["sales".into()]);
        assert!(matches!(
            limited.check_permissions(&s),
            Err(GuardError::ForeignSchema(_))
        ));
    }
}
