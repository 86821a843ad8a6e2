//! Frame-local attention (SPEC §5.3, §5.5): multi-head attention over video tokens where frame
//! `t` attends to frames `t − k + 1 ..= t`, with axial RoPE over (row, column, frame).
//!
//! - `frame_local.rs`: the layer, its blocked training path and its streaming path;
//! - `blocks.rs`: masked block attention (the product every path ends in) and its backward;
//! - `recompute.rs`: that pair as one autodiff operation (no stored score matrices);
//! - `cache.rs`: the ring-buffer key/value cache used when streaming;
//! - `rope.rs`: the axial rotary embedding;
//! - `reference.rs`: dense masked softmax attention with an explicit frame mask;
//! - `tests.rs`: blocked = dense reference, streaming = full sequence, causality, RoPE.

mod blocks;
mod cache;
mod frame_local;
mod recompute;
mod reference;
pub mod rope;

pub use cache::KvCache;
pub use frame_local::{tensor_op_frame_attention, FrameLocalAttention, FrameLocalAttentionConfig};
pub use reference::{frame_mask, reference_attention};

#[cfg(test)]
mod tests;
