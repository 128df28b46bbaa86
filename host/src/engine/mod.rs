//! The backup and restore engine.

pub mod asb;
