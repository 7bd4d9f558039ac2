//! Using a grant: open the sealed grant, check that it answers this request and comes from the
//! agent pinned for the resource, and hand the client the sealed target only, rendered so that
//! no value can add an option.
//!
//! Every field of the server's answer is hostile input here. The only things taken from a
//! grant are those the agent sealed; the agent key is pinned on first use per server and
//! resource (`known_agents.json`, as SSH's `known_hosts`).

use crate::session::Session;
use anyhow::{bail, Context};
use p0_core::api::GrantView;
use p0_core::grant::{ConnectTarget, TlsExpectation};
use p0_core::{Engine, Password, RequestId, ResourceId, SecretBytes};
use std::collections::BTreeMap;
use std::io::Write;

/// The file of pinned agent keys, in the session directory.
pub const KNOWN_AGENTS: &str = "known_agents.json";

/// A grant ready to use.
#[derive(Debug)]
pub struct Opened {
    /// Where to connect; nowhere else.
    pub target: ConnectTarget,
    /// The password.
    pub password: Password,
}

/// Opens `grant` for the request `request_id` on `resource`: refuses it unless it is sealed to
/// this CLI's key by the agent pinned for (`server`, `resource`), for this request and
/// resource, and not expired. Pins the agent's key on first use.
pub fn open_grant(
    session: &Session,
    server: &str,
    keys: &[SecretBytes],
    request_id: &RequestId,
    resource: &ResourceId,
    grant: &GrantView,
) -> anyhow::Result<Opened> {
    // The grant is sealed to the key of the login it was asked under: the current one, or
    // one a later login replaced.
    let mut opened = None;
    let mut last = None;
    for key in keys {
        match p0_core::grant::open(key, &grant.sealed_password) {
            Ok(o) => {
                opened = Some(o);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let opened = match (opened, last) {
        (Some(o), _) => o,
        (None, Some(e)) => return Err(e).context("refusing the grant"),
        (None, None) => bail!("not logged in: run `p0 login`"),
    };
    opened
        .check_for(request_id, resource, chrono::Utc::now())
        .context("refusing the grant")?;
    if opened.target.username != grant.username {
        bail!("refusing the grant: the server names another user than the sealed one");
    }
    let entry = format!("{server} {resource}");
    // Fail closed: only a missing file means "nothing pinned yet".
    let mut known: BTreeMap<String, String> = match session.load_json(KNOWN_AGENTS) {
        Ok(k) => k,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
        {
            BTreeMap::new()
        }
        Err(e) => {
            bail!("refusing the grant: cannot read the pinned agent keys ({KNOWN_AGENTS}): {e}")
        }
    };
    let presented = opened.agent_key.encode();
    match known.get(&entry) {
        Some(pinned) if *pinned == presented => {}
        Some(pinned) => {
            let pinned = p0_core::grant::AgentKey::decode(pinned)
                .map(|k| k.fingerprint())
                .unwrap_or_else(|_| "unreadable".into());
            bail!(
                "refusing the grant: it is signed by agent key {}, not the key {pinned} pinned for `{resource}`; if your administrators replaced the agent's key, remove the `{entry}` entry of {KNOWN_AGENTS}",
                opened.agent_key.fingerprint()
            );
        }
        None => {
            crate::note!(
                "p0: pinning the agent key {} for `{resource}` (first use)",
                opened.agent_key.fingerprint()
            );
            known.insert(entry, presented);
            session.save_json(KNOWN_AGENTS, &known)?;
        }
    }
    Ok(Opened {
        target: opened.target,
        password: opened.password,
    })
}

/// A value for a MySQL option file: double-quoted with every special character escaped. The
/// option-file reader takes `\\`, `\"` and `\n`-style escapes inside quotes; control characters
/// are refused outright, so no value can end its line.
fn option_value(value: &str) -> anyhow::Result<String> {
    if value.chars().any(|c| c.is_control()) {
        bail!("refusing a value with a control character for the client's option file");
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// The sealed CA in a 0600 file for the client, removed on drop; none without one.
pub type CaFile = Option<tempfile::NamedTempFile>;

/// A file readable by its owner only, removed on drop.
fn private_file(
    prefix: &str,
    suffix: &str,
    content: &str,
) -> anyhow::Result<tempfile::NamedTempFile> {
    // tempfile creates files 0600.
    let mut f = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(suffix)
        .tempfile()?;
    f.write_all(content.as_bytes())?;
    f.flush()?;
    Ok(f)
}

/// The MySQL/MariaDB client's `[client]` options for `target`, in a 0600 file removed on drop:
/// credentials, local file loading off, and TLS as sealed: verified against the sealed CA, or
/// off (the CLI's relay then refuses any cleartext-password plugin).
pub fn mysql_defaults(
    host: &str,
    port: u16,
    target: &ConnectTarget,
    password: &Password,
) -> anyhow::Result<(tempfile::NamedTempFile, CaFile)> {
    let mut text = format!(
        "[client]\nuser={}\npassword={}\nhost={}\nport={port}\nlocal-infile=0\n",
        option_value(target.username.as_str())?,
        option_value(password.expose_secret())?,
        option_value(host)?,
    );
    let ca = match &target.tls {
        TlsExpectation::VerifyFull { ca_pem } => {
            text.push_str("ssl\nssl-verify-server-cert\n");
            match ca_pem {
                Some(pem) => {
                    let f = private_file("p0-ca.", ".pem", pem)?;
                    text.push_str(&format!(
                        "ssl-ca={}\n",
                        option_value(&f.path().display().to_string())?
                    ));
                    Some(f)
                }
                None => None,
            }
        }
        TlsExpectation::Off => {
            text.push_str("skip-ssl\n");
            None
        }
    };
    Ok((private_file("p0-mysql.", ".cnf", &text)?, ca))
}

/// The MySQL client's command-line options for `target` at `host:port`: they beat every option
/// file the client reads after ours (`~/.my.cnf`, `~/.mylogin.cnf`), so nothing local can send
/// it elsewhere, turn TLS checks off or file loading on.
/// The sealed database is selected when `select_database` (not when the grant has nothing in
/// it: a user with no privilege in the selected database is refused at connect).
pub fn mysql_args(
    host: &str,
    port: u16,
    target: &ConnectTarget,
    ca: &CaFile,
    select_database: bool,
) -> Vec<String> {
    let mut args = vec![
        format!("--host={host}"),
        format!("--port={port}"),
        "--protocol=TCP".to_string(),
        format!("--user={}", target.username),
        "--local-infile=0".to_string(),
    ];
    if select_database {
        args.push(format!("--database={}", target.database));
    }
    match (&target.tls, ca) {
        (TlsExpectation::VerifyFull { .. }, Some(f)) => {
            args.push("--ssl-verify-server-cert".into());
            args.push(format!("--ssl-ca={}", f.path().display()));
        }
        (TlsExpectation::VerifyFull { .. }, None) => args.push("--ssl-verify-server-cert".into()),
        (TlsExpectation::Off, _) => args.push("--skip-ssl".into()),
    }
    args
}

/// Environment variables that would change where or how a client started by p0 connects, or
/// let it answer a cleartext-password request: removed from its environment.
pub const CLIENT_ENV_REMOVE: &[&str] = &[
    "PGHOSTADDR",
    "PGSERVICE",
    "PGSERVICEFILE",
    "MYSQL_HOST",
    "MYSQL_TCP_PORT",
    "MYSQL_UNIX_PORT",
    "MYSQL_PWD",
    "MYSQL_TEST_LOGIN_FILE",
    "LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN",
];

/// libpq's environment for `target` at `host:port` (the target itself, or the CLI's relay on
/// loopback): credentials, and either verified TLS or no TLS with SCRAM required (libpq 16+
/// refuses other methods itself; the relay refuses them for older ones).
pub fn pg_env(
    host: &str,
    port: u16,
    target: &ConnectTarget,
    password: &Password,
) -> anyhow::Result<(Vec<(String, String)>, CaFile)> {
    let mut env = vec![
        ("PGHOST".to_string(), host.to_string()),
        ("PGPORT".to_string(), port.to_string()),
        ("PGDATABASE".to_string(), target.database.clone()),
        ("PGUSER".to_string(), target.username.to_string()),
        (
            "PGPASSWORD".to_string(),
            password.expose_secret().to_string(),
        ),
    ];
    let ca = match &target.tls {
        TlsExpectation::VerifyFull { ca_pem } => {
            env.push(("PGSSLMODE".into(), "verify-full".into()));
            match ca_pem {
                Some(pem) => {
                    let f = private_file("p0-ca.", ".pem", pem)?;
                    env.push(("PGSSLROOTCERT".into(), f.path().display().to_string()));
                    Some(f)
                }
                None => {
                    env.push(("PGSSLROOTCERT".into(), "system".into()));
                    None
                }
            }
        }
        TlsExpectation::Off => {
            env.push(("PGSSLMODE".into(), "disable".into()));
            env.push(("PGGSSENCMODE".into(), "disable".into()));
            env.push(("PGREQUIREAUTH".into(), "scram-sha-256".into()));
            None
        }
    };
    Ok((env, ca))
}

/// `scheme://user:password@host:port/database`, every part percent-encoded.
pub fn database_url(
    host: &str,
    port: u16,
    target: &ConnectTarget,
    password: &Password,
    ca: &CaFile,
) -> anyhow::Result<String> {
    let scheme = match target.engine {
        Engine::MySql => "mysql",
        _ => "postgres",
    };
    let mut url = url::Url::parse(&format!("{scheme}://placeholder/"))?;
    url.set_host(Some(host)).context("host for the URL")?;
    url.set_port(Some(port)).ok().context("port for the URL")?;
    url.set_username(target.username.as_str())
        .ok()
        .context("user for the URL")?;
    url.set_password(Some(password.expose_secret()))
        .ok()
        .context("password for the URL")?;
    url.path_segments_mut()
        .ok()
        .context("database for the URL")?
        .push(&target.database);
    match (&target.tls, target.engine) {
        (TlsExpectation::Off, Engine::MySql) => {
            url.query_pairs_mut().append_pair("ssl-mode", "disabled");
        }
        (TlsExpectation::Off, _) => {
            url.query_pairs_mut().append_pair("sslmode", "disable");
        }
        (TlsExpectation::VerifyFull { .. }, Engine::MySql) => {
            url.query_pairs_mut()
                .append_pair("ssl-mode", "verify_identity");
            if let Some(f) = ca {
                url.query_pairs_mut()
                    .append_pair("ssl-ca", &f.path().display().to_string());
            }
        }
        (TlsExpectation::VerifyFull { .. }, _) => {
            url.query_pairs_mut().append_pair("sslmode", "verify-full");
            if let Some(f) = ca {
                url.query_pairs_mut()
                    .append_pair("sslrootcert", &f.path().display().to_string());
            }
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str) -> ConnectTarget {
        ConnectTarget {
            request_id: RequestId::generate(),
            resource: ResourceId::new("my/app").unwrap(),
            engine: Engine::MySql,
            host: host.into(),
            port: 3306,
            database: "app".into(),
            username: p0_core::Username::new("p0_alice_1").unwrap(),
            expires_at: chrono::Utc::now(),
            tls: TlsExpectation::Off,
        }
    }

    #[test]
    fn no_value_adds_an_option_to_the_mysql_option_file() {
        let t = target("127.0.0.1");
        for pw in ["a\"\nlocal-infile=1", "x\rlocal-infile=1"] {
            assert!(mysql_defaults("127.0.0.1", 3306, &t, &Password::new(pw.into())).is_err());
        }
        assert!(mysql_defaults(
            "127.0.0.1\nlocal-infile=1",
            3306,
            &t,
            &Password::new("p".into())
        )
        .is_err());
        let (f, _) =
            mysql_defaults("127.0.0.1", 3306, &t, &Password::new("p\"w'\\x".into())).unwrap();
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(text.contains("password=\"p\\\"w\\'\\\\x\"\n"), "{text}");
        assert!(text.contains("local-infile=0\n"));
        assert_eq!(
            text.lines().filter(|l| l.contains("local-infile")).count(),
            1
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            f.as_file().metadata().unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn urls_encode_every_part() {
        let mut t = target("db.internal");
        t.database = "a/b?c".into();
        let u = database_url(
            "db.internal",
            3306,
            &t,
            &Password::new("p@ss:/w#".into()),
            &None,
        )
        .unwrap();
        let parsed = url::Url::parse(&u).unwrap();
        assert_eq!(parsed.host_str(), Some("db.internal"));
        assert_eq!(parsed.password(), Some("p%40ss%3A%2Fw%23"));
        assert_eq!(parsed.path(), "/a%2Fb%3Fc");
    }
}
