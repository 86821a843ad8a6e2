//! Checks for frame-local attention (issue "mixer core", SPEC §5.3/§5.5): the blocked and dense
//! paths equal dense masked softmax attention; streaming with the cache equals the full-sequence
//! call; no token sees a future frame or a frame older than the window; RoPE is relative.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use scenes::Rng;

use super::blocks::masked_block_attention;
use super::recompute::{block_attention, kernel_attention};
use super::rope::{apply_rope, rope_tables, AxialRopeSplit};
use super::*;
use crate::tolerance::{assert_close, diff, to_vec};
use kernels::testing::GpuTarget;

type Cpu = NdArray<f32>;

const D_MODEL: usize = 16;
const HEADS: usize = 2;

fn layer<B: Backend>(
    window: Option<usize>,
    chunk: usize,
    device: &B::Device,
) -> FrameLocalAttention<B> {
    B::seed(device, 11);
    FrameLocalAttentionConfig::new(D_MODEL, HEADS)
        .with_window(window)
        .with_chunk_frames(chunk)
        .init(device)
}

/// Uniform(−1, 1) tensor from a fixed seed.
fn input<B: Backend, const D: usize>(
    seed: u64,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.range_f64(-1.0, 1.0) as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn frames<B: Backend>(x: &Tensor<B, 5>, start: usize, len: usize) -> Tensor<B, 5> {
    x.clone().narrow(1, start, len)
}

fn check_forward_matches_reference<B: Backend>(
    window: Option<usize>,
    chunk: usize,
    [b, f, h, w]: [usize; 4],
    first_frame: usize,
    tol: f64,
    device: &B::Device,
) {
    let attn = layer::<B>(window, chunk, device);
    let x = input::<B, 5>(f as u64 * 31 + 7, [b, f, h, w, D_MODEL], device);
    let what = format!(
        "forward vs dense reference, window {window:?}, chunk {chunk}, frames {f}, grid {h}x{w}"
    );
    assert_close(
        &what,
        attn.forward(x.clone(), first_frame),
        attn.forward_reference(x, first_frame),
        tol,
        tol,
    );
}

#[test]
fn forward_matches_dense_reference() {
    let dev = Default::default();
    for window in [Some(1), Some(3), None] {
        for f in [1, 7, 13] {
            check_forward_matches_reference::<Cpu>(window, 1, [2, f, 2, 3], 0, 1e-5, &dev);
        }
    }
    check_forward_matches_reference::<Cpu>(Some(2), 1, [1, 5, 3, 2], 6, 1e-5, &dev);
}

#[test]
fn blocked_path_matches_reference_for_any_chunk_size() {
    let dev = Default::default();
    for window in [Some(2), Some(3), Some(4)] {
        for chunk in [1, 2, 3, 5] {
            check_forward_matches_reference::<Cpu>(window, chunk, [1, 13, 2, 3], 0, 1e-5, &dev);
        }
    }
}

#[test]
fn frame_mask_matches_hand_written_masks() {
    let dev = Default::default();
    let as_bools = |m: Tensor<Cpu, 2, burn::tensor::Bool>| m.into_data().to_vec::<bool>().unwrap();
    // 3 frames of 2 tokens, window 2: frame 2 no longer sees frame 0.
    #[rustfmt::skip]
    let expected = [
        1, 1, 0, 0, 0, 0,
        1, 1, 0, 0, 0, 0,
        1, 1, 1, 1, 0, 0,
        1, 1, 1, 1, 0, 0,
        0, 0, 1, 1, 1, 1,
        0, 0, 1, 1, 1, 1,
    ];
    let expected: Vec<bool> = expected.iter().map(|&e| e == 1).collect();
    assert_eq!(as_bools(frame_mask::<Cpu>(3, 2, Some(2), &dev)), expected);
    let causal: Vec<bool> = [1, 0, 0, 1, 1, 0, 1, 1, 1]
        .iter()
        .map(|&e| e == 1)
        .collect();
    assert_eq!(as_bools(frame_mask::<Cpu>(3, 1, None, &dev)), causal);
    assert_eq!(
        as_bools(frame_mask::<Cpu>(3, 1, Some(1), &dev)),
        vec![true, false, false, false, true, false, false, false, true]
    );
}

/// Stream `x` through the cache in calls of the given frame counts (all committed) and compare
/// with the full-sequence call.
fn check_streaming_equals_full<B: Backend>(
    window: Option<usize>,
    splits: &[usize],
    tol: f64,
    device: &B::Device,
) {
    let f: usize = splits.iter().sum();
    let attn = layer::<B>(window, 1, device);
    let x = input::<B, 5>(99, [2, f, 2, 3, D_MODEL], device);
    let full = attn.forward(x.clone(), 0);
    let mut cache = attn.empty_cache();
    let mut outs = Vec::new();
    let mut start = 0;
    for &n in splits {
        // An uncommitted call first (a denoising pass; on the GPU it keeps the RoPE table the
        // committed call then reuses) sees the same frames and gives the same output.
        let probe = attn.forward_cached(frames(&x, start, n), &mut cache, false);
        let out = attn.forward_cached(frames(&x, start, n), &mut cache, true);
        assert_close(
            &format!("uncommitted vs committed call at frame {start}"),
            probe,
            out.clone(),
            0.0,
            0.0,
        );
        outs.push(out);
        start += n;
        assert_eq!(cache.frames_seen(), start);
        let held = window.map_or(start, |k| start.min(k - 1));
        assert_eq!(
            cache.len_frames(),
            held,
            "frames held after {start} frames, window {window:?}"
        );
    }
    let what = format!("streaming {splits:?} vs full, window {window:?}");
    assert_close(&what, Tensor::cat(outs, 1), full, tol, tol);
}

#[test]
fn streaming_frame_by_frame_equals_full_sequence() {
    let dev = Default::default();
    for window in [Some(1), Some(3), None] {
        check_streaming_equals_full::<Cpu>(window, &[1; 7], 1e-5, &dev);
    }
}

#[test]
fn prefill_then_streaming_equals_full_sequence() {
    let dev = Default::default();
    for window in [Some(1), Some(3), Some(4), None] {
        // Prefill, then a multi-frame call with held history (blocked path), then single frames.
        check_streaming_equals_full::<Cpu>(window, &[5, 6, 1, 1], 1e-5, &dev);
        // History shorter than window − 1 when the multi-frame call arrives.
        check_streaming_equals_full::<Cpu>(window, &[2, 7, 1], 1e-5, &dev);
    }
}

#[test]
fn ring_buffer_holds_only_the_last_window_minus_one_frames() {
    let dev = Default::default();
    let attn = layer::<Cpu>(Some(4), 1, &dev);
    let x = input::<Cpu, 5>(21, [1, 20, 2, 3, D_MODEL], &dev);
    let mut cache = attn.empty_cache();
    while cache.frames_seen() < 20 {
        // Mix single frames and pairs so the ring wraps at different offsets.
        let start = cache.frames_seen();
        let n = if start % 3 == 0 { 2.min(20 - start) } else { 1 };
        attn.forward_cached(frames(&x, start, n), &mut cache, true);
        let seen = cache.frames_seen();
        assert_eq!(cache.slots_allocated(), 3, "ring size after {seen} frames");
        let (keys, values, mut held) = cache.held_in_slot_order().expect("frames held");
        assert_eq!(keys.dims()[2], seen.min(3), "key slots after {seen} frames");
        assert_eq!(
            values.dims()[2],
            seen.min(3),
            "value slots after {seen} frames"
        );
        held.sort();
        assert_eq!(held, (seen.saturating_sub(3)..seen).collect::<Vec<_>>());
    }
}

fn held_values(cache: &KvCache<Cpu>) -> (Vec<f32>, Vec<f32>) {
    let (k, v) = cache.held_in_frame_order().expect("cache holds frames");
    (to_vec(k), to_vec(v))
}

#[test]
fn uncommitted_calls_leave_the_cache_unchanged() {
    let dev = Default::default();
    for window in [Some(3), None] {
        let attn = layer::<Cpu>(window, 1, &dev);
        let x = input::<Cpu, 5>(5, [1, 8, 2, 3, D_MODEL], &dev);
        let full = attn.forward(x.clone(), 0);
        let mut cache = attn.empty_cache();
        let mut outs = Vec::new();
        for t in 0..8 {
            let clean = frames(&x, t, 1);
            if t > 0 {
                let before = (cache.frames_seen(), cache.len_frames(), held_values(&cache));
                // Denoising passes see noisy versions of the frame and must not touch the cache.
                let noisy = clean.clone() + input::<Cpu, 5>(t as u64, [1, 1, 2, 3, D_MODEL], &dev);
                attn.forward_cached(noisy, &mut cache, false);
                let peek = attn.forward_cached(clean.clone(), &mut cache, false);
                let after = (cache.frames_seen(), cache.len_frames(), held_values(&cache));
                assert_eq!(
                    before, after,
                    "commit = false changed the cache (window {window:?}, frame {t})"
                );
                let committed = attn.forward_cached(clean, &mut cache, true);
                assert_eq!(
                    to_vec(peek),
                    to_vec(committed.clone()),
                    "commit = false vs true output"
                );
                outs.push(committed);
            } else {
                outs.push(attn.forward_cached(clean, &mut cache, true));
            }
        }
        assert_close(
            "stream with denoising passes vs full",
            Tensor::cat(outs, 1),
            full,
            1e-5,
            1e-5,
        );
    }
}

/// Largest |a − b| over frames `range` of two `[b, f, h, w, d]` outputs.
fn max_change(a: &Tensor<Cpu, 5>, b: &Tensor<Cpu, 5>, start: usize, len: usize) -> f64 {
    diff(
        &to_vec(frames(a, start, len)),
        &to_vec(frames(b, start, len)),
    )
    .max_abs
}

/// Replace frames `start..start+len` of `x` by other values.
fn perturb(x: &Tensor<Cpu, 5>, start: usize, len: usize, seed: u64) -> Tensor<Cpu, 5> {
    let [b, _, h, w, d] = x.dims();
    let other = input::<Cpu, 5>(seed, [b, len, h, w, d], &x.device());
    x.clone()
        .slice_assign([0..b, start..start + len, 0..h, 0..w, 0..d], other)
}

#[test]
fn future_frames_never_influence_the_past() {
    let dev = Default::default();
    let f = 7;
    for window in [Some(3), None] {
        let attn = layer::<Cpu>(window, 1, &dev);
        let x = input::<Cpu, 5>(3, [2, f, 2, 3, D_MODEL], &dev);
        let y = attn.forward(x.clone(), 0);
        for t in 0..f - 1 {
            let y2 = attn.forward(perturb(&x, t + 1, f - t - 1, 100 + t as u64), 0);
            let past = max_change(&y, &y2, 0, t + 1);
            let future = max_change(&y, &y2, t + 1, f - t - 1);
            assert!(
                past <= 1e-6,
                "window {window:?}: frames <= {t} changed by {past:e} when later frames changed"
            );
            assert!(
                future > 1e-3,
                "window {window:?}: perturbing frames > {t} had no effect ({future:e})"
            );
        }
    }
}

#[test]
fn frames_older_than_the_window_never_influence_a_frame() {
    let dev = Default::default();
    let f = 9;
    for k in 1..=4 {
        let attn = layer::<Cpu>(Some(k), 2, &dev);
        let x = input::<Cpu, 5>(k as u64, [1, f, 2, 3, D_MODEL], &dev);
        let y = attn.forward(x.clone(), 0);
        for t in 0..f {
            let oldest = (t + 1).saturating_sub(k);
            if oldest > 0 {
                let y2 = attn.forward(perturb(&x, 0, oldest, 7 + t as u64), 0);
                let change = max_change(&y, &y2, t, 1);
                assert!(
                    change <= 1e-6,
                    "window {k}: frame {t} changed by {change:e} when frames < {oldest} changed"
                );
            }
            // The oldest frame inside the window does matter.
            let y3 = attn.forward(perturb(&x, oldest, 1, 50 + t as u64), 0);
            let change = max_change(&y, &y3, t, 1);
            assert!(
                change > 1e-3,
                "window {k}: frame {t} ignores frame {oldest} ({change:e})"
            );
        }
    }
}

/// Gradients of the layer (its input and W^Q) through its training path equal those through
/// the dense reference.
fn check_gradients_match_reference<B: burn::tensor::backend::AutodiffBackend>(
    window: Option<usize>,
    chunk: usize,
    frames: usize,
    tol: f64,
    dev: &B::Device,
) {
    let attn = layer::<B>(window, chunk, dev);
    let x = input::<B, 5>(8, [1, frames, 2, 3, D_MODEL], dev).require_grad();
    let r = input::<B, 5>(9, [1, frames, 2, 3, D_MODEL], dev);
    let grad_x = |y: Tensor<B, 5>| {
        let grads = (y * r.clone()).sum().backward();
        let gx = x.grad(&grads).expect("x has a gradient");
        let gw = attn.q_proj.weight.grad(&grads).expect("W^Q has a gradient");
        (gx, gw)
    };
    let (gx, gw) = grad_x(attn.forward(x.clone(), 0));
    let (rx, rw) = grad_x(attn.forward_reference(x.clone(), 0));
    let what = |name| format!("{name} training path vs reference, window {window:?}");
    assert_close(&what("dL/dx"), gx, rx, tol, 1e-6);
    assert_close(&what("dL/dW_Q"), gw, rw, tol, 1e-6);
}

#[test]
fn gradients_of_blocked_path_match_reference() {
    check_gradients_match_reference::<Autodiff<Cpu>>(Some(2), 2, 5, 1e-4, &Default::default());
    check_gradients_match_reference::<Autodiff<Cpu>>(None, 1, 5, 1e-4, &Default::default());
}

/// On a kernel backend, short clips train through the recomputing tensor ops.
fn gpu_gradients_match_reference<T: GpuTarget>() {
    let Some(dev) = T::device() else { return };
    let tol = kernels::tolerance::matmul_rel_error::<T::B>().max(1e-4);
    check_gradients_match_reference::<Autodiff<T::B>>(None, 1, 5, tol, &dev);
    check_gradients_match_reference::<Autodiff<T::B>>(Some(2), 2, 5, tol, &dev);
}

/// The attention kernels as one autodiff operation (what full causal attention over long
/// clips trains through) give the output and gradients of burn's autodiff through the dense
/// reference, with and without a window.
fn gpu_kernel_operation_matches_autodiff<T: GpuTarget>() {
    let Some(dev) = T::device() else { return };
    type A<T> = Autodiff<<T as GpuTarget>::B>;
    let tol = kernels::tolerance::matmul_rel_error::<T::B>().max(1e-4);
    let [b, nh, f, t, hd] = [2, 2, 5, 6, 8];
    let tensor = |seed| input::<A<T>, 5>(seed, [b, nh, f, t, hd], &dev);
    let r = tensor(4);
    for window in [None, Some(2)] {
        let run = |use_kernel: bool| {
            let [q, k, v] = [1, 2, 3].map(|s| tensor(s).require_grad());
            let out = if use_kernel {
                kernel_attention([&q, &k, &v], window, 0).expect("the kernel serves the call")
            } else {
                let flat = |x: Tensor<A<T>, 5>| x.reshape([b, nh, f * t, hd]);
                let mask = frame_mask::<A<T>>(f, t, window, &dev);
                reference_attention(flat(q.clone()), flat(k.clone()), flat(v.clone()), mask)
                    .reshape([b, nh, f, t, hd])
            };
            let grads = (out.clone() * r.clone()).sum().backward();
            let grad = |x: &Tensor<A<T>, 5>| x.grad(&grads).expect("input has a gradient");
            [out.inner(), grad(&q), grad(&k), grad(&v)]
        };
        let (kernel, reference) = (run(true), run(false));
        for ((name, got), want) in ["output", "dq", "dk", "dv"]
            .iter()
            .zip(kernel)
            .zip(reference)
        {
            assert_close(&format!("{name}, window {window:?}"), got, want, tol, 1e-6);
        }
    }
}

#[test]
fn axial_split_shares_pairs_evenly() {
    let s = AxialRopeSplit::for_head_dim(8);
    assert_eq!((s.rows, s.cols, s.frames), (1, 1, 2));
    let s = AxialRopeSplit::for_head_dim(64);
    assert_eq!((s.rows, s.cols, s.frames), (11, 10, 11));
    let s = AxialRopeSplit::for_head_dim(12);
    assert_eq!((s.rows, s.cols, s.frames), (2, 2, 2));
    assert!(std::panic::catch_unwind(|| AxialRopeSplit::for_head_dim(4)).is_err());
}

/// Rotate one head vector at position (row, col, frame) with the tensor helper.
fn rotate(x: &[f32], split: AxialRopeSplit, theta: f64, pos: [usize; 3]) -> Vec<f32> {
    let dev = Default::default();
    let half = x.len() / 2;
    let angles = split.angles(theta, pos[0], pos[1], pos[2]);
    let table = |f: fn(f64) -> f64| {
        let v: Vec<f32> = angles.iter().map(|&a| f(a) as f32).collect();
        Tensor::<Cpu, 2>::from_data(TensorData::new(v, [1, half]), &dev)
    };
    let x = Tensor::<Cpu, 2>::from_data(TensorData::new(x.to_vec(), [1, x.len()]), &dev);
    to_vec(apply_rope(x, table(f64::cos), table(f64::sin)))
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn rope_scores_depend_only_on_relative_position() {
    let (hd, theta) = (12, 10000.0);
    let split = AxialRopeSplit::for_head_dim(hd);
    let mut rng = Rng::new(42);
    for trial in 0..20 {
        let q: Vec<f32> = (0..hd).map(|_| rng.range_f64(-1.0, 1.0) as f32).collect();
        let k: Vec<f32> = (0..hd).map(|_| rng.range_f64(-1.0, 1.0) as f32).collect();
        let pos = |rng: &mut Rng| [rng.below(8), rng.below(8), rng.below(50)];
        let (p1, p2, s) = (pos(&mut rng), pos(&mut rng), pos(&mut rng));
        let shifted = |p: [usize; 3]| [p[0] + s[0], p[1] + s[1], p[2] + s[2]];
        let score = |a: [usize; 3], b: [usize; 3]| {
            dot(&rotate(&q, split, theta, a), &rotate(&k, split, theta, b))
        };
        let (base, moved) = (score(p1, p2), score(shifted(p1), shifted(p2)));
        assert!(
            (base - moved).abs() < 1e-4,
            "trial {trial}: q·k at {p1:?},{p2:?} = {base} but shifted by {s:?} = {moved}"
        );
        // Each axis on its own changes the score: the rotation is not trivial on any axis.
        for axis in 0..3 {
            let mut p3 = p2;
            p3[axis] += 1;
            let changed = score(p1, p3);
            assert!(
                (changed - base).abs() > 1e-4,
                "trial {trial}: moving key along axis {axis} left q·k at {base}"
            );
        }
    }
}

#[test]
fn rope_is_a_rotation_of_each_pair() {
    let split = AxialRopeSplit::for_head_dim(12);
    let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
    let pos = [3, 5, 17];
    let y = rotate(&x, split, 10000.0, pos);
    let angles = split.angles(10000.0, pos[0], pos[1], pos[2]);
    for (j, a) in angles.iter().enumerate() {
        let (x1, x2) = (x[j] as f64, x[j + 6] as f64);
        let expect = [x1 * a.cos() - x2 * a.sin(), x1 * a.sin() + x2 * a.cos()];
        assert!(
            (y[j] as f64 - expect[0]).abs() < 1e-5 && (y[j + 6] as f64 - expect[1]).abs() < 1e-5,
            "pair {j}"
        );
    }
    assert!(
        (dot(&x, &x) - dot(&y, &y)).abs() < 1e-5,
        "rotation changed the norm"
    );
}

#[test]
fn rope_tables_match_per_token_angles() {
    let dev = Default::default();
    let (split, theta, first, [f, h, w]) = (AxialRopeSplit::for_head_dim(14), 100.0, 5, [3, 2, 3]);
    let (cos, sin) = rope_tables::<Cpu>(split, theta, first, f, [h, w], &dev);
    assert_eq!(cos.dims(), [f, h * w, 7]);
    let (cos, sin) = (to_vec(cos), to_vec(sin));
    let mut i = 0;
    for frame in first..first + f {
        for row in 0..h {
            for col in 0..w {
                for a in split.angles(theta, row, col, frame) {
                    assert!(
                        (cos[i] as f64 - a.cos()).abs() < 1e-6,
                        "cos at {frame},{row},{col}"
                    );
                    assert!(
                        (sin[i] as f64 - a.sin()).abs() < 1e-6,
                        "sin at {frame},{row},{col}"
                    );
                    i += 1;
                }
            }
        }
    }
}

fn gpu_forward_and_streaming_match_reference<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    check_forward_matches_reference::<T::B>(Some(3), 2, [1, 7, 2, 3], 0, 1e-4, &device);
    check_forward_matches_reference::<T::B>(None, 1, [1, 4, 2, 3], 0, 1e-4, &device);
    check_streaming_equals_full::<T::B>(Some(3), &[3, 1, 1, 2], 1e-4, &device);
    // Single frames once the ring has wrapped: the kernel reads the held frames in slot order.
    check_streaming_equals_full::<T::B>(Some(4), &[1; 8], 1e-4, &device);
}

/// Large score tensors are computed in pieces (over blocks, batch, heads, query frames and
/// query tokens) with the same result as in one piece: every limit from "one score row at a
/// time" up to "no split" gives the unsplit output.
#[test]
fn split_score_tensors_give_the_unsplit_result() {
    let ([q, k, v], allowed, [cq, ck]) = block_problem::<Cpu>(&Default::default());
    let run = |limit| {
        masked_block_attention(
            q.clone(),
            k.clone(),
            v.clone(),
            allowed.clone(),
            [cq, ck],
            limit,
        )
    };
    let whole = run(usize::MAX);
    for limit in [1, 7, 40, 100, 500, 2_000] {
        assert_close(
            &format!("limit {limit}"),
            run(limit),
            whole.clone(),
            1e-6,
            1e-6,
        );
    }
}

/// A problem for the split and backward checks: 2 batches × 3 heads × 3 blocks of 3 query
/// frames (5 tokens each) against 4 key frames (2 tokens each); query frame i of a block sees
/// key frames i and i + 1 (and key frame 3 in block 1).
fn block_problem<B: Backend>(device: &B::Device) -> ([Tensor<B, 5>; 3], Vec<bool>, [usize; 2]) {
    let ([b, nh, n, hd], [cq, ck], [tq, tk]) = ([2, 3, 3, 4], [3, 4], [5, 2]);
    let q = input::<B, 5>(1, [b, nh, n, cq * tq, hd], device);
    let k = input::<B, 5>(2, [b, nh, n, ck * tk, hd], device);
    let v = input::<B, 5>(3, [b, nh, n, ck * tk, hd], device);
    let allowed: Vec<bool> = (0..n * cq * ck)
        .map(|x| {
            let (blk, i, j) = (x / (cq * ck), x / ck % cq, x % ck);
            j == i || j == i + 1 || (blk == 1 && j == 3)
        })
        .collect();
    ([q, k, v], allowed, [cq, ck])
}

/// The recomputing autodiff operation (`recompute.rs`) has the output and the gradients of
/// burn's autodiff through the unsplit tensor ops, for every split limit, and only for the
/// inputs that require them.
fn check_recomputing_backward<B: burn::tensor::backend::AutodiffBackend>(
    device: &B::Device,
    tol: f64,
) {
    let ([q, k, v], allowed, blocks) = block_problem::<B>(device);
    let r = input::<B, 5>(4, q.dims(), device);
    let run = |attention: &dyn Fn(Tensor<B, 5>, Tensor<B, 5>, Tensor<B, 5>) -> Tensor<B, 5>,
               track_v: bool| {
        let (q, k) = (q.clone().require_grad(), k.clone().require_grad());
        let v = if track_v {
            v.clone().require_grad()
        } else {
            v.clone()
        };
        let out = attention(q.clone(), k.clone(), v.clone());
        let grads = (out.clone() * r.clone()).sum().backward();
        let grad = |t: &Tensor<B, 5>| t.grad(&grads);
        (out.inner(), grad(&q), grad(&k), grad(&v))
    };
    for track_v in [true, false] {
        let plain = |q, k, v| masked_block_attention(q, k, v, allowed.clone(), blocks, usize::MAX);
        let (out, dq, dk, dv) = run(&plain, track_v);
        for limit in [1, 7, 40, 500, usize::MAX] {
            let recomputed = |q, k, v| block_attention(q, k, v, allowed.clone(), blocks, limit);
            let (o, gq, gk, gv) = run(&recomputed, track_v);
            let what = |name: &str| format!("{name}, limit {limit}, v tracked {track_v}");
            assert_close(&what("output"), o, out.clone(), tol, 1e-6);
            assert_close(&what("dq"), gq.unwrap(), dq.clone().unwrap(), tol, 1e-6);
            assert_close(&what("dk"), gk.unwrap(), dk.clone().unwrap(), tol, 1e-6);
            assert_eq!(gv.is_some(), track_v, "{}", what("dv present"));
            if let (Some(gv), Some(dv)) = (gv, dv.clone()) {
                assert_close(&what("dv"), gv, dv, tol, 1e-6);
            }
        }
    }
}

#[test]
fn recomputing_backward_matches_autodiff_at_every_split() {
    check_recomputing_backward::<Autodiff<Cpu>>(&Default::default(), 1e-5);
}

fn gpu_recomputing_backward_matches_autodiff<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    check_recomputing_backward::<Autodiff<T::B>>(
        &device,
        kernels::tolerance::matmul_rel_error::<T::B>().max(1e-4),
    );
}

