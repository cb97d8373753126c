//! What a mixed-precision network costs, without libtorch: networks described as their
//! quantizable layers' shapes ([`arch`]), per-layer bit widths ([`policy`]), hardware cost
//! models ([`hw`]), search budgets and the sweep that meets them ([`budget`]), and the
//! environment the search agent walks ([`env`]).
//!
//! Nothing here links libtorch, so the `haq` CLI and the report use it without loading
//! libtorch; `haq-core` builds the trainable science on top of it and re-exports it.

pub mod arch;
pub mod budget;
pub mod check;
pub mod env;
pub mod error;
pub mod hw;
pub mod method;
pub mod policy;
pub mod stats;
