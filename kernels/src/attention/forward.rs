//! Launcher of the frame-local attention kernel on CubeCL tensors.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::kernel::{combine_splits, frame_attention_forward};
use super::mma::{self, Path};
use crate::dispatch::{empty_f32, Knob};

/// Query tokens per cube (one unit each).
const MAX_QUERY_TILE: usize = 32;

/// Query rows × key splits to aim for: enough units to fill a large GPU.
const TARGET_UNITS: usize = 1 << 17;

/// Fewest keys a split handles, unless [`SPLIT_KEYS_ENV`] says otherwise. Measured on an H200
/// with the shipped `maze-small` dreaming (one 256-token frame against 9 held ones, 4 heads:
/// `memworld bench dream`, frame 1,000): 28.6 / 29.5 / 29.3 ms a dreamed frame with 32 / 64 /
/// 128 keys per split. (Before the kernel kept its query row in registers and its split
/// results element-major, 64 was best: 42.0 / 37.8 / 41.3 ms, and 256 / 640 keys gave 53.4 /
/// 91.0 ms.) Fewer splits write and merge fewer partial rows, more keep more cubes busy.
const MIN_KEYS_PER_SPLIT: usize = 32;

/// A benchmarking knob: the fewest keys a split handles (a positive integer).
pub const SPLIT_KEYS_ENV: &str = "MEMWORLD_ATTENTION_SPLIT_KEYS";

static KEYS_PER_SPLIT: Knob = Knob::new(SPLIT_KEYS_ENV, MIN_KEYS_PER_SPLIT);

/// Key splits for a call: one when there are query rows enough to fill the GPU (training
/// shapes), more for the few rows of a streamed frame (flash-decoding).
fn key_splits(rows: usize, visible_keys: usize) -> usize {
    let by_rows = (TARGET_UNITS / rows.max(1)).max(1);
    let by_keys = (visible_keys / KEYS_PER_SPLIT.get()).max(1);
    by_rows.min(by_keys).min(1024)
}

/// Largest head the kernel takes: the accumulator row is thread-private.
pub(crate) const MAX_HEAD_DIM: usize = 64;

/// Key tokens staged in shared memory per step: the K and V tiles and the units' score rows
/// (padded by one value, see the kernel) within WebGPU's 16 KiB.
fn key_tile(query_tile: usize, head_dim: usize) -> usize {
    ((16 * 1024 / 4 - query_tile) / (2 * head_dim + query_tile)).clamp(1, 16)
}

/// Values of a head read and multiplied together (the kernel's vector width): 4 where the
/// head divides into fours, else 2 or 1.
pub(crate) fn vector_width(head_dim: usize) -> usize {
    [4, 2, 1]
        .into_iter()
        .find(|w| head_dim % w == 0)
        .unwrap_or(1)
}

/// How [`launch_frame_attention`] lays out its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputLayout {
    /// `[seqs, query_frames, tokens, head_dim]`, like the queries.
    HeadsMajor,
    /// `[seqs / heads, query_frames, tokens, heads, head_dim]`: heads merged, as the output
    /// projection reads them (sequence `s` being batch `s / heads`, head `s % heads`).
    TokenMajor { heads: usize },
}

