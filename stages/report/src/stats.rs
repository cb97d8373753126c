//! Replicates as numbers: the mean, a 95% confidence interval (Student t over n - 1
//! degrees of freedom) and n; and the three-valued test of a claimed difference.

use serde::Serialize;

use crate::formats::significant;

/// The mean of n samples and, for n >= 2, the 95% confidence interval of the mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    /// `None` for a single sample: one run has no interval.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub n: usize,
}

impl Stat {
    /// The statistics of `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Stat> {
        let n = samples.len();
        if n == 0 {
            return None;
        }
        // Equal samples (a fixed policy's cost) have their value as the mean, exactly.
        let mean = if samples.iter().all(|x| *x == samples[0]) {
            samples[0]
        } else {
            let mean = samples.iter().sum::<f64>() / n as f64;
            // Differences that cancel leave rounding (1e-18 of 0.02-point rewards), which
            // would print as a long number rather than 0.
            let scale = samples.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
            if mean.abs() <= 1e-12 * scale {
                0.0
            } else {
                mean
            }
        };
        let half = (n >= 2).then(|| {
            let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t_975(n - 1) * (var / n as f64).sqrt()
        });
        Some(Stat {
            mean,
            ci_low: half.map(|h| mean - h),
            ci_high: half.map(|h| mean + h),
            n,
        })
    }

    /// Half the width of the interval.
    pub fn half_width(&self) -> Option<f64> {
        Some((self.ci_high? - self.ci_low?) / 2.0)
    }

    /// `91.59 ± 0.21 (n=3)`, or `91.59 (n=1)`.
    pub fn text(&self) -> String {
        match self.half_width() {
            Some(h) => format!(
                "{} ± {} (n={})",
                significant(self.mean),
                ci_digits(h),
                self.n
            ),
            None => format!("{} (n=1)", significant(self.mean)),
        }
    }
}

/// An interval's half-width to two significant digits (never in exponent form).
pub fn ci_digits(h: f64) -> String {
    if h == 0.0 || !h.is_finite() {
        return format!("{h}");
    }
    let decimals = (1 - h.abs().log10().floor() as i32).max(0) as usize;
    format!("{h:.decimals$}")
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom: tabulated to 30 (the
/// usual tables, 4 decimals), beyond by the Cornish-Fisher expansion around the normal
/// quantile (Abramowitz & Stegun 26.7.5), which is within 1e-4 there.
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
        2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739,
        2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    ];
    assert!(df >= 1, "a t quantile needs at least one degree of freedom");
    if df <= TABLE.len() {
        return TABLE[df - 1];
    }
    let (z, v) = (1.959_964_f64, df as f64);
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / (384.0 * v.powi(3))
}

/// Which side of the threshold a claim puts the difference on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The difference is claimed to be at least the threshold.
    AtLeast,
    /// The difference is claimed to be at most the threshold.
    AtMost,
}

/// A claim's (or one comparison's) verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The whole interval lies on the claimed side (a single sample: the sample does).
    #[serde(rename = "holds")]
    Holds,
    /// The whole interval lies on the other side.
    #[serde(rename = "does not hold")]
    DoesNotHold,
    /// The interval contains the threshold.
    #[serde(rename = "undecided")]
    Undecided,
    /// The workflow lacks the experiment.
    #[serde(rename = "not tested")]
    NotTested,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Undecided => "undecided",
            Verdict::NotTested => "not tested",
        }
    }

    pub fn from(holds: bool) -> Verdict {
        if holds {
            Verdict::Holds
        } else {
            Verdict::DoesNotHold
        }
    }

    /// Several verdicts as one: does not hold if any does not, else undecided if any is,
    /// else holds if any was tested; the untested are left out.
    pub fn all(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let tested: Vec<Verdict> = verdicts
            .into_iter()
            .filter(|v| *v != Verdict::NotTested)
            .collect();
        [Verdict::DoesNotHold, Verdict::Undecided, Verdict::Holds]
            .into_iter()
            .find(|v| tested.contains(v))
            .unwrap_or(Verdict::NotTested)
    }
}

