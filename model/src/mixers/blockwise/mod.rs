//! The block-wise scan of "Long-Context State-Space Video World Models" (Po et al. 2025, §4.1;
//! SPEC §5.3): the H×W token grid is cut into b_h×b_w blocks and each block is scanned over
//! time as its own sequence (its tokens of frame 1 in raster order, then of frame 2, ...) with
//! its own state. Small blocks keep long temporal memory; a block of the whole frame is the
//! plain single scan.

pub mod layer;
pub mod layout;

pub use layer::{BlockwiseMamba2, BlockwiseMamba2Config};
pub use layout::{from_blocks, from_sequence_order, to_blocks, to_sequence_order};

#[cfg(test)]
mod tests;
