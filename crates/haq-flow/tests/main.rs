//! The integration tests of haq-flow, in one binary.

mod dag;
mod fingerprint;
mod workflow;