/// Tests the claim that `diff` lies on `side` of `threshold`: decided only when its
/// confidence interval lies wholly on one side; with one sample, on that sample.
pub fn test(diff: &Stat, threshold: f64, side: Side) -> Verdict {
    let (low, high) = (
        diff.ci_low.unwrap_or(diff.mean),
        diff.ci_high.unwrap_or(diff.mean),
    );
    let (claimed, other) = match side {
        Side::AtLeast => (low >= threshold, high < threshold),
        Side::AtMost => (high <= threshold, low > threshold),
    };
    if claimed {
        Verdict::Holds
    } else if other {
        Verdict::DoesNotHold
    } else {
        Verdict::Undecided
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_students_t_over_n_minus_one_degrees_of_freedom() {
        // By hand: mean 91.5, s = 0.5, s / sqrt(3) = 0.288675, t(2, 0.975) = 4.3027.
        let s = Stat::of(&[91.0, 92.0, 91.5]).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean - 91.5).abs() < 1e-12);
        let half = 4.3027 * 0.5 / 3f64.sqrt();
        assert!((s.half_width().unwrap() - half).abs() < 1e-9, "{s:?}");
        assert!(
            (s.ci_low.unwrap() - (91.5 - 1.242_07)).abs() < 1e-4,
            "{s:?}"
        );
        assert_eq!(s.text(), "91.50 ± 1.2 (n=3)");
        // Two samples: s = 0.1414, s / sqrt(2) = 0.1, t(1) = 12.7062.
        let two = Stat::of(&[1.0, 1.2]).unwrap();
        assert!((two.half_width().unwrap() - 12.7062 * 0.1).abs() < 1e-9);
        let one = Stat::of(&[88.25]).unwrap();
        assert_eq!(
            (one.ci_low, one.n, one.text()),
            (None, 1, "88.25 (n=1)".into())
        );
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn differences_that_cancel_have_a_mean_of_exactly_zero() {
        // 0.04 - 0.06 + 0.02 sums to 3.5e-18 in floating point.
        let s = Stat::of(&[0.04, -0.06, 0.02]).unwrap();
        assert_eq!(s.mean, 0.0);
        assert_eq!(Stat::of(&[1e-15, 3e-15]).unwrap().mean, 2e-15);
    }

    #[test]
    fn t_quantiles_beyond_the_table_continue_it() {
        assert_eq!(t_975(2), 4.3027);
        assert!((t_975(30) - 2.0423).abs() < 1e-4);
        // Published values: t(40) = 2.0211, t(120) = 1.9799.
        assert!((t_975(40) - 2.0211).abs() < 1e-4, "{}", t_975(40));
        assert!((t_975(120) - 1.9799).abs() < 1e-4, "{}", t_975(120));
        assert!(t_975(31) < t_975(30));
    }

    #[test]
    fn a_claim_holds_fails_or_is_undecided_by_where_the_interval_lies() {
        let diff = |samples: &[f64]| Stat::of(samples).unwrap();
        use Verdict::*;
        // Interval 1.0 +- 0.43: wholly above 0.
        assert_eq!(test(&diff(&[0.9, 1.0, 1.1]), 0.0, Side::AtLeast), Holds);
        // Wholly below 0.
        assert_eq!(
            test(&diff(&[-0.9, -1.0, -1.1]), 0.0, Side::AtLeast),
            DoesNotHold
        );
        // A mean above 0 whose interval reaches below it.
        assert_eq!(
            test(&diff(&[0.5, -0.2, 0.3]), 0.0, Side::AtLeast),
            Undecided
        );
        // At most 1 point lost: 0.2 +- 0.25 lies below 1; 2 +- 0.25 above; 0.9 +- 0.5 across.
        assert_eq!(test(&diff(&[0.1, 0.2, 0.3]), 1.0, Side::AtMost), Holds);
        assert_eq!(
            test(&diff(&[1.9, 2.0, 2.1]), 1.0, Side::AtMost),
            DoesNotHold
        );
        assert_eq!(test(&diff(&[0.7, 0.9, 1.1]), 1.0, Side::AtMost), Undecided);
        // One sample decides on itself; a tie is on the claimed side.
        assert_eq!(test(&diff(&[0.0]), 0.0, Side::AtLeast), Holds);
        assert_eq!(test(&diff(&[-0.01]), 0.0, Side::AtLeast), DoesNotHold);
    }

    #[test]
    fn verdicts_combine_worst_first_and_ignore_the_untested() {
        use Verdict::*;
        assert_eq!(Verdict::all([Holds, Undecided, Holds]), Undecided);
        assert_eq!(
            Verdict::all([Undecided, DoesNotHold, NotTested]),
            DoesNotHold
        );
        assert_eq!(Verdict::all([Holds, NotTested]), Holds);
        assert_eq!(Verdict::all([NotTested]), NotTested);
        assert_eq!(Verdict::all([]), NotTested);
    }
}
