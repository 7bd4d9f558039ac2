//! Throwaway database servers for tests: PostgreSQL 15 and MariaDB, each in a temp dir on a
//! random loopback port, torn down on drop. When running as root, PostgreSQL runs as the
//! `postgres` user (initdb refuses root) and MariaDB as root with `--user=root`.

use anyhow::{bail, Context, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN_DIRS: &[&str] = &[
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
];

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Options for a throwaway PostgreSQL.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
}

/// A running throwaway PostgreSQL. The superuser `postgres` logs in with a password over TCP
/// (SCRAM), like every other user, so password checks are real.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The superuser's password.
    pub password: String,
    as_postgres: bool,
}

impl PgServer {
    /// Starts a server with default settings.
    pub fn start() -> Result<Self> {
        Self::start_with(PgOptions::default())
    }

    /// Starts a server.
    pub fn start_with(opts: PgOptions) -> Result<Self> {
        let bin = PG_BIN_DIRS.iter().map(PathBuf::from).find(|p| p.join("initdb").exists()).context(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql-15)",
        )?;
        let dir = tempfile::Builder::new().prefix("p0-pg.").tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chmod").arg("777").arg(dir.path()))?;
        }
        let password = format!(
            "pw{:x}",
            std::process::id() as u64 * 7919 + u64::from(free_port()?)
        );
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password)?;
        if as_postgres {
            run(Command::new("chmod").arg("644").arg(&pwfile))?;
        }
        let data = dir.path().join("data");
        let mut initdb = Self::cmd(as_postgres, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(&mut initdb)?;
        let port = free_port()?;
        let mut settings = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            dir.path().display()
        );
        for (k, v) in &opts.settings {
            settings.push_str(&format!(" -c {k}={v}"));
        }
        let mut ctl = Self::cmd(as_postgres, &bin.join("pg_ctl"));
        ctl.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &settings, "start"]);
        run(&mut ctl)?;
        Ok(Self {
            dir,
            bin,
            port,
            password,
            as_postgres,
        })
    }

    fn cmd(as_postgres: bool, program: &Path) -> Command {
        if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// A superuser URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// A URL for another user.
    pub fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The directory of the server's Unix socket (local connections are trusted).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs psql as the superuser on `database` with `args` (stops at the first error).
    fn run_psql(&self, database: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
        self.run_psql_as("postgres", &self.password, database, args)
    }

    /// Runs psql as `user` over TCP with `args` (stops at the first error).
    fn run_psql_as(
        &self,
        user: &str,
        password: &str,
        database: &str,
        args: &[&std::ffi::OsStr],
    ) -> Result<String> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                user,
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(database)
            .args(args)
            .env("PGPASSWORD", password)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a SQL file as another user (for checking what its grants allow).
    pub fn psql_file_as(
        &self,
        user: &str,
        password: &str,
        database: &str,
        file: impl AsRef<Path>,
    ) -> Result<()> {
        let args = ["-f".as_ref(), file.as_ref().as_os_str()];
        self.run_psql_as(user, password, database, &args)
            .map(|_| ())
    }

    /// Runs SQL as the superuser through `psql`; unaligned, tuples only.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        self.run_psql(
            database,
            &["-A".as_ref(), "-t".as_ref(), "-c".as_ref(), sql.as_ref()],
        )
    }

    /// Runs a SQL file as the superuser.
    pub fn psql_file(&self, database: &str, file: &Path) -> Result<()> {
        self.run_psql(database, &["-f".as_ref(), file.as_os_str()])
            .map(|_| ())
    }

    /// Creates a database with nothing granted to PUBLIC (a hardened database).
    pub fn create_hardened_db(&self, name: &str) -> Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        self.psql(
            name,
            &format!(
                "REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC; REVOKE ALL ON SCHEMA public FROM PUBLIC; \
                 ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;"
            ),
        )?;
        Ok(())
    }

    /// The server log so far.
    pub fn log(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.dir.path().join("log"))?)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut ctl = Self::cmd(self.as_postgres, &self.bin.join("pg_ctl"));
        ctl.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"]);
        let _ = ctl.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// A `Write` sink that keeps everything written to it, for capturing log output in tests
/// (e.g. `tracing_subscriber::fmt().with_writer(move || capture.clone())`).
#[derive(Debug, Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub fn contents(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A running throwaway MariaDB (or MySQL). Root logs in over TCP with a password.
#[derive(Debug)]
pub struct MariaDbServer {
    dir: tempfile::TempDir,
    child: Child,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The root password.
    pub password: String,
}

impl MariaDbServer {
    /// Starts a server with the general query log on (so tests can search it for secrets).
    pub fn start() -> Result<Self> {
        let server = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
            .iter()
            .find(|p| Path::new(p).exists())
            .context("MariaDB server not found (apt-get install mariadb-server)")?;
        let dir = tempfile::Builder::new().prefix("p0-maria.").tempdir()?;
        let data = dir.path().join("data");
        // A tmpdir of its own: concurrent bootstraps sharing /tmp collide on temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp)?;
        run(Command::new("mariadb-install-db")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .stdout(Stdio::null()))?;
        let port = free_port()?;
        let socket = dir.path().join("sock");
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--general-log-file={}",
                dir.path().join("general.log").display()
            ))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .args([
                "--bind-address=127.0.0.1",
                "--general-log=1",
                "--event-scheduler=ON",
                "--user=root",
            ])
            .args([
                "--innodb-flush-log-at-trx-commit=0",
                "--skip-name-resolve",
                "--max-connections=300",
            ])
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let password = format!(
            "pw{:x}",
            std::process::id() as u64 * 104729 + u64::from(port)
        );
        let mut me = Self {
            dir,
            child,
            port,
            password,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new("mariadb")
                .arg(format!("--socket={}", socket.display()))
                .args(["-uroot", "-e", "SELECT 1"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if Instant::now() > deadline || me.child.try_wait()?.is_some() {
                bail!(
                    "MariaDB did not start: {}",
                    std::fs::read_to_string(me.dir.path().join("error.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        run(Command::new("mariadb")
            .arg(format!("--socket={}", socket.display()))
            .args(["-uroot", "-e"])
            .arg(format!(
                "CREATE OR REPLACE USER root@'127.0.0.1' IDENTIFIED BY '{0}'; \
                 GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION; ALTER USER root@localhost IDENTIFIED BY '{0}';",
                me.password
            )))?;
        Ok(me)
    }

    /// A root URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mysql://root:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Runs SQL as root through the `mariadb` client.
    pub fn sql(&self, sql: &str) -> Result<String> {
        let out = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-uroot", "-N", "-B"])
            .arg(format!("-P{}", self.port))
            .env("MYSQL_PWD", &self.password)
            .arg("-e")
            .arg(sql)
            .output()?;
        if !out.status.success() {
            bail!("mariadb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The general query log so far.
    pub fn general_log(&self) -> Result<String> {
        Ok(std::fs::read_to_string(
            self.dir.path().join("general.log"),
        )?)
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
