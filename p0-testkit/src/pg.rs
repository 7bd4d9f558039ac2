//! A throwaway PostgreSQL.

use crate::files::{private_tempdir, write_secret_file};
use crate::process::{free_port, generate_password, is_root, run, user_ids};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PG_BIN_DIRS: &[&str] = &[
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
];

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
