//! The throwaway servers of `p0 demo`, the tests and the benches let nobody in without the
//! admin password, on any path, and keep every secret in files only their owner can read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_testkit::{MariaDbServer, PgServer};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every regular file under `dir` whose bytes contain `secret`.
fn files_holding(dir: &Path, secret: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                    found.push(entry.path());
                }
            }
        }
    }
    found
}

fn refused(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what} got in: {err}");
    err
}

/// psql without any password: no PGPASSWORD, no password file.
fn psql_without_password(pg: &PgServer, host: &Path) -> Command {
    let mut c = Command::new("psql");
    c.args([
        "-X", "-w", "-U", "postgres", "-d", "postgres", "-c", "SELECT 1",
    ])
    .arg("-h")
    .arg(host)
    .arg("-p")
    .arg(pg.port.to_string())
    .env_remove("PGPASSWORD")
    .env("PGPASSFILE", "/dev/null")
    .stdin(std::process::Stdio::null());
    c
}

#[test]
fn postgres_refuses_the_superuser_without_its_password_on_every_path() {
    let pg = PgServer::start().unwrap();
    // TCP.
    let err = refused(
        &psql_without_password(&pg, Path::new("127.0.0.1"))
            .output()
            .unwrap(),
        "TCP without a password",
    );
    assert!(err.contains("password"), "{err}");
    // The Unix socket (trust before).
    let err = refused(
        &psql_without_password(&pg, pg.socket_dir())
            .output()
            .unwrap(),
        "the socket without a password",
    );
    assert!(err.contains("password"), "{err}");
    // A wrong password, on both paths.
    for host in [Path::new("127.0.0.1"), pg.socket_dir()] {
        let err = refused(
            &psql_without_password(&pg, host)
                .env("PGPASSWORD", "wrong")
                .output()
                .unwrap(),
            "a wrong password",
        );
        assert!(err.contains("password authentication failed"), "{err}");
    }
    // Not even the `postgres` system user (peer or trust would let it in).
    if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "psql", "-X", "-w", "-U", "postgres"])
            .args(["-d", "postgres", "-c", "SELECT 1", "-h"])
            .arg(pg.socket_dir())
            .arg("-p")
            .arg(pg.port.to_string())
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", "/dev/null");
        refused(&c.output().unwrap(), "the postgres system user");
    }
    // pg_hba.conf: SCRAM on every line.
    let hba = std::fs::read_to_string(pg.dir().join("data/pg_hba.conf")).unwrap();
    let lines: Vec<&str> = hba
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!lines.is_empty());
    for line in lines {
        assert!(line.ends_with("scram-sha-256"), "pg_hba.conf: {line}");
    }
    // With the password, it answers.
    assert_eq!(pg.psql("postgres", "SELECT 1").unwrap().trim(), "1");
}

#[test]
fn mariadb_refuses_root_without_its_password_on_every_path() {
    let db = MariaDbServer::start().unwrap();
    let socket = db.socket();
    let tcp = [
        "-h".to_string(),
        "127.0.0.1".into(),
        format!("-P{}", db.port),
    ];
    let sock = [format!("--socket={}", socket.display())];
    for (path, args) in [("TCP", &tcp[..]), ("the socket", &sock[..])] {
        for password in [None, Some("wrong")] {
            let mut c = Command::new("mariadb");
            c.arg("--no-defaults")
                .args(args)
                .args(["-uroot", "-e", "SELECT 1"])
                .env_remove("MYSQL_PWD");
            if let Some(p) = password {
                c.env("MYSQL_PWD", p);
            }
            let err = refused(&c.output().unwrap(), path);
            assert!(err.contains("Access denied"), "{path}: {err}");
        }
    }
    // Only root (localhost and 127.0.0.1) and the locked mariadb.sys, each with a password.
    let accounts = db
        .sql("SELECT user, host, plugin, authentication_string = '' FROM mysql.user ORDER BY user, host")
        .unwrap();
    assert_eq!(
        accounts,
        "mariadb.sys\tlocalhost\tmysql_native_password\t1\n\
         root\t127.0.0.1\tmysql_native_password\t0\n\
         root\tlocalhost\tmysql_native_password\t0\n",
    );
    let locked = db
        .sql("SELECT JSON_EXTRACT(Priv, '$.account_locked') FROM mysql.global_priv WHERE user = 'mariadb.sys'")
        .unwrap();
    assert_eq!(locked.trim(), "true");
}

#[test]
fn every_file_holding_a_password_is_0600() {
    let pg = PgServer::start().unwrap();
    let db = MariaDbServer::start().unwrap();
    for (dir, password) in [(pg.dir(), &pg.password), (db.dir(), &db.password)] {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        assert!(password.len() >= 32);
        for file in files_holding(dir, password) {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    // initdb's password file and MariaDB's init file are gone once the servers are up.
    assert!(!pg.dir().join("pwfile").exists());
    assert!(!db.dir().join("init.sql").exists());
    // The MariaDB client's defaults file holds the password, 0600.
    let defaults = db.dir().join("client.cnf");
    assert_eq!(
        files_holding(db.dir(), &db.password),
        vec![defaults.clone()]
    );
    assert_eq!(mode(&defaults), 0o600);
    // Every server has a password of its own.
    assert_ne!(pg.password, db.password);
    let other = PgServer::start().unwrap();
    assert_ne!(pg.password, other.password);
}

#[test]
fn a_secret_file_is_created_0600_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    p0_testkit::write_secret_file(&path, b"s3cret").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(std::fs::read(&path).unwrap(), b"s3cret");
    assert!(p0_testkit::write_secret_file(&path, b"other").is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"s3cret");
}