kernels::gpu_tests!(
    gpu_forward_and_streaming_match_reference,
    gpu_gradients_match_reference,
    gpu_kernel_operation_matches_autodiff,
    gpu_recomputing_backward_matches_autodiff
);

/// `repeat_held` appends copies of the held frames, oldest first and cycling, to unbounded and
/// ring caches alike.
#[test]
fn repeat_held_appends_cycled_copies_of_the_held_frames() {
    let dev = Default::default();
    let x = input::<Cpu, 5>(23, [1, 3, 2, 3, D_MODEL], &dev);
    let held_keys = |cache: &KvCache<Cpu>| cache.held_in_frame_order().unwrap().0;
    let check = |window: Option<usize>, committed: usize, added: usize, order: &[usize]| {
        let attn = layer::<Cpu>(window, 1, &dev);
        let mut cache = attn.empty_cache();
        attn.forward_cached(frames(&x, 0, committed), &mut cache, true);
        let originals = held_keys(&cache);
        cache.repeat_held(added);
        assert_eq!(cache.frames_seen(), committed + added);
        let expected = Tensor::cat(
            order
                .iter()
                .map(|&i| originals.clone().narrow(2, i, 1))
                .collect(),
            2,
        );
        let what = format!("window {window:?}: {committed} frames + {added} repeated");
        assert_close(&what, held_keys(&cache), expected, 0.0, 0.0);
    };
    // Full attention: f0 f1 f2, then 5 more: f0 f1 f2 f0 f1.
    check(None, 3, 5, &[0, 1, 2, 0, 1, 2, 0, 1]);
    // Window 4 (a ring of 3): f0 f1, then f0 f1 f0 f1; the ring keeps the last three.
    check(Some(4), 2, 4, &[1, 0, 1]);
}
