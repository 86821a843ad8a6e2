//! Launcher of the frame-local attention kernel on CubeCL tensors.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::kernel::frame_attention_forward;

/// Query tokens per cube (one unit each).
const MAX_QUERY_TILE: usize = 32;

/// Largest head the kernel takes: the accumulator row is thread-private.
pub(crate) const MAX_HEAD_DIM: usize = 64;

/// Key tokens staged in shared memory per step: the query tile, K and V tiles and the tile's
/// scores within WebGPU's 16 KiB.
fn key_tile(query_tile: usize, head_dim: usize) -> usize {
    ((16 * 1024 / 4 - query_tile * head_dim) / (2 * head_dim + query_tile)).clamp(1, 16)
}

/// Frame-local attention into `out` (so tests can hand in a NaN-filled one).
///
/// # Shapes
/// - `q`, `out`: `[seqs, query_frames, tokens, head_dim]`
/// - `k`, `v`: `[seqs, key_frames, tokens, head_dim]`, the query frames being the last
///   `query_frames` key frames
/// - `window`: frames seen per query frame, 0 for all past frames
pub(crate) fn launch_frame_attention<R: CubeRuntime>(
    q: CubeTensor<R>,
    k: CubeTensor<R>,
    v: CubeTensor<R>,
    out: CubeTensor<R>,
    window: usize,
) {
    let shape = q.meta.shape().to_vec();
    let [seqs, query_frames, tokens, head_dim] = [shape[0], shape[1], shape[2], shape[3]];
    let key_frames = k.meta.shape()[1];
    assert!(
        key_frames >= query_frames,
        "frame attention kernel: {key_frames} key frames < {query_frames} query frames"
    );
    assert!(
        super::supports(head_dim),
        "frame attention kernel: head_dim {head_dim} > {MAX_HEAD_DIM}"
    );
    let query_tile = tokens.min(MAX_QUERY_TILE);
    let tiles = tokens.div_ceil(query_tile);
    let client = q.client.clone();
    frame_attention_forward::launch::<f32, R>(
        &client,
        CubeCount::Static((query_frames * tiles) as u32, seqs as u32, 1),
        CubeDim::new_1d(query_tile as u32),
        q.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        out.into_tensor_arg(),
        query_frames as u32,
        key_frames as u32,
        tokens as u32,
        window as u32,
        head_dim,
        query_tile,
        key_tile(query_tile, head_dim),
    );
}
