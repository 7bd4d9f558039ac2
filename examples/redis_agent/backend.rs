//! The Redis [`Backend`]: ACL users. Everything around it — names, passwords, the generic
//! guard, the marker, tracing, refusing unmarked users, the sweeper — is p0's [`Managed`]
//! wrapper, as for PostgreSQL and MySQL.
//!
//! A role gets the ACL rules the agent lists for it; a permission set gets, per table of
//! `public`, the keys `<table>:*` (glob-escaped, so a table name stays a name; names with
//! whitespace, which ACL key patterns cannot hold, are refused) with `+@read`
//! (SELECT), `+@write` (INSERT/UPDATE), `+del` (DELETE), and only for tables that have a key.
//! Passwords go to Redis as SHA-256 (`#<hex>`). Redis users never expire, so the agent's
//! sweeper is the backstop; p0's marker for each user is kept in the hash `p0:managed`, and
//! each request's claim in a key of its own that expires with the claim (a table named `p0`,
//! whose keys would be p0's own, is refused). Run Redis with persistence (AOF) where a restart
//! must not forget the markers and claims.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p0_core::provision::{
    Backend, Claim, Lookup, Managed, ManagedAccount, Marker, NewUser, RevokeReport,
};
use p0_core::{Access, GuardError, GuardPolicy, ObjectKind, Privilege, ProvisionError, Username};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

const MANAGED: &str = "p0:managed";
/// Request claims are keys `p0:claim:<request>` that Redis expires by itself.
const CLAIM: &str = "p0:claim:";

/// Redis ACL users for p0, behind p0's wrapper.
pub type RedisProvisioner = Managed<RedisBackend>;

