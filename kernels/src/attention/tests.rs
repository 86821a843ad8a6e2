//! Frame-local attention kernel against the host f64 softmax on wgpu (lavapipe in CI) and
//! CUDA: spatial blocks of 1×1, 2×2, 4×8 tokens and a whole 16×16 frame, windows of 1 and 3
//! frames and none, training-shaped and streaming-shaped calls, outputs pre-filled with NaN;
//! the backward kernels against the host gradients on the same kinds of shapes; and, where the
//! device has them (CUDA), the tensor-core kernels on shapes that leave partial tiles.

use burn::tensor::{Tensor, TensorData};

use super::backward::launch_frame_attention_backward;
use super::forward::{launch_frame_attention, OutputLayout};
use super::mma::{self, Path};
use super::reference::{
    frame_attention_backward_host, frame_attention_host, frame_attention_lse_host,
};
use crate::testing::{cube_input, host, nan_output, uniform, Device, GpuTarget};
use crate::tolerance::{assert_close_slices, to_vec};

/// Frames `range` of every sequence of `[seqs, frames, frame_len]` values.
fn frames_of(x: &[f32], seqs: usize, frames: usize, range: std::ops::Range<usize>) -> Vec<f32> {
    let frame_len = x.len() / (seqs * frames);
    (0..seqs)
        .flat_map(|s| {
            x[(s * frames + range.start) * frame_len..(s * frames + range.end) * frame_len]
                .iter()
                .copied()
        })
        .collect()
}

/// The kernel against the host softmax, the first `held` key frames handed in as held frames
/// (a cache's) and the rest as the call's own; with `with_lse` also the rows' log-sum-exps
/// (written NaN-filled) against the host's.
#[allow(clippy::too_many_arguments)]
fn check<T: GpuTarget>(
    [seqs, query_frames, key_frames, tokens, head_dim]: [usize; 5],
    window: Option<usize>,
    splits: Option<usize>,
    held: usize,
    layout: OutputLayout,
    with_lse: bool,
    seed: u64,
    device: &Device<T>,
    path: Path,
) {
    let q_shape = [seqs, query_frames, tokens, head_dim];
    let k_shape = [seqs, key_frames, tokens, head_dim];
    let n_q = q_shape.iter().product();
    let n_k = k_shape.iter().product();
    let q = uniform(n_q, -2.0, 2.0, seed);
    let k = uniform(n_k, -2.0, 2.0, seed + 1);
    let v = uniform(n_k, -1.0, 1.0, seed + 2);
    let out = nan_output::<T, 4>(q_shape, device);
    let part = |x: &[f32], range: std::ops::Range<usize>| {
        let shape = [seqs, range.len(), tokens, head_dim];
        cube_input::<T, 4>(&frames_of(x, seqs, key_frames, range), shape, device)
    };
    let held_kv = (held > 0).then(|| (part(&k, 0..held), part(&v, 0..held)));
    let lse = with_lse.then(|| nan_output::<T, 3>([seqs, query_frames, tokens], device));
    launch_frame_attention::<T::R>(
        cube_input::<T, 4>(&q, q_shape, device),
        held_kv,
        part(&k, held..key_frames),
        part(&v, held..key_frames),
        out.clone(),
        lse.clone(),
        layout,
        window.unwrap_or(0),
        splits,
        path,
    );
    let dims = [seqs, query_frames, key_frames, tokens, head_dim];
    let what = format!(
        "attention q{query_frames}/k{key_frames} frames ({held} held), {tokens} tokens, window {window:?}, splits {splits:?}, {layout:?}, {path:?}"
    );
    let (rel_tol, abs_tol) = tolerance(path);
    if let Some(lse) = lse {
        let expected = frame_attention_lse_host(dims, &q, &k, window);
        assert_close_slices(
            &format!("{what}: lse"),
            &host::<T, 3>(lse),
            &expected,
            rel_tol,
            abs_tol,
        );
    }
    let mut expected = frame_attention_host(dims, &q, &k, &v, window);
    if let OutputLayout::TokenMajor { heads } = layout {
        // [batch·heads, rows, head_dim] → [batch, rows, heads, head_dim]
        let rows = query_frames * tokens;
        let heads_major = expected.clone();
        for (i, value) in heads_major.into_iter().enumerate() {
            let (e, row, sh) = (i % head_dim, (i / head_dim) % rows, i / head_dim / rows);
            expected[((sh / heads * rows + row) * heads + sh % heads) * head_dim + e] = value;
        }
    }
    assert_close_slices(&what, &host::<T, 4>(out), &expected, rel_tol, abs_tol);
}

/// Relative and absolute tolerance of a kernel path against the f64 host: f32 rounding for the
/// one-row-per-unit kernels; TF32 operands (10 mantissa bits, ~5e-4 each) for the tensor-core
/// ones, whose scores (|s| up to ~10 with these inputs) then carry ~1e-3 of error.
fn tolerance(path: Path) -> (f64, f64) {
    match path {
        Path::Rows => (1e-4, 1e-5),
        Path::Auto => (5e-3, 1e-3),
    }
}

