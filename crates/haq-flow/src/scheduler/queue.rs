//! The dependency queue every executor schedules from: which selected stages wait, which
//! have started, the runs of those complete, and how each one ended, which becomes the
//! run's [`Summary`].

use std::collections::{BTreeMap, BTreeSet};

use haq_store::Run;

use super::events::{Event, OnEvent, Summary};
use crate::Dag;

enum State {
    Pending,
    Started,
    Complete(Box<Run>),
    /// Failed, interrupted or skipped: its dependents can never be ready.
    Ended,
}

pub(crate) struct Queue<'a> {
    dag: &'a Dag,
    /// The selection, in topological order: the order stages are offered in.
    order: Vec<usize>,
    states: BTreeMap<usize, State>,
    summary: Summary,
}

impl<'a> Queue<'a> {
    /// `selection` is in topological order and closed under upstream.
    pub(crate) fn new(dag: &'a Dag, selection: &[usize]) -> Self {
        Queue {
            dag,
            order: selection.to_vec(),
            states: selection.iter().map(|&i| (i, State::Pending)).collect(),
            summary: Summary::default(),
        }
    }

    /// The stages not started yet, in order.
    pub(crate) fn pending(&self) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|i| matches!(self.states[i], State::Pending))
            .collect()
    }

    pub(crate) fn is_complete(&self, i: usize) -> bool {
        matches!(self.states.get(&i), Some(State::Complete(_)))
    }

    /// Whether every stage `i` needs is complete.
    pub(crate) fn ready(&self, i: usize) -> bool {
        self.dag.upstream(i).iter().all(|&u| self.is_complete(u))
    }

    /// Starts the first pending stage that is ready.
    pub(crate) fn next_ready(&mut self) -> Option<usize> {
        let i = self.pending().into_iter().find(|&i| self.ready(i))?;
        self.start(i);
        Some(i)
    }

    pub(crate) fn start(&mut self, i: usize) {
        self.states.insert(i, State::Started);
    }

    /// The names and runs of the stages a ready stage `i` needs, as its run key takes them.
    pub(crate) fn upstream_runs(&self, i: usize) -> Vec<(&str, &Run)> {
        self.dag
            .upstream(i)
            .iter()
            .map(|&u| match &self.states[&u] {
                State::Complete(run) => (self.dag.name(u), run.as_ref()),
                _ => panic!("stage {} is not complete", self.dag.name(u)),
            })
            .collect()
    }

    /// Stage `i` completed by reusing `run`.
    pub(crate) fn cached(&mut self, i: usize, run: Run) {
        self.summary.cached.push(self.dag.name(i).to_string());
        self.states.insert(i, State::Complete(Box::new(run)));
    }

    /// Stage `i` completed by executing `run`.
    pub(crate) fn executed(&mut self, i: usize, run: Run) {
        self.summary.executed.push(self.dag.name(i).to_string());
        self.states.insert(i, State::Complete(Box::new(run)));
    }

    pub(crate) fn interrupted(&mut self, i: usize) {
        self.end(i, |s| &mut s.interrupted);
    }

    /// Stage `i` was not run, and nothing need be said: `haq run` was stopped first.
    pub(crate) fn not_run(&mut self, i: usize) {
        self.end(i, |s| &mut s.skipped);
    }

    /// Stage `i` failed: every stage downstream of it that has not ended is skipped, and
    /// reported so. Returns those, in order, for the executor to stop the started ones.
    pub(crate) fn failed(&mut self, i: usize, on_event: &OnEvent) -> Vec<usize> {
        self.end(i, |s| &mut s.failed);
        let mut downstream = BTreeSet::new();
        let mut stack = self.dag.downstream(i);
        while let Some(d) = stack.pop() {
            if downstream.insert(d) {
                stack.extend(self.dag.downstream(d));
            }
        }
        let skipped: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|d| {
                downstream.contains(d) && matches!(self.states[d], State::Pending | State::Started)
            })
            .collect();
        let because = format!("{} failed", self.dag.name(i));
        for &d in &skipped {
            on_event(&Event::Skipped {
                stage: self.dag.name(d).to_string(),
                because: because.clone(),
            });
            self.end(d, |s| &mut s.skipped);
        }
        skipped
    }

    /// How every stage ended; those never started were not run.
    pub(crate) fn finish(mut self) -> Summary {
        for i in self.pending() {
            self.not_run(i);
        }
        self.summary
    }

    fn end(&mut self, i: usize, list: impl Fn(&mut Summary) -> &mut Vec<String>) {
        list(&mut self.summary).push(self.dag.name(i).to_string());
        self.states.insert(i, State::Ended);
    }
}
