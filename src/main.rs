//! `haq`: runs HAQ workflows and inspects what they stored.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes.
            eprintln!("haq: {e:#}");
            ExitCode::FAILURE
        }
    }
}
