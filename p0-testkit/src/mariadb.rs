//! A throwaway MariaDB.

use crate::files::{private_tempdir, write_secret_file};
use crate::process::{free_port, generate_password, run};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
}
