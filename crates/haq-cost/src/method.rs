//! The search methods haq offers, by name: what the search stage's `method` param names
//! and the report reads back from a search's summary. Their implementations need
//! libtorch and live in haq-core's `search` module, one file each.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A search method (docs/search.md, "Methods").
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// HAQ's DDPG agent (Wang et al., CVPR 2019).
    #[default]
    Ddpg,
    /// Uniformly random policies with the same episodes: the control DDPG has to beat.
    Random,
    /// Per-layer sensitivity, then a greedy walk down the accuracy-cost front (AIMET's
    /// automatic mixed precision).
    Greedy,
    /// Hessian-trace sensitivity and an integer linear program (HAWQ-V3, Yao et al.,
    /// ICML 2021).
    Hawq,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::Ddpg, Method::Random, Method::Greedy, Method::Hawq];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Ddpg => "ddpg",
            Method::Random => "random",
            Method::Greedy => "greedy",
            Method::Hawq => "hawq",
        }
    }

    /// Whether the method runs a set number of episodes (`episodes` param), rather than
    /// scoring the policies its algorithm needs.
    pub fn is_episodic(self) -> bool {
        matches!(self, Method::Ddpg | Method::Random)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
