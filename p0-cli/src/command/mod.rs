//! Subcommands.

mod explain;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Just-in-time, ephemeral database access.
#[derive(Debug, Parser)]
#[command(name = "p0", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the least privileges a SQL statement needs.
    Explain(explain::Args),
}

/// Runs the chosen subcommand; the exit code follows the documented convention.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Explain(args) => explain::run(args),
    }
}
