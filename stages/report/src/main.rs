//! `haq-report`: the paper's tables, figures and claims from the outputs of the stages in
//! its `needs:` (calibrate, searches, finetunes; see `collect`). docs/report.md lists
//! what it contains and how each claim is decided.
//!
//! It writes `reports/<workflow name>/` under the directory `haq run` started in,
//! replacing what was there, and stores every file as a workspace output of the run
//! (`file:reports/<workflow name>/<file>`), which a cache hit writes back. Nothing in it
//! depends on the time or the machine: the same inputs give the same bytes. The searches'
//! seconds, which do, go to `reports/<workflow name>-search-cost/` alone, unstored.

mod assemble;
mod claims;
mod collect;
mod figures;
mod formats;
mod html;
mod output;
mod roles;
mod search_cost;
mod stats;
mod tables;
#[cfg(test)]
mod testdata;

use haq_cost::check::SETTINGS_KEYS;
use haq_stage::{ParamError, StageContext};

fn main() {
    haq_stage::main(env!("HAQ_BUILD_IDENTITY"), check, run)
}

/// The report takes no params of its own: everything comes from its inputs.
fn check(params: &serde_json::Value) -> Result<(), ParamError> {
    let own = params
        .as_object()
        .into_iter()
        .flat_map(|p| p.keys())
        .find(|k| !SETTINGS_KEYS.contains(&k.as_str()));
    match own {
        Some(key) => Err(ParamError::new(
            key.as_str(),
            "the report stage takes no params (it reads everything from its inputs); remove it",
        )),
        None => Ok(()),
    }
}

fn run(ctx: &StageContext) -> anyhow::Result<()> {
    let exp = collect::collect(ctx)?;
    figures::load_font()?;
    let workflow = &ctx.run().workflow;
    let files = assemble::report(workflow, &exp)?;
    let dir = output::write_dir(workflow, &files)?;
    for f in &files {
        let path = dir.join(&f.name);
        ctx.put_workspace_output(&path.to_string_lossy(), &f.bytes, f.media_type)?;
    }
    println!("wrote {} files to {}", files.len(), dir.display());
    let seconds = output::write_dir(&search_cost::dir(workflow), &search_cost::files(&exp)?)?;
    println!(
        "wrote the searches' seconds (machine-dependent, not stored) to {}",
        seconds.display()
    );
    Ok(())
}
