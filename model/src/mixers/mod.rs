//! The mixer library (SPEC §7). Each mixer is a folder with `reference.rs` (per-step
//! recurrence), `chunked.rs` (parallel form), `layer.rs` (the module) and `tests.rs`; where a
//! mixer has its own backward pass, that pass and the autodiff operation recording it sit
//! beside them (`ssd/backward.rs` + `ssd/autodiff.rs`, `attention/blocks.rs` +
//! `attention/recompute.rs`), sharing `custom_op.rs`.

pub mod attention;
pub mod blockwise;
pub(crate) mod custom_op;
pub mod ssd;
