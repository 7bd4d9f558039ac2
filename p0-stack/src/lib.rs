//! A whole p0 deployment in one process on loopback: a throwaway PostgreSQL with a sample
//! schema, the agent, the server with a SQLite store, and the development issuer. `p0 demo`
//! runs it (the CLI's `demo` feature), and the end-to-end, hostile and bench suites start one
//! per test.

pub mod clouds;
mod inspect;
mod procs;
mod run;
pub mod slack;

use p0_core::GuardPolicy;
use p0_testkit::PgServer;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub use p0_testkit::{private_tempdir, MariaDbServer};

/// The resource name the stack serves (PostgreSQL).
pub const RESOURCE: &str = "pg/demo";
/// The resource name of a MySQL stack.
pub const MYSQL_RESOURCE: &str = "mysql/demo";
/// The database name.
pub const DATABASE: &str = "app";

/// The demo's rules: reads are automatic, anything else needs someone in `dba`.
pub const DEMO_RULES: &str = r#"
[[rule]]
name = "reads are automatic"
privileges = ["SELECT", "USAGE", "CONNECT"]
action = "approve"
max_duration = "1h"

[[rule]]
name = "anything else needs a DBA"
action = "approval"
approvers = ["group:dba"]
max_duration = "1h"
"#;

const SAMPLE: &str = "
CREATE SCHEMA sales;
CREATE TABLE sales.customers (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE sales.orders (id serial PRIMARY KEY, customer_id int REFERENCES sales.customers, total numeric(10,2), placed_at timestamptz DEFAULT now());
CREATE TABLE sales.payroll (employee text, salary numeric);
INSERT INTO sales.customers (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com'), ('Linus', 'linus@example.com');
INSERT INTO sales.orders (customer_id, total) VALUES (1, 120.00), (2, 75.50), (3, 310.25), (1, 42.00);
INSERT INTO sales.payroll VALUES ('ada', 100000);
";

const MYSQL_SAMPLE: &str = "
CREATE DATABASE app;
CREATE TABLE app.customers (id int AUTO_INCREMENT PRIMARY KEY, name varchar(50) NOT NULL, email varchar(100));
CREATE TABLE app.orders (id int AUTO_INCREMENT PRIMARY KEY, customer_id int, total decimal(10,2));
CREATE TABLE app.payroll (employee varchar(50), salary decimal(12,2));
INSERT INTO app.customers (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com'), ('Linus', 'linus@example.com');
INSERT INTO app.orders (customer_id, total) VALUES (1, 120.00), (2, 75.50), (3, 310.25), (1, 42.00);
INSERT INTO app.payroll VALUES ('ada', 100000);
";

/// HTTPS between the stack's server and agent: the agent's certificate chain and key (PEM
/// files), and the CA file the server trusts for it (`agent_ca`).
#[derive(Debug, Clone)]
pub struct AgentTls {
    /// The agent's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The agent's private key.
    pub key: PathBuf,
    /// The CA certificate(s) the server verifies the agent against.
    pub ca: PathBuf,
}

/// A running stack.
pub struct Stack {
    /// The PostgreSQL server (always started; the resource when the engine is PostgreSQL).
    pub pg: PgServer,
    /// The MariaDB server of a MySQL stack.
    pub my: Option<p0_testkit::MariaDbServer>,
    /// The engine of the served resource.
    pub engine: p0_core::Engine,
    /// The served resource's name.
    pub resource: String,
    /// The server's base URL.
    pub server_url: String,
    /// The agent's base URL.
    pub agent_url: String,
    server_addr: std::net::SocketAddr,
    agent_addr: std::net::SocketAddr,
    hmac: String,
    store: PathBuf,
    rules: String,
    reaper_secs: u64,
    server: Option<(JoinHandle<()>, JoinHandle<()>)>,
    agent: Option<JoinHandle<()>>,
    /// A webhook URL for the server (Slack-compatible messages).
    webhook: Option<String>,
    /// More of the server's configuration, appended to it (a `[slack]` section).
    server_extra: String,
    /// A router of the caller's own instead of the rules.
    router: Option<Arc<dyn p0_core::Router>>,
    /// An external OIDC issuer and audience instead of the development issuer.
    external_issuer: Option<(String, String)>,
    /// An agent run outside the stack, instead of the in-process HTTP agent.
    external: Option<External>,
    /// One issuer for the stack's life, so tokens survive a server restart.
    dev: Option<Arc<p0_core::DangerousDevIssuer>>,
    /// HTTPS between server and agent (plain HTTP on loopback without it).
    agent_tls: Option<AgentTls>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

/// An agent the stack does not run: a Lambda function, or an HTTP agent behind a platform.
#[derive(Debug, Clone)]
enum External {
    /// The function and the Invoke API's endpoint.
    Lambda(String, String),
    /// The agent's URL, and what the resource's configuration says of its platform.
    Http(String, String),
}

const AGENT_KEY_FILE: &str = "agent-signing-key.pem";

/// A free loopback address for the server or the agent, whose port lies below Linux's
/// ephemeral range (32768 and up): a test that stops the server and starts it again on the
/// same port must not find that port taken meanwhile as the source port of an outgoing
/// connection (seen once: `binding 127.0.0.1:35557`, address already in use).
async fn free_addr() -> anyhow::Result<std::net::SocketAddr> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
    for _ in 0..200 {
        let n = seed.wrapping_add(
            NEXT.fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(2_654_435_761),
        );
        let port = 20_000 + (n % 12_000) as u16;
        if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return Ok(l.local_addr()?);
        }
    }
    Ok(tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?)
}

impl Stack {
    /// Starts everything for PostgreSQL. `rules` is a rules file's text.
    pub async fn start(rules: &str, reaper_secs: u64) -> anyhow::Result<Self> {
        Self::start_engine(p0_core::Engine::Postgres, rules, reaper_secs).await
    }

    /// Starts everything for PostgreSQL, trusting an external OIDC issuer for `audience`.
    pub async fn start_with_issuer(
        rules: &str,
        reaper_secs: u64,
        issuer: &str,
        audience: &str,
    ) -> anyhow::Result<Self> {
        Self::start_inner(
            p0_core::Engine::Postgres,
            rules,
            reaper_secs,
            Some((issuer.into(), audience.into())),
            None,
            None,
        )
        .await
    }

    /// Starts PostgreSQL and the server, whose agent is the Lambda function `function` behind
    /// the Invoke API at `endpoint` (run it with [`Stack::agent_config_toml`]).
    pub async fn start_with_lambda_agent(
        rules: &str,
        reaper_secs: u64,
        function: &str,
        endpoint: &str,
    ) -> anyhow::Result<Self> {
        let lambda = External::Lambda(function.to_string(), endpoint.to_string());
        Self::start_inner(
            p0_core::Engine::Postgres,
            rules,
            reaper_secs,
            None,
            Some(lambda),
            None,
        )
        .await
    }

    /// Starts the database of `engine` and the server, whose agent runs outside the stack
    /// behind a platform (a [`clouds`] stand-in): reached at `agent_url` with the stack's
    /// HMAC, and `platform` added to the resource's configuration (`agent_function_key = …`).
    /// Run the agent with [`Stack::agent_process_config`].
    pub async fn start_with_external_agent(
        engine: p0_core::Engine,
        rules: &str,
        reaper_secs: u64,
        agent_url: &str,
        platform: &str,
    ) -> anyhow::Result<Self> {
        let http = External::Http(agent_url.to_string(), platform.to_string());
        Self::start_inner(engine, rules, reaper_secs, None, Some(http), None).await
    }

    /// Starts everything for `engine`.
    pub async fn start_engine(
        engine: p0_core::Engine,
        rules: &str,
        reaper_secs: u64,
    ) -> anyhow::Result<Self> {
        Self::start_inner(engine, rules, reaper_secs, None, None, None).await
    }

    /// Starts everything for `engine`, the agent serving HTTPS with `tls.cert` and `tls.key`
    /// at `https://127.0.0.1:PORT`, and the server trusting `tls.ca` only for it.
    pub async fn start_with_agent_tls(
        engine: p0_core::Engine,
        rules: &str,
        reaper_secs: u64,
        tls: AgentTls,
    ) -> anyhow::Result<Self> {
        Self::start_inner(engine, rules, reaper_secs, None, None, Some(tls)).await
    }

    async fn start_inner(
        engine: p0_core::Engine,
        rules: &str,
        reaper_secs: u64,
        external_issuer: Option<(String, String)>,
        external: Option<External>,
        agent_tls: Option<AgentTls>,
    ) -> anyhow::Result<Self> {
        let mysql = engine == p0_core::Engine::MySql;
        let pg = tokio::task::spawn_blocking(|| -> anyhow::Result<PgServer> {
            let pg = PgServer::start()?;
            pg.create_hardened_db(DATABASE)?;
            pg.psql(DATABASE, SAMPLE)?;
            Ok(pg)
        })
        .await??;
        let my = if mysql {
            Some(
                tokio::task::spawn_blocking(|| -> anyhow::Result<p0_testkit::MariaDbServer> {
                    let db = p0_testkit::MariaDbServer::start()?;
                    db.sql(MYSQL_SAMPLE)?;
                    Ok(db)
                })
                .await??,
            )
        } else {
            None
        };
        let dir = p0_testkit::private_tempdir("p0-stack.")?;
        // One agent key for the stack's life, kept across agent restarts (CLIs pin it).
        let key = p0_core::grant::AgentSigningKey::generate().to_pkcs8_pem()?;
        p0_testkit::write_secret_file(&dir.path().join(AGENT_KEY_FILE), key.expose_secret())?;
        let (server_addr, agent_addr) = (free_addr().await?, free_addr().await?);
        let mut s = Self {
            pg,
            my,
            engine,
            resource: if mysql { MYSQL_RESOURCE } else { RESOURCE }.to_string(),
            server_url: format!("http://{server_addr}"),
            agent_url: match (&external, &agent_tls) {
                (Some(External::Http(url, _)), _) => url.clone(),
                (_, Some(_)) => format!("https://{agent_addr}"),
                _ => format!("http://{agent_addr}"),
            },
            server_addr,
            agent_addr,
            hmac: p0_core::RequestId::generate().to_string(),
            store: dir.path().join("p0.sqlite"),
            rules: rules.to_string(),
            reaper_secs,
            server: None,
            agent: None,
            dev: None,
            external_issuer,
            external,
            webhook: None,
            server_extra: String::new(),
            router: None,
            agent_tls,
            _dir: dir,
        };
        if s.external.is_none() {
            s.start_agent().await?;
        }
        s.start_server().await?;
        Ok(s)
    }

    fn issuer(&self) -> String {
        match &self.external_issuer {
            Some((i, _)) => i.clone(),
            None => format!("{}/dev", self.server_url),
        }
    }

    fn audience(&self) -> String {
        self.external_issuer
            .as_ref()
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| "p0".into())
    }

    /// The agent's signing key (PKCS#8 PEM, 0600), the same across agent restarts.
    pub fn agent_key_file(&self) -> PathBuf {
        self._dir.path().join(AGENT_KEY_FILE)
    }

    /// The guard policy the stack's agent runs with.
    fn guard(&self) -> GuardPolicy {
        let service_user = if self.my.is_some() {
            "root"
        } else {
            "postgres"
        };
        GuardPolicy::for_database(DATABASE, service_user)
    }

    /// The configuration of an agent run outside the stack (a Lambda function): resource,
    /// engine, issuer and guard; no admin URL and no HMAC secret.
    pub fn agent_config_toml(&self) -> anyhow::Result<String> {
        #[derive(serde::Serialize)]
        struct External {
            engine: p0_core::Engine,
            resource: String,
            issuer: String,
            audience: String,
            sweep_interval_secs: u64,
            signing_key_file: PathBuf,
            connect: p0_agent::ConnectConfig,
            guard: GuardPolicy,
        }
        Ok(toml::to_string(&External {
            engine: self.engine,
            resource: self.resource.clone(),
            issuer: self.issuer(),
            audience: self.audience(),
            sweep_interval_secs: 0,
            signing_key_file: self.agent_key_file(),
            connect: p0_agent::ConnectConfig {
                host: Some("127.0.0.1".into()),
                port: Some(self.my.as_ref().map(|m| m.port).unwrap_or(self.pg.port)),
                database: None,
                ca_file: None,
            },
            guard: self.guard(),
        })?)
    }

    /// The development issuer (after the server started once).
    pub fn dev_issuer(&self) -> Option<Arc<p0_core::DangerousDevIssuer>> {
        self.dev.clone()
    }

    /// The server↔agent HMAC secret (tests play a compromised server with it).
    pub fn hmac_secret(&self) -> &str {
        &self.hmac
    }

    /// The store's file.
    pub fn store_path(&self) -> &std::path::Path {
        &self.store
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_server();
        self.stop_agent();
    }
}
