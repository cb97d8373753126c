//! `haq`: runs HAQ workflows and inspects what they stored.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Like any Unix filter, stop quietly when the reader goes away (`haq runs | head`);
    // Rust's runtime ignores SIGPIPE, which would turn that into a panic.
    // SAFETY: restoring a default disposition before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes, each once.
            eprintln!("haq: {}", haq_stage::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
