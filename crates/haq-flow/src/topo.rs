//! Topological order of a graph given as each node's upstream nodes: the one sort the
//! workflow's validation and the [`crate::Dag`] share, and the cycle where there is none.

use std::collections::BTreeSet;

/// Kahn's algorithm, always taking the lowest-numbered ready node so the order is stable.
/// On a cycle, returns one: nodes each of which needs the next, the last needing the first.
pub(crate) fn sort(upstream: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = upstream.len();
    let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut downstream = vec![Vec::new(); n];
    for (i, ups) in upstream.iter().enumerate() {
        for &u in ups {
            downstream[u].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &downstream[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every node left waits on another node left, so following needs from any of them
    // must come back to a node already seen.
    let mut walk = vec![(0..n).find(|&i| waiting[i] > 0).expect("a node is left")];
    loop {
        let here = *walk.last().expect("walk is never empty");
        let next = *upstream[here]
            .iter()
            .find(|&&u| waiting[u] > 0)
            .expect("a node left waits on another node left");
        if let Some(start) = walk.iter().position(|&w| w == next) {
            return Err(walk.split_off(start));
        }
        walk.push(next);
    }
}

/// `a -> b -> c -> a` for the cycle [a, b, c].
pub(crate) fn cycle_path<'a>(cycle: &[usize], name: impl Fn(usize) -> &'a str) -> String {
    cycle
        .iter()
        .chain(cycle.first())
        .map(|&i| name(i))
        .collect::<Vec<_>>()
        .join(" -> ")
}
