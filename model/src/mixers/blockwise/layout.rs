//! Reordering a video token tensor into per-block sequences and back (Po et al. 2025, §4.1).
//! Within a block the sequence is frame 1's b_h·b_w tokens in raster order, then frame 2's, ...;
//! blocks are numbered in raster order over the grid of blocks.

use burn::tensor::{backend::Backend, Tensor};
use kernels::fused::BlockOrder;

/// Number of blocks of a `[h, w]` grid cut into `block` = `[b_h, b_w]` tiles; asserts that the
/// tiles divide the grid.
pub fn n_blocks(h: usize, w: usize, block: [usize; 2]) -> usize {
    let [bh, bw] = block;
    assert!(
        bh > 0 && bw > 0 && h % bh == 0 && w % bw == 0,
        "block-wise scan: block {bh}×{bw} must tile the {h}×{w} token grid"
    );
    (h / bh) * (w / bw)
}

/// Cut tokens into per-block sequences.
///
/// # Shapes
/// - `x`: `[batch, frames, h, w, d]` → `[batch · n_blocks, frames · b_h · b_w, d]`, where row
///   `batch_index · n_blocks + block_index` holds one block's sequence.
pub fn to_blocks<B: Backend>(x: Tensor<B, 5>, block: [usize; 2]) -> Tensor<B, 3> {
    let [batch, frames, h, w, d] = x.dims();
    let n = n_blocks(h, w, block);
    let [bh, bw] = block;
    // (b_w, d) stay adjacent, so they travel as one axis: 6 axes at most (burn-ndarray's limit).
    x.reshape([batch, frames, h / bh, bh, w / bw, bw * d])
        .permute([0, 2, 4, 1, 3, 5])
        .reshape([batch * n, frames * bh * bw, d])
}

/// Inverse of [`to_blocks`].
///
/// # Shapes
/// - `x`: `[batch · n_blocks, frames · b_h · b_w, d]` → `[batch, frames, h, w, d]`
pub fn from_blocks<B: Backend>(
    x: Tensor<B, 3>,
    batch: usize,
    frames: usize,
    h: usize,
    w: usize,
    block: [usize; 2],
) -> Tensor<B, 5> {
    let [rows, len, d] = x.dims();
    let n = n_blocks(h, w, block);
    let [bh, bw] = block;
    assert_eq!(
        [rows, len],
        [batch * n, frames * bh * bw],
        "block-wise scan: expected [batch·n_blocks, frames·b_h·b_w, d] sequences"
    );
    x.reshape([batch, h / bh, w / bw, frames, bh, bw * d])
        .permute([0, 3, 1, 4, 2, 5])
        .reshape([batch, frames, h, w, d])
}

/// Rows of a video's tokens in `order` (kernels' [`BlockOrder`]: per video, frames of raster
/// tokens) → the same rows in sequence order ([`to_blocks`]'s), for the tensor-op path.
///
/// # Shapes
/// - `x`: `[rows, d]` → `[rows, d]`
pub fn to_sequence_order<B: Backend>(x: Tensor<B, 2>, order: BlockOrder) -> Tensor<B, 2> {
    if order.grid == order.block {
        return x; // one block per frame: the rows already are the sequences
    }
    let [rows, d] = x.dims();
    let ([h, w], frames) = (order.grid, order.frames);
    let videos = rows / (frames * h * w);
    to_blocks(x.reshape([videos, frames, h, w, d]), order.block).reshape([rows, d])
}

/// Inverse of [`to_sequence_order`].
///
/// # Shapes
/// - `x`: `[rows, d]` → `[rows, d]`
pub fn from_sequence_order<B: Backend>(x: Tensor<B, 2>, order: BlockOrder) -> Tensor<B, 2> {
    if order.grid == order.block {
        return x;
    }
    let [rows, d] = x.dims();
    let ([h, w], frames) = (order.grid, order.frames);
    let videos = rows / (frames * h * w);
    let sequences = order.sequences(rows);
    let sequence = x.reshape([sequences, rows / sequences, d]);
    from_blocks(sequence, videos, frames, h, w, order.block).reshape([rows, d])
}