/// Frame-local attention into `out` (so tests can hand in a NaN-filled one).
///
/// # Shapes
/// - `q`, `out`: `[seqs, query_frames, tokens, head_dim]`
/// - `held`: keys and values `[seqs, held_frames, tokens, head_dim]` before those of `k`, `v`
/// - `k`, `v`: `[seqs, new_frames, tokens, head_dim]`; the key frames are the held ones then
///   these, the query frames being the last `query_frames` of them
/// - `window`: frames seen per query frame, 0 for all past frames
/// - `splits`: key ranges per query row merged afterwards (`None`: chosen by [`key_splits`])
/// - `out`: as `layout` says, `[seqs, query_frames, tokens, head_dim]` elements either way
/// - `lse`: where given, receives each query row's log-sum-exp of its scaled scores,
///   `[seqs, query_frames, tokens]` (for the backward pass)
///
/// With `Path::Auto`, a call without held frames whose rows fill the GPU without key splits
/// (training shapes), heads-major, runs on the tensor cores where [`mma::serves`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_frame_attention<R: CubeRuntime>(
    q: CubeTensor<R>,
    held: Option<(CubeTensor<R>, CubeTensor<R>)>,
    k: CubeTensor<R>,
    v: CubeTensor<R>,
    out: CubeTensor<R>,
    lse: Option<CubeTensor<R>>,
    layout: OutputLayout,
    window: usize,
    splits: Option<usize>,
    path: Path,
) {
    let shape = q.meta.shape().to_vec();
    let [seqs, query_frames, tokens, head_dim] = [shape[0], shape[1], shape[2], shape[3]];
    let (heads, token_major) = match layout {
        OutputLayout::HeadsMajor => (1, false),
        OutputLayout::TokenMajor { heads } => (heads, true),
    };
    assert_eq!(
        seqs % heads,
        0,
        "frame attention kernel: {seqs} sequences are not batches of {heads} heads"
    );
    assert_eq!(
        out.meta.shape().num_elements(),
        seqs * query_frames * tokens * head_dim,
        "frame attention kernel: output size"
    );
    let held_frames = held.as_ref().map_or(0, |(hk, _)| hk.meta.shape()[1]);
    if let Some((hk, hv)) = &held {
        for (t, what) in [(hk, "held keys"), (hv, "held values")] {
            assert_eq!(
                t.meta.shape().to_vec(),
                [seqs, held_frames, tokens, head_dim],
                "frame attention kernel: {what} shape"
            );
        }
    }
    // Without held frames the kernel reads none: any tensor stands in.
    let (held_k, held_v) = held.unwrap_or_else(|| (k.clone(), v.clone()));
    let key_frames = held_frames + k.meta.shape()[1];
    assert!(
        key_frames >= query_frames,
        "frame attention kernel: {key_frames} key frames < {query_frames} query frames"
    );
    assert!(
        head_dim <= MAX_HEAD_DIM,
        "frame attention kernel: head_dim {head_dim} > {MAX_HEAD_DIM}"
    );
    let query_tile = tokens.min(MAX_QUERY_TILE);
    let tiles = tokens.div_ceil(query_tile);
    let splits = splits.unwrap_or_else(|| {
        let visible_frames = if window == 0 {
            key_frames
        } else {
            window.min(key_frames)
        };
        key_splits(seqs * query_frames * tokens, visible_frames * tokens)
    });
    if path == Path::Auto
        && held_frames == 0
        && splits == 1
        && layout == OutputLayout::HeadsMajor
        && mma::serves(&q.client, head_dim)
    {
        mma::launch_forward([q, k, v], out, lse, window);
        return;
    }
    assert!(
        splits >= 1,
        "frame attention kernel: at least one key split"
    );
    // Partial results (accumulator, max, normaliser per row and split) when keys are split.
    let partial_shape = match splits {
        1 => vec![1],
        _ => vec![splits, head_dim + 2, seqs * query_frames * tokens],
    };
    let partial = empty_f32(&q, &partial_shape);
    let write_lse = lse.is_some();
    if let Some(lse) = &lse {
        assert_eq!(
            lse.meta.shape().num_elements(),
            seqs * query_frames * tokens,
            "frame attention kernel: log-sum-exp size"
        );
    }
    // Without `lse` the kernels write none: a one-element buffer stands in (its own, so no
    // buffer is bound twice for writing).
    let lse = lse.unwrap_or_else(|| empty_f32(&q, &[1]));
    let width = vector_width(head_dim);
    let client = q.client.clone();
    frame_attention_forward::launch::<f32, R>(
        &client,
        CubeCount::Static((query_frames * tiles) as u32, seqs as u32, splits as u32),
        CubeDim::new_1d(query_tile as u32),
        width,
        q.into_tensor_arg(),
        held_k.into_tensor_arg(),
        held_v.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        partial.clone().into_tensor_arg(),
        lse.clone().into_tensor_arg(),
        query_frames as u32,
        held_frames as u32,
        key_frames as u32,
        tokens as u32,
        window as u32,
        splits as u32,
        heads as u32,
        head_dim,
        head_dim / width,
        query_tile,
        key_tile(query_tile, head_dim),
        token_major,
        write_lse,
    );
    if splits > 1 {
        let elements = seqs * query_frames * tokens * head_dim;
        combine_splits::launch::<f32, R>(
            &client,
            CubeCount::Static(elements.div_ceil(256) as u32, 1, 1),
            CubeDim::new_1d(256),
            partial.into_tensor_arg(),
            out.into_tensor_arg(),
            lse.into_tensor_arg(),
            splits as u32,
            heads as u32,
            (query_frames * tokens) as u32,
            head_dim,
            token_major,
            write_lse,
        );
    }
}
