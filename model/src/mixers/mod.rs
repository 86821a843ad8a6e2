//! The mixer library (SPEC §7). Each mixer is a folder with `reference.rs` (per-step
//! recurrence), `chunked.rs` (parallel form), `layer.rs` (the module) and `tests.rs`.

pub mod attention;
pub mod blockwise;
mod custom_op;
pub mod ssd;
