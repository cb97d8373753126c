//! `search-cost.{md,csv,tex}`: per search stage, its method, the policies it scored and
//! the seconds it took. The seconds are the report's one machine-dependent number, so
//! they are kept out of the report and the store, whose bytes must reproduce on any
//! machine: the files go to their own directory beside the report's, [`dir`], and are
//! not workspace outputs (a cache hit of the report neither rewrites nor restores them).
//! The tables and claims give the policies scored alone.

use anyhow::Context;
use polars::prelude::{Column, DataFrame};

use crate::assemble::table_files;
use crate::collect::Experiments;
use crate::output::File;
use crate::tables::method_name;

const NAME: &str = "search-cost";
const TITLE: &str = "Search cost per search stage (machine-dependent seconds)";

/// The directory under `reports/` the files go to.
pub fn dir(workflow: &str) -> String {
    format!("{workflow}-{NAME}")
}

pub fn files(exp: &Experiments) -> anyhow::Result<Vec<File>> {
    Ok(table_files(NAME, TITLE, &note(), &frame(exp)?)?.into())
}

/// One row per search, in stage order.
fn frame(exp: &Experiments) -> anyhow::Result<DataFrame> {
    let s = &exp.searches;
    let text = |name: &str, f: &dyn Fn(usize) -> String| {
        Column::new(name.into(), (0..s.len()).map(f).collect::<Vec<_>>())
    };
    DataFrame::new_infer_height(vec![
        text("stage", &|i| s[i].stage.clone()),
        text("method", &|i| method_name(s[i].method()).into()),
        text("hardware", &|i| s[i].summary.hardware.clone()),
        text("objective", &|i| s[i].summary.objective.to_string()),
        text("budget", &|i| s[i].summary.budget.to_string()),
        Column::new(
            "policies_scored".into(),
            s.iter()
                .map(|s| s.policies_scored() as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "seconds".into(),
            s.iter().map(|s| s.seconds).collect::<Vec<_>>(),
        ),
    ])
    .context("building the search-cost table")
}

fn note() -> String {
    "Seconds: the search run's wall time, start to end (data and model loading, what the \
     method measures before scoring, HAWQ's Hessian traces, and every policy scored; a \
     resumed run's last attempt), as measured on the machine that ran it; empty where the \
     store has no completed run with the search's outputs. They differ \
     from machine to machine and run to run, which is why only this file shows them. \
     Policies scored count greedy's sensitivity probes."
        .into()
}
