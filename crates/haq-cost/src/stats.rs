//! Rank statistics: how alike two measurements order the same things (layers by their
//! sensitivity, policies by their reward, cost models by their latency).

/// Spearman's rank correlation of `a` and `b` (equal lengths, at least 2), tied values
/// sharing their mean rank.
///
/// # Panics
/// If the lengths differ.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "spearman of slices of unequal lengths");
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = (a.len() as f64 - 1.0) / 2.0;
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        let (dx, dy) = (x - mean, y - mean);
        ab += dx * dy;
        aa += dx * dx;
        bb += dy * dy;
    }
    ab / (aa * bb).sqrt()
}

/// The rank of each value from 0, ties at their mean rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut rank = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let end = (start..order.len())
            .take_while(|&k| v[order[k]] == v[order[start]])
            .last()
            .unwrap_or(start);
        for &i in &order[start..=end] {
            rank[i] = (start + end) as f64 / 2.0;
        }
        start = end + 1;
    }
    rank
}
