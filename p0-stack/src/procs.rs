//! Configurations for server replicas and an agent run as processes of their own (the chaos
//! run kills and restarts them): the stack's resource, issuer, rules and guard, with the
//! caller's ports and store. Each file is written 0600 (it holds the server↔agent secret).

use crate::{Stack, DATABASE};
use std::net::SocketAddr;
use std::path::PathBuf;

impl Stack {
    /// Writes `<name>.toml`, the configuration of a `p0-server` process listening on `listen`,
    /// with `store` and the agent at `agent_url`, and returns its path.
    pub fn server_process_config(
        &self,
        name: &str,
        listen: SocketAddr,
        store: &str,
        agent_url: &str,
    ) -> anyhow::Result<PathBuf> {
        let rules = self._dir.path().join("rules.toml");
        std::fs::write(&rules, &self.rules)?;
        let agent = format!(
            "agent_url = \"{agent_url}\"\nagent_secret = \"{}\"\n",
            self.hmac
        );
        let text = self.server_toml(
            &listen.to_string(),
            store,
            &rules.display().to_string(),
            &agent,
        );
        self.write_config(name, &text)
    }

    /// Writes `<name>.toml`, the configuration of a `p0-agent` process listening on `listen`
    /// and sweeping every `sweep_secs`, and returns its path.
    pub fn agent_process_config(
        &self,
        name: &str,
        listen: SocketAddr,
        sweep_secs: u64,
    ) -> anyhow::Result<PathBuf> {
        let mut t: toml::Table = toml::from_str(&self.agent_config_toml()?)?;
        let url = match &self.my {
            Some(m) => m.url(""),
            None => self.pg.url(DATABASE),
        };
        t.insert("listen".into(), listen.to_string().into());
        t.insert("database_url".into(), url.into());
        t.insert("hmac_secret".into(), self.hmac.clone().into());
        t.insert("sweep_interval_secs".into(), (sweep_secs as i64).into());
        self.write_config(name, &toml::to_string(&t)?)
    }

    fn write_config(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let path = self._dir.path().join(format!("{name}.toml"));
        p0_testkit::write_secret_file(&path, text.as_bytes())?;
        Ok(path)
    }
}
