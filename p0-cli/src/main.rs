//! The `p0` command-line client. This file only dispatches; each subcommand lives in
//! `command/`.

mod client;
mod command;
mod connect;
mod relay;
mod session;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = command::Cli::parse();
    match command::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line, no backtrace: the reason is for a person.
            let msg = format!("{e:#}");
            eprintln!(
                "p0: {}",
                msg.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::from(1)
        }
    }
}
