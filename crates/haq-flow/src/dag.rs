//! The stage graph of a workflow: order, selection of targets with their upstream, and
//! rendering as text or Graphviz.

use std::fmt::Write;

use crate::error::{Error, Result};
use crate::workflow::Workflow;

/// Stages are nodes, numbered as in `Workflow::stages`; an edge runs from a stage to each
/// stage it needs.
#[derive(Debug, Clone)]
pub struct Dag {
    names: Vec<String>,
    bases: Vec<String>,
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl Dag {
    /// The graph of a loaded workflow, whose needs `Workflow::load` resolved and checked
    /// for cycles: a workflow is validated once, as it is loaded.
    pub fn new(wf: &Workflow) -> Dag {
        let (upstream, order) = wf.graph();
        let mut downstream = vec![Vec::new(); upstream.len()];
        for (i, ups) in upstream.iter().enumerate() {
            for &u in ups {
                downstream[u].push(i);
            }
        }
        Dag {
            names: wf.stages.iter().map(|s| s.name.clone()).collect(),
            bases: wf.stages.iter().map(|s| s.base.clone()).collect(),
            upstream: upstream.to_vec(),
            downstream,
            order: order.to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every stage after all it needs; among stages ready at once, declaration order.
    pub fn topo_order(&self) -> Vec<usize> {
        self.order.clone()
    }

    /// The stages named by `targets` (declared or expanded names; a declared matrix stage
    /// means all its expansions) and everything upstream of them, in topological order.
    /// No targets means every stage.
    pub fn select(&self, targets: &[String]) -> Result<Vec<usize>> {
        if targets.is_empty() {
            return Ok(self.topo_order());
        }
        let mut wanted = vec![false; self.len()];
        let mut stack = Vec::new();
        for target in targets {
            let before = stack.len();
            stack.extend(
                (0..self.len()).filter(|&i| self.bases[i] == *target || self.names[i] == *target),
            );
            if stack.len() == before {
                return Err(Error::UnknownStage {
                    name: target.clone(),
                    known: self.known_names().join(", "),
                });
            }
        }
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut wanted[i], true) {
                stack.extend(&self.upstream[i]);
            }
        }
        Ok(self.order.iter().copied().filter(|&i| wanted[i]).collect())
    }

    /// Stage `i`'s expanded name.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The stages stage `i` needs, in the order written.
    pub fn upstream(&self, i: usize) -> &[usize] {
        &self.upstream[i]
    }

    /// The stages that directly need stage `i`, in declaration order.
    pub fn downstream(&self, i: usize) -> Vec<usize> {
        self.downstream[i].clone()
    }

    /// One line per stage in topological order: name, kind and what it needs, aligned.
    pub fn render_text(&self, wf: &Workflow) -> String {
        let width = self.names.iter().map(String::len).max().unwrap_or(0);
        let kind_width = wf.stages.iter().map(|s| s.kind.len()).max().unwrap_or(0);
        let mut out = String::new();
        for &i in &self.order {
            let mut line = format!(
                "{:width$}  run: {:kind_width$}",
                self.names[i], wf.stages[i].kind
            );
            if !self.upstream[i].is_empty() {
                let needs: Vec<&str> = self.upstream[i]
                    .iter()
                    .map(|&u| self.names[u].as_str())
                    .collect();
                line.push_str("  needs: ");
                line.push_str(&needs.join(", "));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// A Graphviz digraph, edges pointing downstream (the direction data flows).
    pub fn render_dot(&self, wf: &Workflow) -> String {
        let mut out = format!(
            "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
            quote(&wf.name)
        );
        for &i in &self.order {
            let label = format!("{}\n({})", self.names[i], wf.stages[i].kind);
            let _ = writeln!(
                out,
                "  {} [label={}];",
                quote(&self.names[i]),
                quote(&label)
            );
        }
        for &i in &self.order {
            for &u in &self.upstream[i] {
                let _ = writeln!(
                    out,
                    "  {} -> {};",
                    quote(&self.names[u]),
                    quote(&self.names[i])
                );
            }
        }
        out.push_str("}\n");
        out
    }

    /// Declared names, then expanded names: all a target may be.
    fn known_names(&self) -> Vec<&str> {
        let mut known: Vec<&str> = Vec::new();
        for name in self.bases.iter().chain(&self.names) {
            if !known.contains(&name.as_str()) {
                known.push(name);
            }
        }
        known
    }
}

/// A Graphviz quoted ID.
fn quote(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}
