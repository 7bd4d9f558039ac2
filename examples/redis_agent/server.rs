//! Debian's `redis-server` on loopback, in a directory of its own, stopped on drop.

/// The server, and its directory (removed after it stops).
#[derive(Debug)]
pub struct RedisServer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The `default` user's password.
    pub password: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    /// Starts a server whose `default` user needs `password`.
    pub async fn start(password: &str) -> anyhow::Result<Self> {
        // A port picked free may be taken by another server before this one binds it: then
        // this one exits, and a new port is tried.
        for _ in 0..5 {
            if let Some(redis) = Self::start_once(password).await? {
                return Ok(redis);
            }
        }
        anyhow::bail!("redis-server did not start")
    }

    /// One try on a free port: the server once it answers PING as `default`, or `None` if it
    /// exited (its port was taken) or did not answer in 5 s.
    async fn start_once(password: &str) -> anyhow::Result<Option<Self>> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--requirepass", password])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("cannot start redis-server (apt install redis-server): {e}")
            })?;
        let mut redis = Self {
            child,
            _dir: dir,
            port,
            password: password.into(),
        };
        for _ in 0..100 {
            if redis.child.try_wait()?.is_some() {
                return Ok(None);
            }
            let answered = redis::Client::open(redis.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if answered.is_ok() {
                return Ok(Some(redis));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(None)
    }

    /// The admin URL (the `default` user).
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}", self.password, self.port)
    }

    /// A URL for another user.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("redis://{user}:{password}@127.0.0.1:{}", self.port)
    }
}
