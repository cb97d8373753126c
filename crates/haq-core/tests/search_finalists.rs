//! A search's finalists: the highest-reward episodes with distinct policies.

use haq_core::quant::Policy;
use haq_core::search::finalists;

#[test]
fn finalists_are_the_best_distinct_policies_best_first() {
    let p = |k| Policy::uniform(3, k);
    let episodes = [
        (0, -0.5, p(2)),
        (1, -0.1, p(4)),
        (2, -0.3, p(5)),
        // The same policy as episode 1 with a lower (noisier) reward: not a second finalist.
        (3, -0.2, p(4)),
        // The same reward as episode 2: the earlier episode ranks first.
        (4, -0.3, p(6)),
        (5, -0.05, p(8)),
    ];
    let ranked = |k| finalists(episodes.iter().map(|(e, r, p)| (*e, *r, p)), k);
    assert_eq!(ranked(3), [5, 1, 2]);
    assert_eq!(ranked(4), [5, 1, 2, 4]);
    assert_eq!(ranked(1), [5]);
    assert_eq!(ranked(10), [5, 1, 2, 4, 0]);
}
