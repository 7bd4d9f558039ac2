//! `p0 demo`: the real flow, end to end, against a throwaway database, narrated.

use crate::client::{open_password, Client, Outcome};
use crate::command::login::dev_login;
use crate::session::Session;
use anyhow::bail;
use p0_cli::stack::{Stack, DATABASE, DEMO_RULES, RESOURCE};
use p0_core::{Intent, ResourceId};
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
    /// The engine (only postgres in this build).
    #[arg(long, default_value = "postgres")]
    engine: String,
}

fn step(text: &str) {
    println!("\n==> {text}");
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.engine != "postgres" {
        bail!(
            "`p0 demo --engine {}` is not available yet; use postgres",
            args.engine
        );
    }
    step("starting a throwaway PostgreSQL with a small `sales` schema, nothing granted to PUBLIC");
    let stack = Stack::start(DEMO_RULES, 1).await?;
    println!(
        "    postgres on 127.0.0.1:{}, agent at {}, server at {}",
        stack.pg.port, stack.agent_url, stack.server_url
    );
    println!("    rules: reads are approved automatically; anything else needs someone in `dba`");

    let dir = tempfile::Builder::new()
        .prefix("p0-demo-session.")
        .tempdir()?;
    let session = Session::at(dir.path().to_path_buf())?;
    step("alice logs in: her CLI makes an RSA key and gets an ID token whose nonce commits to it");
    let token = dev_login(&session, &stack.server_url, "alice@example.com", &[]).await?;
    let (_, _, key, public) = session.load()?;
    let client = Client::new(&stack.server_url, token)?;

    let sql = "SELECT c.name, o.total FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id ORDER BY o.total DESC";
    step(&format!("alice asks to run: {sql}"));
    let resource = ResourceId::new(RESOURCE)?;
    let outcome = client
        .request(
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

    step("running the query as the ephemeral user (psql, password injected from the sealed blob)");
    let password = open_password(&key, &grant)?;
    let psql = |q: &str| {
        std::process::Command::new("psql")
            .args([
                "-X",
                "-h",
                &grant.host,
                "-p",
                &grant.port.to_string(),
                "-d",
                &grant.database,
                "-U",
                grant.username.as_str(),
                "-c",
                q,
            ])
            .env("PGPASSWORD", password.expose_secret())
            .output()
    };
    let out = psql(sql)?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!("the query failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let denied = psql("SELECT * FROM sales.payroll")?;
    println!(
        "    and a table outside the grant: {}",
        String::from_utf8_lossy(&denied.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
    );

    step("what exists in the database while the lease lives");
    print!(
        "{}",
        stack.pg.psql(
            DATABASE,
            "SELECT rolname, rolcanlogin AS login, rolvaliduntil AS valid_until FROM pg_roles WHERE rolname LIKE 'p0%' ORDER BY 1",
        )?
    );
    print!("{}", stack.pg.psql(DATABASE, "SELECT 'sales.orders acl: ' || relacl::text FROM pg_class WHERE oid = 'sales.orders'::regclass")?);

    if args.keep {
        step("the stack stays up; from another shell:");
        println!("    export P0_CONFIG_DIR={}", dir.path().display());
        println!("    p0 ls");
        println!("    p0 psql -d {RESOURCE} -c 'SELECT count(*) FROM sales.orders' --reason test");
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
    println!("    user and role are gone:");
    print!(
        "{}",
        stack.pg.psql(
            DATABASE,
            "SELECT count(*) AS p0_roles_left FROM pg_roles WHERE rolname LIKE 'p0%'"
        )?
    );
    let again = psql("SELECT 1")?;
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
