//! Throwaway database servers for tests: PostgreSQL 15 and MariaDB, each in a temp dir on a
//! random loopback port, torn down on drop. When running as root, PostgreSQL runs as the
//! `postgres` user (initdb refuses root) and MariaDB as root with `--user=root`.
//!
//! Neither lets anyone in without a password, on any path: PostgreSQL authenticates every
//! local and TCP connection with SCRAM-SHA-256, MariaDB has only password accounts for root
//! (no anonymous, socket or passwordless accounts, set before it accepts a connection). The
//! admin password comes from the OS CSPRNG, reaches the testkit's own clients through their
//! environment or a 0600 defaults file (never a command line), and every file that holds a
//! secret is created mode 0600 inside the server's 0700 directory.

use anyhow::{bail, Context, Result};
use rand::Rng;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
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

/// A fresh admin password: 32 alphanumeric characters from the OS CSPRNG.
fn generate_password() -> String {
    rand::rngs::OsRng
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Creates `path` (which must not exist) with mode 0600 and writes `contents`: the file is
/// never readable by others, not even for a moment.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// A temporary directory that only its owner can enter (mode 0700 from its creation).
pub fn private_tempdir(prefix: &str) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    Ok(tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?)
}

/// The uid and gid of a system user, from `id`.
fn user_ids(user: &str) -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").arg(flag).arg(user).output()?;
        if !out.status.success() {
            bail!("no system user `{user}`");
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
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

/// A running throwaway PostgreSQL. The superuser `postgres` logs in with its password (SCRAM),
/// over TCP and the Unix socket alike, like every other user, so password checks are real.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The superuser's password (32 characters from the OS CSPRNG).
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
        // The directory (socket, log, data) is 0700: owned by `postgres` when running as root.
        let dir = private_tempdir("p0-pg.")?;
        let as_postgres = is_root();
        let owner = if as_postgres {
            let ids = user_ids("postgres")?;
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))?;
            Some(ids)
        } else {
            None
        };
        let password = generate_password();
        // initdb reads the superuser's password from this file; it is gone once initdb is done.
        let pwfile = dir.path().join("pwfile");
        write_secret_file(&pwfile, password.as_bytes())?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        let mut initdb = Self::cmd(as_postgres, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                // Every line of pg_hba.conf, local and host: a password, SCRAM only.
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        let initialised = run(&mut initdb);
        std::fs::remove_file(&pwfile)?;
        initialised?;
        let port = free_port()?;
        let mut settings = format!(
            "-c listen_addresses=127.0.0.1 -c password_encryption=scram-sha-256 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
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

    /// The directory of the server's Unix socket (local connections need the password too).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's own directory (0700): socket, log and data directory.
    pub fn dir(&self) -> &Path {
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

/// A running throwaway MariaDB (or MySQL). Root logs in with a password, over TCP and over
/// the socket alike; there is no other account.
#[derive(Debug)]
pub struct MariaDbServer {
    dir: tempfile::TempDir,
    child: Child,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The root password (32 characters from the OS CSPRNG).
    pub password: String,
}

/// MariaDB's `mysql_native_password` hash of `password`: `*` and SHA1(SHA1(password)) in hex.
fn native_password_hash(password: &str) -> String {
    use sha1::{Digest, Sha1};
    let inner = Sha1::digest(password.as_bytes());
    format!("*{}", hex::encode_upper(Sha1::digest(inner)))
}

impl MariaDbServer {
    /// Starts a server with the general query log on (so tests can search it for secrets).
    pub fn start() -> Result<Self> {
        let server = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
            .iter()
            .find(|p| Path::new(p).exists())
            .context("MariaDB server not found (apt-get install mariadb-server)")?;
        let dir = private_tempdir("p0-maria.")?;
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
        // mariadb-install-db leaves root@localhost, root@127.0.0.1, root@::1 and root@<host>
        // without a password. The init file runs before the server accepts any connection: it
        // keeps root@localhost and root@127.0.0.1 (and the locked mariadb.sys), each with the
        // password, and drops every other account. It holds the password's hash, not the
        // password, and is removed once the server is up.
        let password = generate_password();
        let hash = native_password_hash(&password);
        let init = dir.path().join("init.sql");
        write_secret_file(
            &init,
            format!(
                "DELETE FROM mysql.global_priv WHERE NOT (host = 'localhost' AND user IN ('root', 'mariadb.sys'));\n\
                 DELETE FROM mysql.proxies_priv WHERE NOT (host = 'localhost' AND user = 'root');\n\
                 FLUSH PRIVILEGES;\n\
                 ALTER USER root@localhost IDENTIFIED BY PASSWORD '{hash}';\n\
                 CREATE USER root@'127.0.0.1' IDENTIFIED BY PASSWORD '{hash}';\n\
                 GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;\n"
            )
            .as_bytes(),
        )?;
        let port = free_port()?;
        let socket = dir.path().join("sock");
        // The client's credentials, for the readiness check and `sql()`: a 0600 defaults file.
        let defaults = dir.path().join("client.cnf");
        write_secret_file(
            &defaults,
            format!("[client]\nuser=root\npassword={password}\nhost=127.0.0.1\nport={port}\n")
                .as_bytes(),
        )?;
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--init-file={}", init.display()))
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
        let mut me = Self {
            dir,
            child,
            port,
            password,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = me
                .client()
                .args(["-e", "SELECT 1"])
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
        std::fs::remove_file(&init)?;
        Ok(me)
    }

    /// The `mariadb` client as root over TCP, its password from the 0600 defaults file.
    fn client(&self) -> Command {
        let mut c = Command::new("mariadb");
        // --defaults-extra-file must come first.
        c.arg(format!(
            "--defaults-extra-file={}",
            self.dir.path().join("client.cnf").display()
        ));
        c
    }

    /// The server's own directory (0700): data, socket, logs and the client's defaults file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of the server's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
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
        let out = self.client().args(["-N", "-B", "-e"]).arg(sql).output()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_hash_matches_mariadb() {
        // SELECT PASSWORD('password') on MariaDB.
        assert_eq!(
            native_password_hash("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
