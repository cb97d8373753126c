//! What every executor schedules with: how to run ([`Options`]), the dependency queue of
//! the selected stages, claiming a stage's run in the store, and the events reported.
//! The executors themselves are [`crate::local`] and [`crate::slurm`].

pub(crate) mod claim;
mod events;
pub(crate) mod queue;

use std::collections::BTreeSet;

pub use events::{Event, OnEvent, Summary};

use crate::terminal::Terminal;
use crate::workflow::ExecutorKind;

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// Stages executed at once (at least 1).
    pub jobs: usize,
    /// Stages (expanded names) to rerun even if a cached run exists.
    pub force: BTreeSet<String>,
    /// Where progress bars are drawn and stage output echoed.
    pub terminal: Terminal,
    /// Copy stage output to the terminal as it comes.
    pub echo: bool,
    /// Where stages run.
    pub executor: ExecutorKind,
}
