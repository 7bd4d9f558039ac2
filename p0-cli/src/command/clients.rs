//! The database clients p0 runs: found on `PATH` before anything is requested, and run
//! directly, with nothing provisioned, for the flags that need no database (`--help`,
//! `--version`).

use anyhow::bail;
use std::process::ExitCode;

/// Flags of psql and mysql that print something and exit without connecting.
const NO_DATABASE: &[&str] = &["--help", "-?", "--version", "-V"];

/// Whether `program` is on `PATH`.
pub fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The first of `names` on `PATH`, or a one-line error naming what to install — before any
/// request is made, so a missing client never costs an approval or a database user.
pub fn find(names: &[&'static str], install: &str) -> anyhow::Result<&'static str> {
    match names.iter().find(|n| which(n)) {
        Some(n) => Ok(n),
        None => bail!(
            "{} not found on PATH: install {install}; nothing was requested",
            names.join(" or ")
        ),
    }
}

/// With a flag that needs no database among the client's own arguments (and no SQL or role
/// asked for), runs the client with those arguments alone and returns its exit code: no
/// request, no user.
pub async fn without_database(
    client: &str,
    pass: &[String],
    asks_for_access: bool,
) -> anyhow::Result<Option<ExitCode>> {
    if asks_for_access || !pass.iter().any(|a| NO_DATABASE.contains(&a.as_str())) {
        return Ok(None);
    }
    let status = tokio::process::Command::new(client)
        .args(pass)
        .status()
        .await?;
    Ok(Some(exit_code_of(status)))
}

/// A client's exit status as p0's own exit code.
pub fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8)
}
