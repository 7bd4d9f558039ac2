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
            // One line, no backtrace: the reason is for a person. It may carry text from the
            // server or a requester: nothing in it acts on the terminal.
            let msg = format!("{e:#}");
            let line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("p0: {}", p0_core::api::printable_line(&line));
            ExitCode::from(1)
        }
    }
}
