//! The integration tests of haq-cost, in one binary.

mod arch;
mod env;
mod hw_bismo;
mod hw_bitfusion;
mod hw_measured;
mod hw_size;
mod hw_table;
mod policy;
mod resource;
