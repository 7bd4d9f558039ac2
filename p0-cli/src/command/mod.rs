//! Subcommands: one module each.

mod access;
mod args;
mod audit;
mod clients;
#[cfg(feature = "demo")]
mod demo;
mod explain;
mod login;
mod manage;
mod oidc;
mod show;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Just-in-time, ephemeral database access.
#[derive(Debug, Parser)]
#[command(
    name = "p0",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("P0_COMMIT"), ")"),
    about
)]
pub struct Cli {
    /// Only errors on stderr: no progress, reuse or pinning notes (before the subcommand:
    /// `p0 -q psql …`, since psql has a -q of its own).
    #[arg(short, long)]
    quiet: bool,
    /// More on stderr: `-v` p0's own debug log, `-vv` its HTTP clients' too (RUST_LOG, when
    /// set, decides instead).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// Whether `-q` was given: notes on stderr are left out.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether notes (progress, reuse, pinning) are shown.
pub fn noisy() -> bool {
    !QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// A note on stderr, left out under `-q`.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if $crate::command::noisy() {
            eprintln!($($arg)*);
        }
    };
}

/// Logs to stderr: RUST_LOG when set, else warnings (errors under -q, debug under -v);
/// colours only on a terminal.
fn init_logging(quiet: bool, verbose: u8) {
    use std::io::IsTerminal;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "warn,p0=debug,p0_core=debug,p0_server=debug,p0_agent=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in: make a key pair and get an ID token that commits to it.
    Login(login::Args),
    /// Forget the login (live grants stay usable until they expire).
    Logout,
    /// Who this login is: name, server, issuer, token expiry, key.
    Whoami(login::WhoamiArgs),
    /// Run psql with just-in-time credentials: `p0 psql -d RESOURCE -c SQL --reason R [psql args…]`.
    Psql(access::PsqlArgs),
    /// Run mysql with just-in-time credentials: `p0 mysql -D RESOURCE -e SQL --reason R [mysql args…]`.
    Mysql(access::MysqlArgs),
    /// Run any command with PG* variables and DATABASE_URL set to just-in-time credentials.
    Exec(access::ExecArgs),
    /// Ask for access without running a client.
    Request(access::RequestArgs),
    /// List resources and requests.
    Ls(manage::LsArgs),
    /// Show a request: SQL or role, privileges, requester, reason, duration, decision, approvals.
    Show(manage::ShowArgs),
    /// Show a request and approve exactly what is shown.
    Approve(manage::IdArgs),
    /// Deny a request.
    Deny(manage::IdArgs),
    /// End a lease early.
    Revoke(manage::IdArgs),
    /// Show (and verify) the audit log.
    Audit(audit::AuditArgs),
    /// Print the least privileges a SQL statement needs.
    Explain(explain::Args),
    /// Print a shell completion script: `p0 completions bash > /etc/bash_completion.d/p0`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `p0 man | man -l -`.
    Man,
    /// Run the whole flow against a throwaway database, narrating each step.
    #[cfg(feature = "demo")]
    Demo(demo::Args),
}

/// Runs the chosen subcommand; exit codes: 0 done, 1 error, 2 denied, 4 timed out waiting for
/// approval; for psql and exec, the client's own.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    init_logging(cli.quiet, cli.verbose);
    match cli.command {
        Command::Explain(args) => explain::run(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "p0", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        other => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                match other {
                    Command::Login(a) => login::run(a).await,
                    Command::Logout => login::logout().await,
                    Command::Whoami(a) => login::whoami(a).await,
                    Command::Psql(a) => access::psql(a).await,
                    Command::Mysql(a) => access::mysql(a).await,
                    Command::Exec(a) => access::exec(a).await,
                    Command::Request(a) => access::request(a).await,
                    Command::Ls(a) => manage::ls(a).await,
                    Command::Show(a) => manage::show(a).await,
                    Command::Approve(a) => manage::approve(a).await,
                    Command::Deny(a) => manage::decide(a, "deny").await,
                    Command::Revoke(a) => manage::decide(a, "revoke").await,
                    Command::Audit(a) => audit::audit(a).await,
                    #[cfg(feature = "demo")]
                    Command::Demo(a) => demo::run(a).await,
                    Command::Explain(_) | Command::Completions { .. } | Command::Man => {
                        unreachable_explain()
                    }
                }
            })
        }
    }
}

/// A moment in the local time zone (`TZ` honoured), with its offset.
pub fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

fn unreachable_explain() -> anyhow::Result<ExitCode> {
    // explain, completions and man run before the runtime is built.
    anyhow::bail!("this command runs without a runtime")
}
