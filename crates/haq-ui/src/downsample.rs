//! Cutting a long metric curve to what a chart can show, on the server, so a page stays
//! responsive with 100,000 points.

/// At most about `max` of `points` (ordered by step): the curve is cut into `max / 2`
/// runs of consecutive points and each keeps its lowest and highest, in step order, so
/// spikes survive; the first and last points are always kept.
pub fn downsample(points: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
    let max = max.max(2);
    if points.len() <= max {
        return points.to_vec();
    }
    let buckets = max / 2;
    let mut out = Vec::with_capacity(max + 2);
    for b in 0..buckets {
        let lo = b * points.len() / buckets;
        let hi = (b + 1) * points.len() / buckets;
        let bucket = &points[lo..hi];
        let by_value = |a: &&(i64, f64), b: &&(i64, f64)| a.1.total_cmp(&b.1);
        let (Some(min), Some(max)) = (
            bucket.iter().min_by(by_value),
            bucket.iter().max_by(by_value),
        ) else {
            continue;
        };
        let (first, second) = if min.0 <= max.0 {
            (min, max)
        } else {
            (max, min)
        };
        out.push(*first);
        if second.0 != first.0 {
            out.push(*second);
        }
    }
    if out.first() != points.first() {
        out.insert(0, points[0]);
    }
    if out.last() != points.last() {
        out.push(points[points.len() - 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_curve_is_kept_whole() {
        let points: Vec<(i64, f64)> = (0..10).map(|i| (i, i as f64)).collect();
        assert_eq!(downsample(&points, 100), points);
    }

    #[test]
    fn a_long_curve_keeps_its_ends_and_its_spikes() {
        let mut points: Vec<(i64, f64)> = (0..100_000).map(|i| (i, (i % 7) as f64)).collect();
        points[54_321].1 = 1e6;
        points[77_777].1 = -1e6;
        let kept = downsample(&points, 1000);
        assert!(kept.len() <= 1002, "{} points kept", kept.len());
        assert!(kept.len() >= 900, "{} points kept", kept.len());
        assert_eq!(kept.first(), points.first());
        assert_eq!(kept.last(), points.last());
        assert!(kept.contains(&(54_321, 1e6)));
        assert!(kept.contains(&(77_777, -1e6)));
        assert!(
            kept.windows(2).all(|w| w[0].0 < w[1].0),
            "steps stay in order"
        );
    }
}
