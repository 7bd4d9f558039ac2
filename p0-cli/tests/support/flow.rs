//! The end-to-end flow's people and engines: users logged in to the stack through the real `p0`
//! binary, the flavors of the flow per engine, waiting on the flow, and the captured logs.

use p0_core::Engine;
use p0_stack::Stack;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use p0_testkit::LogCapture as Logs;

use super::cli::text;

pub struct User {
    pub dir: tempfile::TempDir,
}

impl User {
    pub fn login(stack: &Stack, email: &str, groups: &[&str]) -> Self {
        let u = User {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut args = vec!["login", "--dev", email, "--server", &stack.server_url];
        for g in groups {
            args.extend(["--group", g]);
        }
        let out = u.p0(&args);
        assert!(
            out.status.success(),
            "login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        u
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_p0"));
        c.args(args)
            .env("P0_CONFIG_DIR", self.dir.path())
            .env("TMPDIR", self.dir.path())
            .env_remove("P0_SERVER");
        c
    }

    pub fn p0(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn pending_id(approver: &User) -> Option<String> {
    let out = approver.p0(&["ls", "--all", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["requests"]
        .as_array()?
        .iter()
        .find(|r| r["status"] == "pending_approval")
        .map(|r| r["id"].as_str().unwrap().to_string())
}

pub fn request_id(out: &Output) -> String {
    let s = text(out);
    s.split_whitespace()
        .skip_while(|w| *w != "request")
        .nth(1)
        .unwrap_or_else(|| panic!("no request id in: {s}"))
        .to_string()
}

/// What differs between engines in this flow: the client, its flags, and the SQL.
pub struct Flavor {
    pub engine: Engine,
    pub client: &'static str,
    pub sql_flag: &'static str,
    pub quiet: [&'static str; 2],
}

impl Flavor {
    /// The flow's SQL, written for PostgreSQL's sample schema, in this engine's terms.
    pub fn q(&self, sql: &str) -> String {
        match self.engine {
            Engine::MySql => sql.replace("sales.", "app.").replace("pg_sleep(", "SLEEP("),
            _ => sql.to_string(),
        }
    }
}

pub const POSTGRES: Flavor = Flavor {
    engine: Engine::Postgres,
    client: "psql",
    sql_flag: "-c",
    quiet: ["-X", "-At"],
};
pub const MYSQL: Flavor = Flavor {
    engine: Engine::MySql,
    client: "mysql",
    sql_flag: "-e",
    quiet: ["-N", "-B"],
};

pub static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();

pub fn logs() -> Logs {
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .init();
        logs
    })
    .clone()
}
