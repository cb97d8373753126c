//! `haq ui`: the workflow's store in the browser, read-only, live while `haq run` runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use clap::Args;
use haq_flow::binaries::Binaries;

use super::workflow::load;
use super::WorkflowArgs;

#[derive(Args)]
pub struct UiArgs {
    #[command(flatten)]
    workflow: WorkflowArgs,
    /// Port to listen on (0: any free one; the URL is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on. Anything but a loopback address shows the store to the
    /// network: haq ui has no login.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
}

pub fn ui(args: UiArgs) -> anyhow::Result<ExitCode> {
    let binaries = Binaries::from_env();
    let wf = load(&args.workflow, &binaries)?;
    if !args.host.is_loopback() {
        eprintln!(
            "haq ui: warning: listening on {}, reachable from other machines; the UI has no \
             login, so anyone who can reach it can read the store",
            args.host
        );
    }
    let wf_store = wf.store.display().to_string();
    haq_ui::serve(
        wf,
        binaries,
        SocketAddr::new(args.host, args.port),
        |addr| {
            // Printed to stdout and flushed, so a script (or a test) can read the URL.
            println!("haq ui: serving {} on http://{addr}/", wf_store);
            use std::io::Write;
            let _ = std::io::stdout().flush();
        },
    )
    .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
