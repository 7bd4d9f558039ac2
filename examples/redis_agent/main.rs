//! A custom `DatabaseProvisioner` for a database p0 does not ship — Redis ACL users — in a
//! custom agent. `cargo run -p p0-examples --example redis_agent` runs it against Debian's
//! `redis-server` (`drive.rs` plays the issuer, the p0 server and the CLI).
//!
//! A role gets the ACL rules the agent lists for it; a permission set gets, per table, keys
//! `<table>:*` with `+@read` (SELECT), `+@write` (INSERT/UPDATE), `+del` (DELETE). Passwords
//! go to Redis as SHA-256 (`#<hex>`). Redis users never expire, so the agent's sweeper is the
//! backstop; p0's bookkeeping is the hash `p0:managed` (user → expiry).

mod drive;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use p0_core::provision::{username_for, AccountKind, ManagedAccount, RevokeReport};
use p0_core::{Access, Credentials, DatabaseProvisioner, Password, Privilege, ProvisionPlan};
use p0_core::{GuardError, ProvisionError};
use p0_core::{ObjectKind, RoleName, Username};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;

const MANAGED: &str = "p0:managed";

/// Redis ACL users for p0.
#[derive(Debug)]
pub struct RedisProvisioner {
    redis: redis::aio::MultiplexedConnection,
    /// Roles this agent hands out, with their ACL rules (the role allowlist).
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

fn plain(name: &str) -> Result<&str, GuardError> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(name)
        .ok_or_else(|| GuardError::BadName(name.into()))
}

impl RedisProvisioner {
    pub async fn connect(url: &str, roles: Vec<(String, &'static str)>) -> anyhow::Result<Self> {
        let redis = redis::Client::open(url)?;
        let redis = redis.get_multiplexed_async_connection().await?;
        Ok(Self { redis, roles })
    }

    /// The guard: ACL rules for the plan, refusing anything this agent does not hand out.
    fn rules(&self, access: &Access) -> Result<Vec<String>, GuardError> {
        match access {
            Access::Role(role) => self
                .roles
                .iter()
                .find(|(r, _)| r == role.as_str())
                .map(|(_, rules)| rules.split(' ').map(String::from).collect())
                .ok_or_else(|| GuardError::RoleNotAllowed(role.to_string())),
            Access::Permissions(set) => {
                let mut rules = BTreeSet::new();
                for p in set.iter() {
                    let category = match (p.object.kind, p.privilege) {
                        (ObjectKind::Database, Privilege::Connect) => continue,
                        (ObjectKind::Schema, Privilege::Usage) => continue,
                        (ObjectKind::Table, Privilege::Select) => "+@read",
                        (ObjectKind::Table, Privilege::Insert | Privilege::Update) => "+@write",
                        (ObjectKind::Table, Privilege::Delete) => "+del",
                        _ => return Err(GuardError::NotAllowed(p.to_string())),
                    };
                    rules.insert(format!("~{}:*", plain(&p.object.name)?));
                    rules.insert(category.to_string());
                }
                if rules.is_empty() {
                    return Err(GuardError::Empty);
                }
                rules.insert("-@dangerous".into());
                Ok(rules.into_iter().collect())
            }
        }
    }
}

#[async_trait]
impl DatabaseProvisioner for RedisProvisioner {
    fn supports_valid_until(&self) -> bool {
        false
    }

    fn max_username_len(&self) -> usize {
        64
    }

    async fn provision(&self, plan: &ProvisionPlan) -> Result<Credentials, ProvisionError> {
        let rules = self.rules(&plan.access)?;
        let user = username_for(&plan.requester, &plan.request_id, self.max_username_len());
        let password = Password::generate();
        let hash = hex::encode(Sha256::digest(password.expose_secret().as_bytes()));
        // Bookkeeping first: a crash between the two leaves a record the sweeper cleans up,
        // never an unrecorded user.
        let until = plan.expires_at.timestamp().to_string();
        q::<()>(&self.redis, &["HSET", MANAGED, user.as_str(), &until]).await?;
        let hash = format!("#{hash}");
        let mut setuser = vec!["ACL", "SETUSER", user.as_str(), "reset", "on", &hash];
        setuser.extend(rules.iter().map(String::as_str));
        q::<()>(&self.redis, &setuser).await?;
        let role = match &plan.access {
            Access::Role(r) => r.clone(),
            Access::Permissions(_) => RoleName::new("acl")?,
        };
        tracing::info!(user = %user, rules = %rules.join(" "), "redis user created");
        Ok(Credentials {
            username: user,
            password,
            role,
            expires_at: plan.expires_at,
        })
    }

    async fn revoke(&self, user: &Username) -> Result<RevokeReport, ProvisionError> {
        let ours: bool = q(&self.redis, &["HEXISTS", MANAGED, user.as_str()]).await?;
        let exists: Option<redis::Value> =
            q(&self.redis, &["ACL", "GETUSER", user.as_str()]).await?;
        if !ours && exists.is_some() {
            return Err(ProvisionError::NotManaged(user.to_string()));
        }
        // ACL DELUSER also disconnects the user's open connections.
        let dropped: u64 = q(&self.redis, &["ACL", "DELUSER", user.as_str()]).await?;
        q::<()>(&self.redis, &["HDEL", MANAGED, user.as_str()]).await?;
        Ok(RevokeReport {
            user_dropped: dropped > 0,
            ..RevokeReport::default()
        })
    }

    async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
        let all: Vec<(String, i64)> = q(&self.redis, &["HGETALL", MANAGED]).await?;
        let account = |(name, exp): (String, i64)| ManagedAccount {
            name,
            kind: AccountKind::User,
            expires_at: Utc.timestamp_opt(exp, 0).single(),
            request_id: None,
        };
        Ok(all.into_iter().map(account).collect())
    }
}

/// The custom agent: p0's agent handler (every verification of the HTTP agent) with the Redis
/// provisioner, served on loopback, and its sweeper.
pub async fn serve_agent(
    config: &p0_agent::AgentConfig,
    provisioner: Arc<dyn DatabaseProvisioner>,
) -> anyhow::Result<std::net::SocketAddr> {
    let verifier = Arc::new(p0_core::JwksVerifier::new(
        &config.issuer,
        &config.audience,
    )?);
    let hmac = config.hmac_secret.clone();
    let state = p0_agent::AgentState::with_provisioner(config, verifier, provisioner, hmac)?;
    tokio::spawn(p0_agent::run_sweeper(
        state.provisioner(),
        std::time::Duration::from_secs(5),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, p0_agent::build_router(state)).await });
    Ok(addr)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    drive::run().await
}
