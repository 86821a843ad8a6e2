//! `BlockwiseMamba2`: a Mamba-2 layer scanned per spatial block over time (Po et al. 2025, §4.1;
//! SPEC §5.3), one carried state per block. Streaming frame by frame with the returned state
//! equals one call over all frames.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use super::layout::n_blocks;
use crate::mixers::ssd::{Mamba2, Mamba2Config, Mamba2State};
use kernels::fused::BlockOrder;

/// Configuration of a [`BlockwiseMamba2`].
#[derive(Config, Debug)]
pub struct BlockwiseMamba2Config {
    /// The Mamba-2 layer shared by all blocks.
    pub mamba: Mamba2Config,
    /// Block size `[b_h, b_w]` in tokens; `[h, w]` is a single scan, `[1, 1]` purely temporal.
    pub block: [usize; 2],
}

impl BlockwiseMamba2Config {
    /// Build the layer.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BlockwiseMamba2<B> {
        let [bh, bw] = self.block;
        assert!(
            bh > 0 && bw > 0,
            "block-wise scan: block sizes must be at least 1"
        );
        BlockwiseMamba2 {
            mamba: self.mamba.init(device),
            block: self.block,
        }
    }
}

/// A Mamba-2 layer applied to each spatial block's sequence over time.
#[derive(Module, Debug)]
pub struct BlockwiseMamba2<B: Backend> {
    /// The layer every block runs through (weights shared, states separate).
    pub mamba: Mamba2<B>,
    #[module(skip)]
    block: [usize; 2],
}

impl<B: Backend> BlockwiseMamba2<B> {
    /// Scan every block of `x` over its frames, continuing from `state` (zeros if `None`).
    /// The state's batch is `batch · n_blocks`: one state per spatial block, ordered as the
    /// sequences of [`to_blocks`].
    ///
    /// # Shapes
    /// - `x`: `[batch, frames, h, w, d_model]` → `[batch, frames, h, w, d_model]`
    pub fn forward(
        &self,
        x: Tensor<B, 5>,
        state: Option<Mamba2State<B>>,
    ) -> (Tensor<B, 5>, Mamba2State<B>) {
        let dims = x.dims();
        let [batch, frames, h, w, d] = dims;
        let order = BlockOrder {
            frames,
            grid: [h, w],
            block: self.block,
        };
        let rows = x.reshape([batch * frames * h * w, d]);
        let (y, state) = self.mamba.forward_ordered(rows, order, state);
        (y.reshape(dims), state)
    }

    /// A zero state for `batch` videos of an `h`×`w` token grid.
    pub fn zero_state(
        &self,
        batch: usize,
        h: usize,
        w: usize,
        device: &B::Device,
    ) -> Mamba2State<B> {
        self.mamba
            .zero_state(batch * n_blocks(h, w, self.block), device)
    }

    /// Block size `[b_h, b_w]`.
    pub fn block(&self) -> [usize; 2] {
        self.block
    }
}