fn kernel_equals_host_softmax_on_awkward_shapes<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // [seqs, query frames, key frames, tokens per frame, head_dim]
    let cases: [([usize; 5], Option<usize>); 9] = [
        ([1, 1, 1, 1, 6], None),
        ([2, 5, 5, 4, 6], Some(3)),
        ([3, 4, 4, 32, 8], Some(1)),
        ([1, 6, 6, 32, 12], None),
        // the world model's heads (64) on whole 16×16-token frames
        ([1, 4, 4, 256, 64], Some(3)),
        ([2, 3, 3, 65, 6], Some(2)),
        ([1, 2, 2, 256, 16], Some(2)),
        // streaming: one new frame against two cached ones, and two against five
        ([2, 1, 3, 4, 6], Some(3)),
        ([1, 2, 7, 32, 8], None),
    ];
    for (k, (shape, window)) in cases.into_iter().enumerate() {
        check::<T>(
            shape,
            window,
            None,
            0,
            OutputLayout::HeadsMajor,
            true,
            100 + 3 * k as u64,
            &device,
            Path::Rows,
        );
    }
}

/// Keys of earlier frames handed in as held frames (a cache's, not copied next to the new
/// ones): all earlier frames, some of them, and a tile of keys that straddles the boundary
/// (tokens not a multiple of the key tile); outputs heads-major and with the heads merged.
fn held_frames_equal_one_tensor<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // Token-major output with 2 or 3 heads per batch, split keys among them.
    let (separate, merged) = (OutputLayout::HeadsMajor, |heads| OutputLayout::TokenMajor {
        heads,
    });
    for (k, (shape, window, splits, held, layout)) in [
        ([2, 1, 3, 4, 6], Some(3), None, 2, separate),
        ([1, 2, 7, 32, 8], None, None, 5, separate),
        ([1, 2, 7, 32, 8], None, None, 3, merged(1)),
        ([6, 1, 4, 13, 6], Some(3), Some(3), 3, merged(3)),
        ([4, 2, 5, 9, 8], Some(4), Some(1), 3, merged(2)),
        ([2, 1, 10, 256, 64], Some(10), None, 9, merged(2)),
    ]
    .into_iter()
    .enumerate()
    {
        check::<T>(
            shape,
            window,
            splits,
            held,
            layout,
            false,
            300 + 3 * k as u64,
            &device,
            Path::Rows,
        );
    }
}

/// Keys split into ranges merged afterwards (the streaming shape's flash-decoding path): more
/// splits than visible key frames, ranges that cut frames and tiles, empty ranges.
fn split_keys_equal_one_pass<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    for (k, (shape, window, splits)) in [
        ([2, 1, 3, 4, 6], Some(3), 2),
        ([1, 1, 5, 32, 8], None, 7),
        ([1, 2, 6, 65, 16], Some(4), 5),
        ([3, 1, 2, 1, 6], Some(2), 4), // 2 visible keys, 4 splits: two are empty
        ([1, 1, 10, 256, 64], Some(10), 40),
    ]
    .into_iter()
    .enumerate()
    {
        let layout = OutputLayout::HeadsMajor;
        check::<T>(
            shape,
            window,
            Some(splits),
            0,
            layout,
            true,
            200 + 3 * k as u64,
            &device,
            Path::Rows,
        );
    }
}

fn public_entry_point_matches_the_host_reference<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let [b, h, f, t, d] = [2, 3, 4, 5, 6];
    let q = uniform(b * h * f * t * d, -1.0, 1.0, 1);
    let k = uniform(b * h * f * t * d, -1.0, 1.0, 2);
    let v = uniform(b * h * f * t * d, -1.0, 1.0, 3);
    let tensor = |x: &Vec<f32>| {
        Tensor::<T::B, 5>::from_data(TensorData::new(x.clone(), [b, h, f, t, d]), &device)
    };
    let out = super::frame_attention(tensor(&q), tensor(&k), tensor(&v), Some(2));
    let dims = [b * h, f, f, t, d];
    let expected = frame_attention_host(dims, &q, &k, &v, Some(2));
    assert_close_slices("attention", &to_vec(out), &expected, 1e-4, 1e-5);
    let (out, lse) = super::frame_attention_with_lse(tensor(&q), tensor(&k), tensor(&v), Some(2));
    assert_close_slices("attention", &to_vec(out), &expected, 1e-4, 1e-5);
    assert_eq!(lse.dims(), [b, h, f, t]);
    let expected = frame_attention_lse_host(dims, &q, &k, Some(2));
    assert_close_slices("attention lse", &to_vec(lse), &expected, 1e-4, 1e-5);
}

