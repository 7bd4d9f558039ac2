//! Running the real `p0-agent` binary as a platform would: its path, a process that is ended
//! with the test, and waiting for it to answer.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// `p0-agent` from this build's target directory (`cargo build --workspace` builds it).
pub fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/p0-agent
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("p0-agent");
    assert!(
        bin.exists(),
        "{} is missing: cargo build -p p0-agent first",
        bin.display()
    );
    bin
}

/// A process killed when dropped, unless it already ended.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Self {
        Self(cmd.spawn().unwrap())
    }

    /// Sends SIGTERM and returns its exit code, within `secs`.
    pub fn terminate(&mut self, secs: u64) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.0.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

/// Waits until `url` answers 200 (the agent's health), with the log on failure.
pub async fn wait_healthy(url: &str, log: impl Fn() -> String) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(url).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < end, "{url} never answered:\n{}", log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// POSTs `body` to `url` with `headers`; status and JSON answer.
pub async fn post(url: &str, headers: &[(&str, String)], body: &str) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The Functions app `app_dir` as deployed, with `stack`'s agent configuration next to its
/// files, and its handler (the real `p0-agent`) started as the Functions host starts one:
/// the arguments from `host.json`, in the app's directory, on `handler_port`.
pub struct Handler {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
}

impl Handler {
    pub fn start(
        stack: &p0_stack::Stack,
        app_dir: &std::path::Path,
        app: &p0_stack::clouds::FunctionsApp,
        handler_port: u16,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(app_dir, dir.path());
        let config = stack
            .agent_process_config("agent", "127.0.0.1:1".parse().unwrap(), 0)
            .unwrap();
        std::fs::copy(&config, dir.path().join("agent.toml")).unwrap();
        let proc = Proc::spawn(
            Command::new(agent_binary())
                .args(&app.arguments)
                .current_dir(dir.path())
                .env("FUNCTIONS_CUSTOMHANDLER_PORT", handler_port.to_string())
                .env_remove("P0_AGENT_CONFIG")
                .env_remove("K_SERVICE")
                .stdin(std::process::Stdio::null())
                .stdout(std::fs::File::create(dir.path().join("handler.log")).unwrap())
                .stderr(std::fs::File::create(dir.path().join("handler.err")).unwrap()),
        );
        Self { proc, dir }
    }

    /// What the handler wrote.
    pub fn logs(&self) -> String {
        ["handler.log", "handler.err"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
