//! `p0 demo`: the real flow, end to end, against a throwaway database, narrated.

use crate::client::{Client, Outcome};
use crate::command::login::dev_login;
use crate::session::Session;
use anyhow::bail;
use p0_core::{Engine, Intent, ResourceId};
use p0_stack::{Stack, DATABASE, DEMO_RULES, RESOURCE};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Leave the stack running and print how to use it from another shell.
    #[arg(long)]
    keep: bool,
    /// Lease length for the demo query, in seconds.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// The engine: postgres or mysql (MariaDB).
    #[arg(long, default_value = "postgres")]
    engine: String,
}

/// The line of a client's stderr that says what went wrong.
fn first_error(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| l.contains("ERROR"))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()));
    line.unwrap_or("").trim().to_string()
}

fn step(text: &str) {
    println!("\n==> {text}");
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine: Engine = args.engine.parse()?;
    let mysql = engine == Engine::MySql;
    if mysql {
        step("starting a throwaway MariaDB with a small `app` database");
    } else {
        step("starting a throwaway PostgreSQL with a small `sales` schema, nothing granted to PUBLIC");
    }
    let stack = Stack::start_engine(engine, DEMO_RULES, 1).await?;
    let port = stack.my.as_ref().map(|m| m.port).unwrap_or(stack.pg.port);
    println!(
        "    {engine} on 127.0.0.1:{port}, agent at {}, server at {}",
        stack.agent_url, stack.server_url
    );
    println!(
        "    the database admin logs in by password only; server and agent speak plain HTTP because both are on loopback (deployed, the agent serves HTTPS: README, quick start)"
    );
    println!("    rules: reads are approved automatically; anything else needs someone in `dba`");

    // alice's key and token: a directory only she can enter, from its creation.
    let dir = p0_stack::private_tempdir("p0-demo-session.")?;
    let session = Session::at(dir.path().to_path_buf())?;
    step("alice logs in: her CLI makes an RSA key and gets an ID token whose nonce commits to it");
    let token = dev_login(&session, &stack.server_url, "alice@example.com", &[]).await?;
    let (_, _, key, public) = session.load()?;
    let client = Client::new(&stack.server_url, token, &key, &public)?;

    let schema = if mysql { DATABASE } else { "sales" };
    let sql = format!("SELECT c.name, o.total FROM {schema}.orders o JOIN {schema}.customers c ON c.id = o.customer_id ORDER BY o.total DESC");
    let sql = sql.as_str();
    step(&format!("alice asks to run: {sql}"));
    let resource = ResourceId::new(stack.resource.clone())?;
    let outcome = client
        .request(
            p0_core::RequestId::generate(),
            false,
            &key,
            &public,
            &resource,
            Intent::Query(sql.into()),
            "weekly report",
            Duration::from_secs(args.seconds),
            true,
            Duration::from_secs(60),
        )
        .await?;
    let (view, grant) = match outcome {
        Outcome::Granted(v, g) => (v, g),
        other => bail!("the demo request was not granted: {other:?}"),
    };
    if let Some(perms) = &view.permissions {
        println!("    least privilege worked out by the server (agent's live catalog):");
        for p in perms.iter() {
            println!("      {p}");
        }
    }
    println!(
        "    auto-approved; the agent created user {} (role {}) until {}",
        grant.username,
        grant.role,
        grant.expires_at.format("%H:%M:%S")
    );
    println!("    the password came back sealed to alice's key; the server never saw it");

    let opened = crate::connect::open_grant(
        &session,
        &stack.server_url,
        std::slice::from_ref(&key),
        &view.id,
        &resource,
        &grant,
    )?;
    let (target, password) = (&opened.target, &opened.password);
    let (host, port, _relay) = crate::command::access::route(target).await?;
    let defaults = if mysql {
        Some(crate::connect::mysql_defaults(
            &host, port, target, password,
        )?)
    } else {
        None
    };
    let (pg_env, _ca) = crate::connect::pg_env(&host, port, target, password)?;
    let run_sql = |q: &str| {
        let mut cmd = match &defaults {
            Some((f, _)) => {
                let mut c = tokio::process::Command::new("mariadb");
                c.arg(format!("--defaults-extra-file={}", f.path().display()))
                    .args(["--table", "-e", q]);
                c
            }
            None => {
                let mut c = tokio::process::Command::new("psql");
                c.args(["-X", "-c", q]).envs(pg_env.clone());
                for v in crate::connect::CLIENT_ENV_REMOVE {
                    c.env_remove(v);
                }
                c
            }
        };
        async move { cmd.output().await }
    };
    step(&format!(
        "running the query as the ephemeral user ({}, password from the sealed blob)",
        if mysql {
            "mysql client, 0600 defaults file"
        } else {
            "psql"
        }
    ));
    let out = run_sql(sql).await?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!("the query failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let denied = run_sql(&format!("SELECT * FROM {schema}.payroll")).await?;
    println!(
        "    and a table outside the grant: {}",
        first_error(&denied.stderr)
    );

    step("what exists in the database while the lease lives");
    match &stack.my {
        Some(m) => {
            print!(
                "{}",
                m.sql("SELECT user, is_role FROM mysql.user WHERE user LIKE 'p0%' ORDER BY 1")?
            );
            print!("{}", m.sql(&format!("SHOW GRANTS FOR '{}'", grant.role))?);
            print!("{}", m.sql("SELECT EVENT_NAME, EXECUTE_AT FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'p0_agent'")?);
        }
        None => {
            print!(
                "{}",
                stack.pg.psql(
                    DATABASE,
                    "SELECT rolname, rolcanlogin AS login, rolvaliduntil AS valid_until FROM pg_roles WHERE rolname LIKE 'p0%' ORDER BY 1",
                )?
            );
            print!("{}", stack.pg.psql(DATABASE, "SELECT 'sales.orders acl: ' || relacl::text FROM pg_class WHERE oid = 'sales.orders'::regclass")?);
        }
    }

    if args.keep {
        step("the stack stays up; from another shell:");
        println!("    export P0_CONFIG_DIR={}", dir.path().display());
        println!("    p0 ls");
        if mysql {
            println!(
                "    p0 mysql -D {} -e 'SELECT count(*) FROM app.orders' --reason test",
                stack.resource
            );
        } else {
            println!(
                "    p0 psql -d {RESOURCE} -c 'SELECT count(*) FROM sales.orders' --reason test"
            );
        }
        println!("    p0 login --dev bob@example.com --group dba --server {}   # (in a third config dir) an approver", stack.server_url);
        println!("    Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        return Ok(ExitCode::SUCCESS);
    }

    step(&format!(
        "waiting for the {}s lease to expire; the server's reaper asks the agent to revoke",
        args.seconds
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(args.seconds + 60);
    loop {
        if stack.managed_roles()?.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("the lease was not revoked in time");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "    user and role are gone ({} p0 accounts left)",
        stack.managed_roles()?.len()
    );
    let again = run_sql("SELECT 1").await?;
    println!(
        "    logging in again: {}",
        String::from_utf8_lossy(&again.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
    );

    step("the audit log, hash-chained");
    let log: Vec<p0_core::audit::AuditEntry> = client.get("/v1/audit").await?;
    for e in &log {
        println!(
            "    {:>2} {:<18} {:<20} {}",
            e.seq, e.actor, e.action, e.detail
        );
    }
    p0_core::audit::verify_chain(&log).map_err(|e| anyhow::anyhow!(e))?;
    println!("    chain verified ({} entries)", log.len());
    step("done");
    Ok(ExitCode::SUCCESS)
}