/// Redis ACL users, through the agent's admin connection.
#[derive(Debug)]
pub struct RedisBackend {
    redis: redis::aio::MultiplexedConnection,
    /// Roles this agent hands out, with their ACL rules (the policy's allowlist decides which
    /// may be asked for).
    roles: Vec<(String, &'static str)>,
}

/// Runs one command on the admin connection.
async fn q<T: redis::FromRedisValue>(
    con: &redis::aio::MultiplexedConnection,
    args: &[&str],
) -> Result<T, ProvisionError> {
    let mut con = con.clone();
    let cmd = redis::cmd(args[0]).arg(&args[1..]).clone();
    let r = cmd.query_async(&mut con).await;
    r.map_err(|e| ProvisionError::Database(e.to_string()))
}

/// A name as a literal part of a Redis glob pattern: `*`, `?`, `[`, `]` and `\` escaped.
pub fn glob_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisBackend {
    /// Connects with the agent's admin URL.
    pub async fn connect(url: &str, roles: Vec<(String, &'static str)>) -> anyhow::Result<Self> {
        let redis = redis::Client::open(url)?;
        let redis = redis.get_multiplexed_async_connection().await?;
        Ok(Self { redis, roles })
    }

    /// Whether any key matches `pattern`.
    async fn any_key(&self, pattern: &str) -> Result<bool, ProvisionError> {
        let mut cursor = "0".to_string();
        loop {
            let (next, keys): (String, Vec<String>) = q(
                &self.redis,
                &["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"],
            )
            .await?;
            if !keys.is_empty() {
                return Ok(true);
            }
            if next == "0" {
                return Ok(false);
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl Backend for RedisBackend {
    const MAX_USERNAME_LEN: usize = 64;
    /// Redis ACL users never expire: the sweeper is the backstop.
    const VALID_UNTIL: bool = false;
    /// The ACL rules for the plan.
    type Checked = Vec<String>;

    /// Maps the plan to ACL rules, refusing what this agent does not hand out: anything but
    /// tables of `public` that have a key, and roles it has no rules for.
    async fn inspect(
        &self,
        _: &GuardPolicy,
        user: &NewUser,
    ) -> Result<Vec<String>, ProvisionError> {
        match &user.access {
            Access::Role(role) => Ok(self
                .roles
                .iter()
                .find(|(r, _)| r == role.as_str())
                .map(|(_, rules)| rules.split(' ').map(String::from).collect())
                .ok_or_else(|| GuardError::RoleNotAllowed(role.to_string()))?),
            Access::Permissions(set) => {
                let mut rules = BTreeSet::new();
                for p in set.iter() {
                    let category = match (p.object.kind, p.privilege) {
                        (ObjectKind::Database, Privilege::Connect) => continue,
                        (ObjectKind::Schema, Privilege::Usage) => continue,
                        (ObjectKind::Table, Privilege::Select) => "+@read",
                        (ObjectKind::Table, Privilege::Insert | Privilege::Update) => "+@write",
                        (ObjectKind::Table, Privilege::Delete) => "+del",
                        _ => return Err(GuardError::NotAllowed(p.to_string()).into()),
                    };
                    if p.object.schema.as_deref() != Some("public") || p.columns.is_some() {
                        return Err(GuardError::NotAllowed(p.to_string()).into());
                    }
                    // p0's own keys (`p0:managed`, `p0:claim:…`) are never a table's rows.
                    if p.object.name == "p0" || p.object.name.starts_with("p0:") {
                        return Err(GuardError::NotAllowed(p.to_string()).into());
                    }
                    // ACL key patterns hold no whitespace: such a name cannot be granted.
                    if p.object
                        .name
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control())
                    {
                        return Err(GuardError::BadName(p.object.to_string()).into());
                    }
                    let keys = format!("{}:*", glob_escape(&p.object.name));
                    if !self.any_key(&keys).await? {
                        return Err(GuardError::Missing(p.object.to_string()).into());
                    }
                    rules.insert(format!("~{keys}"));
                    rules.insert(category.to_string());
                }
                if rules.is_empty() {
                    return Err(GuardError::Empty.into());
                }
                rules.insert("-@dangerous".into());
                Ok(rules.into_iter().collect())
            }
        }
    }

    async fn create_user(&self, user: &NewUser, rules: Vec<String>) -> Result<(), ProvisionError> {
        let name = user.username.as_str();
        let hash = hex::encode(Sha256::digest(user.password.expose_secret().as_bytes()));
        // The marker first: a crash between the two leaves a record the sweeper cleans up,
        // never an unrecorded user.
        q::<()>(&self.redis, &["HSET", MANAGED, name, &user.marker.render()]).await?;
        let hash = format!("#{hash}");
        let mut setuser = vec!["ACL", "SETUSER", name, "reset", "on", &hash];
        setuser.extend(rules.iter().map(String::as_str));
        if let Err(e) = q::<()>(&self.redis, &setuser).await {
            let _ = q::<()>(&self.redis, &["HDEL", MANAGED, name]).await;
            return Err(e);
        }
        tracing::debug!(rules = %rules.join(" "), "redis user created");
        Ok(())
    }

    async fn lookup(&self, name: &str) -> Result<Lookup, ProvisionError> {
        let marker: Option<String> = q(&self.redis, &["HGET", MANAGED, name]).await?;
        if let Some(m) = marker.as_deref().and_then(Marker::parse) {
            return Ok(Lookup::Managed(m));
        }
        let exists: Option<redis::Value> = q(&self.redis, &["ACL", "GETUSER", name]).await?;
        Ok(if exists.is_some() {
            Lookup::Unmarked
        } else {
            Lookup::Absent
        })
    }

    async fn delete_user(
        &self,
        user: &Username,
        _: &Marker,
    ) -> Result<RevokeReport, ProvisionError> {
        let name = user.as_str();
        // `ACL DELUSER` removes the user and ends its connections in one step, so a concurrent
        // revocation finds it gone rather than half-removed (`ACL SETUSER ... off` first
        // would create the user again if the other had just removed it).
        let clients: String = q(&self.redis, &["CLIENT", "LIST"]).await?;
        let field = format!("user={name}");
        let open = clients
            .lines()
            .filter(|l| l.split(' ').any(|f| f == field))
            .count() as u64;
        let dropped: u64 = q(&self.redis, &["ACL", "DELUSER", name]).await?;
        let report = RevokeReport {
            user_dropped: dropped > 0,
            sessions_terminated: if dropped > 0 { open } else { 0 },
            ..RevokeReport::default()
        };
        q::<()>(&self.redis, &["HDEL", MANAGED, name]).await?;
        Ok(report)
    }

    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
        let all: Vec<(String, String)> = q(&self.redis, &["HGETALL", MANAGED]).await?;
        Ok(all
            .into_iter()
            .filter_map(|(name, m)| Some(Marker::parse(&m)?.account(name)))
            .collect())
    }

    async fn claim(&self, claim: &Claim) -> Result<bool, ProvisionError> {
        // `SET ... NX` is atomic: one caller sets it, every other finds it.
        let key = format!("{CLAIM}{}", claim.request);
        let at = claim.until.timestamp().to_string();
        let set: Option<String> = q(
            &self.redis,
            &["SET", &key, &claim.render(), "NX", "EXAT", &at],
        )
        .await?;
        Ok(set.is_some())
    }

    async fn release(&self, request: &str) -> Result<(), ProvisionError> {
        q::<()>(&self.redis, &["DEL", &format!("{CLAIM}{request}")]).await
    }

    /// Redis expires each claim's key at its `until` by itself.
    async fn forget_claims(&self, _: DateTime<Utc>) -> Result<u64, ProvisionError> {
        Ok(0)
    }
}
