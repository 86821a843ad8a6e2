//! Checks of the block-wise scan (Po et al. 2025, §4.1): the reorder round-trips exactly and
//! has the documented order; `BlockwiseMamba2` equals independent `Mamba2` scans over each
//! block's sequence; streaming frame by frame equals one call; the two extreme block sizes
//! are the plain single scan and per-pixel temporal scans.

use burn::backend::NdArray;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use scenes::Rng;

use super::{from_blocks, to_blocks, BlockwiseMamba2, BlockwiseMamba2Config};
use crate::mixers::ssd::tests::{seeded_layer, test_config, uniform};
use crate::tolerance::{assert_close, to_vec};
use kernels::testing::GpuTarget;

type Cpu = NdArray<f32>;

/// A block-wise layer around the seeded test layer (d_model 16, chunk 16).
fn seeded_blockwise<B: Backend>(
    seed: u64,
    block: [usize; 2],
    device: &B::Device,
) -> BlockwiseMamba2<B> {
    let mut layer = BlockwiseMamba2Config::new(test_config(16), block).init::<B>(device);
    layer.mamba = seeded_layer(seed, 16, device);
    layer
}

#[test]
fn to_blocks_order_by_hand() {
    let device = Default::default();
    // [batch 1, frames 2, h 2, w 4, d 1], value = 8·frame + 4·row + col
    let values: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let x = Tensor::<Cpu, 5>::from_data(TensorData::new(values, [1, 2, 2, 4, 1]), &device);
    let blocks = to_blocks(x, [2, 2]);
    assert_eq!(blocks.dims(), [2, 8, 1]);
    let expected = [
        0.0, 1.0, 4.0, 5.0, 8.0, 9.0, 12.0,
        13.0, // block (0, 0): frame 0 raster, then frame 1
        2.0, 3.0, 6.0, 7.0, 10.0, 11.0, 14.0, 15.0, // block (0, 1)
    ];
    assert_eq!(to_vec(blocks), expected);
}

#[test]
fn block_reorder_round_trips_exactly() {
    let device = Default::default();
    let mut rng = Rng::new(3);
    let (batch, frames, h, w, d) = (2, 3, 4, 6, 5);
    let x = uniform::<Cpu, 5>(&mut rng, [batch, frames, h, w, d], -1.0, 1.0, &device);
    for block in [[1, 1], [2, 3], [4, 2], [1, 6], [4, 6]] {
        let seqs = to_blocks(x.clone(), block);
        assert_eq!(
            to_vec(from_blocks(seqs.clone(), batch, frames, h, w, block)),
            to_vec(x.clone())
        );
        assert_eq!(
            to_vec(to_blocks(
                from_blocks(seqs.clone(), batch, frames, h, w, block),
                block
            )),
            to_vec(seqs)
        );
    }
}

#[test]
#[should_panic(expected = "must tile")]
fn block_that_does_not_tile_is_refused() {
    let x = Tensor::<Cpu, 5>::zeros([1, 1, 4, 6, 2], &Default::default());
    to_blocks(x, [3, 2]);
}

#[test]
fn blockwise_equals_independent_scans_per_block() {
    let device = Default::default();
    let (batch, frames, h, w, d, block) = (2, 3, 4, 6, 16, [2, 3]);
    let layer = seeded_blockwise::<Cpu>(41, block, &device);
    let mut rng = Rng::new(42);
    let x = uniform::<Cpu, 5>(&mut rng, [batch, frames, h, w, d], -1.0, 1.0, &device);
    let (y, _) = layer.forward(x.clone(), None);
    let [bh, bw] = block;
    for b in 0..batch {
        for i in 0..h / bh {
            for j in 0..w / bw {
                let region = |t: Tensor<Cpu, 5>| {
                    t.narrow(0, b, 1)
                        .narrow(2, i * bh, bh)
                        .narrow(3, j * bw, bw)
                };
                // The block's own sequence: per frame, its tokens in raster order.
                let seq = region(x.clone()).reshape([1, frames * bh * bw, d]);
                let (y_block, _) = layer.mamba.forward(seq, None);
                let what = format!("batch {b} block ({i}, {j})");
                assert_close(
                    &what,
                    region(y.clone()).reshape([1, frames * bh * bw, d]),
                    y_block,
                    1e-5,
                    1e-7,
                );
            }
        }
    }
}

