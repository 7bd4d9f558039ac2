//! Starting and stopping the stack's agent and server, each on its own fixed port so that a
//! restart keeps the URLs that clients hold.

use crate::{Stack, DATABASE};
use anyhow::Context;
use p0_core::ResourceId;
use std::path::PathBuf;
use std::sync::Arc;

impl Stack {
    /// Starts (or restarts) the agent on its port.
    pub async fn start_agent(&mut self) -> anyhow::Result<()> {
        let config = p0_agent::AgentConfig {
            listen: self.agent_addr.to_string(),
            engine: self.engine,
            account_host: "%".into(),
            resource: ResourceId::new(self.resource.clone())?,
            database_url: Some(match &self.my {
                Some(m) => m.url(""),
                None => self.pg.url(DATABASE),
            }),
            hmac_secret: Some(self.hmac.clone()),
            issuer: self.issuer(),
            audience: self.audience(),
            guard: self.guard(),
            sweep_interval_secs: 0,
            connect: Default::default(),
            signing_key_file: Some(self.agent_key_file()),
            max_request_age_secs: 300,
            tls_cert: self.agent_tls.as_ref().map(|t| t.cert.clone()),
            tls_key: self.agent_tls.as_ref().map(|t| t.key.clone()),
            dangerous_plain_http: false,
            google_caller: None,
        };
        let verifier = Arc::new(p0_core::JwksVerifier::new(
            &config.issuer,
            &config.audience,
        )?);
        let state = p0_agent::AgentState::new(&config, verifier).await?;
        // The certificate is read (and a bad one refused) before the agent takes its port.
        if let p0_agent::Serving::Tls { cert, key } = config.serving()? {
            p0_agent::tls_server_config(&cert, &key)?;
        }
        let listener = bind_retry(self.agent_addr).await?;
        self.agent = Some(tokio::spawn(async move {
            if let Err(e) = p0_agent::serve(listener, &config, state).await {
                tracing::error!(error = %e, "the stack's agent stopped");
            }
        }));
        Ok(())
    }

    /// Stops the agent (its port refuses connections until restarted).
    pub fn stop_agent(&mut self) {
        if let Some(h) = self.agent.take() {
            h.abort();
        }
    }

    /// Starts (or restarts) the server on its port, with the same store.
    pub async fn start_server(&mut self) -> anyhow::Result<()> {
        let agent = match &self.external {
            Some(crate::External::Lambda(function, endpoint)) => {
                format!("agent_function = \"{function}\"\nagent_lambda_endpoint = \"{endpoint}\"\n")
            }
            Some(crate::External::Http(url, platform)) => format!(
                "agent_url = \"{url}\"\nagent_secret = \"{}\"\n{platform}\n",
                self.hmac
            ),
            None => format!(
                "agent_url = \"{}\"\nagent_secret = \"{}\"\n{}",
                self.agent_url,
                self.hmac,
                match &self.agent_tls {
                    Some(t) => format!("agent_ca = \"{}\"\n", t.ca.display()),
                    None => String::new(),
                }
            ),
        };
        let text = self.server_toml(
            &self.server_addr.to_string(),
            &self.store.display().to_string(),
            "-",
            &agent,
        );
        let text = format!("{text}\n{}", self.server_extra);
        let mut config = p0_server::ServerConfig::from_toml(&text)?;
        config.webhook_url = self.webhook.clone();
        let router: Arc<dyn p0_core::Router> = match &self.router {
            Some(r) => r.clone(),
            None => Arc::new(p0_core::RulesRouter::from_toml(&self.rules)?),
        };
        let store = p0_server::store::open(&self.store.display().to_string()).await?;
        let verifier = Arc::new(p0_core::JwksVerifier::new(
            &config.issuer,
            &config.audience,
        )?);
        let dev = match &self.dev {
            Some(d) => d.clone(),
            None => Arc::new(p0_core::DangerousDevIssuer::new(config.issuer.clone())?),
        };
        self.dev = Some(dev.clone());
        let state = p0_server::AppState::new(&config, store, router, verifier, Some(dev))?;
        let reaper = tokio::spawn(p0_server::run_reaper(
            state.clone(),
            std::time::Duration::from_secs(self.reaper_secs),
        ));
        let listener = bind_retry(self.server_addr).await?;
        let serve = tokio::spawn(async move {
            let _ = axum::serve(listener, p0_server::build_router(state)).await;
        });
        self.server = Some((serve, reaper));
        Ok(())
    }

    /// A server configuration: listening on `listen`, with `store`, the rules file `rules`
    /// (`-`: the stack's own, in process) and the agent section `agent`.
    pub(crate) fn server_toml(
        &self,
        listen: &str,
        store: &str,
        rules: &str,
        agent: &str,
    ) -> String {
        format!(
            "listen = \"{listen}\"\nstore = \"{store}\"\nissuer = \"{}\"\naudience = \"{}\"\nrules = \"{rules}\"\nreaper_interval_secs = {}\n\
             auditors = [\"user:alice@example.com\", \"group:dba\"]\nadmins = [\"group:admins\"]\n\
             [[resource]]\nname = \"{}\"\nengine = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"{DATABASE}\"\n{agent}",
            self.issuer(),
            self.audience(),
            self.reaper_secs,
            self.resource,
            self.engine,
            self.my.as_ref().map(|m| m.port).unwrap_or(self.pg.port),
        )
    }

    /// Routes with `router` instead of the rules (takes effect at the next `start_server`).
    pub fn set_router(&mut self, router: Arc<dyn p0_core::Router>) {
        self.router = Some(router);
    }

    /// Makes the server trust `ca` for the agent's certificate (takes effect at the next
    /// `start_server`; the stack must have been started with agent TLS).
    pub fn set_agent_ca(&mut self, ca: PathBuf) -> anyhow::Result<()> {
        match &mut self.agent_tls {
            Some(t) => {
                t.ca = ca;
                Ok(())
            }
            None => anyhow::bail!("the stack's agent is not on TLS"),
        }
    }

    /// Appends `toml` to the server's configuration (a `[slack]` section; takes effect at
    /// the next `start_server`).
    pub fn set_server_extra(&mut self, toml: &str) {
        self.server_extra = toml.to_string();
    }

    /// Sets the server's webhook (takes effect at the next `start_server`).
    pub fn set_webhook(&mut self, url: &str) {
        self.webhook = Some(url.into());
    }

    /// Stops the server and its reaper.
    pub fn stop_server(&mut self) {
        if let Some((a, b)) = self.server.take() {
            a.abort();
            b.abort();
        }
    }
}

async fn bind_retry(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    for _ in 0..50 {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            return Ok(l);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}
