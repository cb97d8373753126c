//! The workflow engine.