fn check_streaming_equals_full<B: Backend>(block: [usize; 2], device: &B::Device) {
    let (batch, frames, h, w, d) = (2, 5, 4, 4, 16);
    let layer = seeded_blockwise::<B>(51, block, device);
    let mut rng = Rng::new(52);
    let x = uniform::<B, 5>(&mut rng, [batch, frames, h, w, d], -1.0, 1.0, device);
    let (y_full, s_full) = layer.forward(x.clone(), None);
    let mut state = layer.zero_state(batch, h, w, device);
    let mut ys = Vec::new();
    for f in 0..frames {
        // As the world model does: a throw-away pass that reads the state, then the commit.
        let frame = x.clone().narrow(1, f, 1);
        let _ = layer.forward(frame.clone() * 0.5, Some(state.clone()));
        let (y, s) = layer.forward(frame, Some(state.clone()));
        ys.push(y);
        state = s;
    }
    let what = format!("streaming vs full, block {block:?}");
    assert_close(&what, Tensor::cat(ys, 1), y_full, 1e-4, 1e-6);
    assert_close(
        &format!("{what}: conv state"),
        state.conv,
        s_full.conv,
        1e-5,
        1e-6,
    );
    assert_close(
        &format!("{what}: ssm state"),
        state.ssm,
        s_full.ssm,
        1e-4,
        1e-6,
    );
}

#[test]
fn streaming_frame_by_frame_equals_full_sequence() {
    let device = Default::default();
    for block in [[1, 1], [2, 2], [4, 4], [1, 4]] {
        check_streaming_equals_full::<Cpu>(block, &device);
    }
}

#[test]
fn whole_frame_block_is_the_plain_raster_scan() {
    let device = Default::default();
    let (batch, frames, h, w, d) = (2, 3, 3, 5, 16);
    let layer = seeded_blockwise::<Cpu>(61, [h, w], &device);
    let mut rng = Rng::new(62);
    let x = uniform::<Cpu, 5>(&mut rng, [batch, frames, h, w, d], -1.0, 1.0, &device);
    let (y, _) = layer.forward(x.clone(), None);
    let (y_plain, _) = layer
        .mamba
        .forward(x.reshape([batch, frames * h * w, d]), None);
    assert_close(
        "whole-frame block vs raster scan",
        y.reshape([batch, frames * h * w, d]),
        y_plain,
        1e-5,
        1e-7,
    );
}

#[test]
fn one_by_one_block_is_per_pixel_temporal_scan() {
    let device = Default::default();
    let (batch, frames, h, w, d) = (2, 6, 2, 3, 16);
    let layer = seeded_blockwise::<Cpu>(71, [1, 1], &device);
    let mut rng = Rng::new(72);
    let x = uniform::<Cpu, 5>(&mut rng, [batch, frames, h, w, d], -1.0, 1.0, &device);
    let (y, _) = layer.forward(x.clone(), None);
    for (b, r, c) in
        (0..batch).flat_map(|b| (0..h).flat_map(move |r| (0..w).map(move |c| (b, r, c))))
    {
        let pixel = |t: Tensor<Cpu, 5>| {
            t.narrow(0, b, 1)
                .narrow(2, r, 1)
                .narrow(3, c, 1)
                .reshape([1, frames, d])
        };
        let (y_pixel, _) = layer.mamba.forward(pixel(x.clone()), None);
        assert_close(
            &format!("pixel ({b}, {r}, {c})"),
            pixel(y.clone()),
            y_pixel,
            1e-5,
            1e-7,
        );
    }
}

#[test]
fn blockwise_state_has_one_entry_per_block() {
    let device = Default::default();
    let layer = seeded_blockwise::<Cpu>(81, [2, 3], &device);
    let state = layer.zero_state(2, 4, 6, &device);
    assert_eq!(state.ssm.dims()[0], 2 * 4);
    let x = Tensor::<Cpu, 5>::from_data(TensorData::zeros::<f32, _>([2, 1, 4, 6, 16]), &device);
    let (_, s) = layer.forward(x, Some(state));
    assert_eq!(s.conv.dims()[0], 2 * 4);
}

fn gpu_blockwise_streaming_equals_full_sequence<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    check_streaming_equals_full::<T::B>([2, 2], &device);
}

kernels::gpu_tests!(gpu_blockwise_streaming_equals_full_sequence);