/// The backward kernels' `dq`, `dk`, `dv` against the host gradients, for the forward's own
/// output and a random output gradient; gradients pre-filled with NaN.
fn check_backward<T: GpuTarget>(
    [seqs, query_frames, key_frames, tokens, head_dim]: [usize; 5],
    window: Option<usize>,
    seed: u64,
    device: &Device<T>,
    path: Path,
) {
    let dims = [seqs, query_frames, key_frames, tokens, head_dim];
    let q_shape = [seqs, query_frames, tokens, head_dim];
    let k_shape = [seqs, key_frames, tokens, head_dim];
    let (n_q, n_k) = (q_shape.iter().product(), k_shape.iter().product());
    let q = uniform(n_q, -2.0, 2.0, seed);
    let k = uniform(n_k, -2.0, 2.0, seed + 1);
    let v = uniform(n_k, -1.0, 1.0, seed + 2);
    let dout = uniform(n_q, -1.0, 1.0, seed + 3);
    let o = frame_attention_host(dims, &q, &k, &v, window);
    let lse = frame_attention_lse_host(dims, &q, &k, window);
    let grads = [
        nan_output::<T, 4>(q_shape, device),
        nan_output::<T, 4>(k_shape, device),
        nan_output::<T, 4>(k_shape, device),
    ];
    launch_frame_attention_backward::<T::R>(
        [
            cube_input::<T, 4>(&q, q_shape, device),
            cube_input::<T, 4>(&k, k_shape, device),
            cube_input::<T, 4>(&v, k_shape, device),
            cube_input::<T, 4>(&o, q_shape, device),
            cube_input::<T, 4>(&dout, q_shape, device),
        ],
        cube_input::<T, 3>(&lse, [seqs, query_frames, tokens], device),
        grads.clone(),
        window.unwrap_or(0),
        path,
    );
    let (rel_tol, abs_tol) = tolerance(path);
    let expected = frame_attention_backward_host(dims, [&q, &k, &v, &dout], window);
    for ((name, got), want) in ["dq", "dk", "dv"].into_iter().zip(grads).zip(expected) {
        assert_close_slices(
            &format!("attention {name}, q{query_frames}/k{key_frames} frames, {tokens} tokens, head {head_dim}, window {window:?}, {path:?}"),
            &host::<T, 4>(got),
            &want,
            rel_tol,
            abs_tol,
        );
    }
}

fn backward_kernels_equal_host_gradients<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // [seqs, query frames, key frames, tokens per frame, head_dim]
    let cases: [([usize; 5], Option<usize>); 8] = [
        ([1, 1, 1, 1, 6], None),
        ([2, 5, 5, 4, 6], Some(3)),
        ([3, 4, 4, 33, 8], Some(1)),
        ([1, 6, 6, 32, 12], None),
        ([1, 3, 3, 256, 64], Some(2)),
        ([2, 3, 3, 65, 16], None),
        // query frames after held ones: held frames get key gradients from the frames that
        // see them, the oldest (outside every window) none
        ([2, 1, 3, 4, 6], Some(2)),
        ([1, 2, 7, 32, 8], None),
    ];
    for (k, (shape, window)) in cases.into_iter().enumerate() {
        check_backward::<T>(shape, window, 300 + 5 * k as u64, &device, Path::Rows);
    }
}

/// The tensor-core kernels (forward with its log-sum-exps, and backward) against the host,
/// where the device has them (CUDA; lavapipe has no TF32 products and skips): heads of 32 and
/// 64, token counts that leave partial tiles of query rows (64) and keys (32), windows, more
/// key frames than query frames (the earliest seen by none), one token.
fn tensor_core_kernels_equal_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let probe = cube_input::<T, 1>(&[0.0], [1], &device);
    if !mma::serves(&probe.client, 64) {
        eprintln!("attention: no tensor-core kernels on this device; skipped");
        return;
    }
    let cases: [([usize; 5], Option<usize>); 7] = [
        ([1, 1, 1, 1, 32], None),
        ([2, 5, 5, 20, 32], Some(3)),
        ([1, 4, 4, 256, 64], Some(3)),
        ([3, 3, 3, 65, 64], None),
        ([2, 6, 6, 33, 32], Some(2)),
        ([1, 2, 7, 32, 64], None),
        ([1, 3, 5, 100, 64], Some(2)),
    ];
    for (k, (shape, window)) in cases.into_iter().enumerate() {
        let seed = 500 + 5 * k as u64;
        let layout = OutputLayout::HeadsMajor;
        check::<T>(
            shape,
            window,
            Some(1),
            0,
            layout,
            true,
            seed,
            &device,
            Path::Auto,
        );
        check_backward::<T>(shape, window, seed, &device, Path::Auto);
    }
}

crate::gpu_tests!(
    backward_kernels_equal_host_gradients,
    tensor_core_kernels_equal_host,
    kernel_equals_host_softmax_on_awkward_shapes,
    split_keys_equal_one_pass,
    held_frames_equal_one_tensor,
    public_entry_point_matches_the_host_reference,
);
