//! `haq-report`: the paper's tables, figures and claims from the outputs of the stages in
//! its `needs:` (calibrate, searches, finetunes; see `collect`). docs/report.md lists
//! what it contains and how each claim is decided.
//!
//! It writes `reports/<workflow name>/` under the directory `haq run` started in,
//! replacing what was there, and stores every file as an output of the run, named by its
//! file name. Nothing in it depends on the time or the machine: the same inputs give the
//! same bytes.

mod assemble;
mod claims;
mod collect;
mod figures;
mod formats;
mod html;
mod output;
mod roles;
mod tables;
#[cfg(test)]
mod testdata;

use haq_store::stage::StageContext;

fn main() {
    haq_store::stage::main(env!("HAQ_BUILD_IDENTITY"), run)
}

fn run(ctx: &StageContext) -> anyhow::Result<()> {
    let exp = collect::collect(ctx)?;
    figures::load_font()?;
    let workflow = &ctx.run().workflow;
    let files = assemble::report(workflow, &exp)?;
    let dir = output::write_dir(workflow, &files)?;
    for f in &files {
        ctx.put_output(&f.name, &f.bytes, f.media_type)?;
    }
    println!("wrote {} files to {}", files.len(), dir.display());
    Ok(())
}
