//! Launcher of the frame-local attention backward kernels on CubeCL tensors.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::backward_kernel::{attention_backward_key, attention_backward_query};
use super::forward::{vector_width, MAX_HEAD_DIM};
use super::mma::{self, Path};
use crate::dispatch::{empty_f32, Knob};

/// Floats of shared memory a cube may use: WebGPU's 16 KiB.
const SHARED_FLOATS: usize = 16 * 1024 / 4;

/// Rows per cube (one unit each, its own rows in registers), unless [`ROWS_ENV`] says
/// otherwise. Measured on an H200 (`memworld bench kernels --ops attention-backward`, forward
/// + backward against the tensor ops, heads of 64), rows per cube × [`MAX_TILE`]:
///
/// | rows × tile | windowed, batch 8, 16 / 64 frames | full causal, batch 1, 16 / 64 frames |
/// |---|---|---|
/// | 32 × 16 | 2.03× / 1.90× | 1.11× / 2.88× |
/// | 64 × 16 | 2.14× / 1.98× | 1.20× / 3.04× |
/// | 128 × 16 | 2.16× / 1.98× | 1.11× / 3.31× |
/// | 32 × 32 | 2.02× / 1.90× | 1.08× / 2.83× |
/// | 64 × 32 | 2.15× / 1.98× | 1.17× / 3.14× |
/// | **128 × 32** | **2.23× / 2.03×** | **1.18× / 3.44×** |
/// | 256 × 32 | 2.17× / 1.96× | 0.97× / 3.29× |
///
/// More rows share each staged tile, so fewer loads per row; past 128 too few cubes are left.
/// Training `maze-small` (batch 8 × 16 frames) ran at 62.4k tokens/s with 128 × 32 and 63.2k
/// with 32 × 16: the gain is within an update's noise there.
const ROWS_PER_CUBE: usize = 128;

/// Most rows of the other side staged per step, unless [`TILE_ENV`] says otherwise (see
/// [`ROWS_PER_CUBE`]); shared memory bounds it to 31–32 for heads of 64.
const MAX_TILE: usize = 32;

/// A benchmarking knob: rows per cube of the backward kernels (at most 256, WebGPU's largest
/// workgroup).
pub const ROWS_ENV: &str = "MEMWORLD_ATTENTION_BACKWARD_ROWS";

/// A benchmarking knob: the most rows of the other side the backward kernels stage per step
/// (shared memory bounds it too).
pub const TILE_ENV: &str = "MEMWORLD_ATTENTION_BACKWARD_TILE";

static ROWS: Knob = Knob::new(ROWS_ENV, ROWS_PER_CUBE);
static TILE: Knob = Knob::new(TILE_ENV, MAX_TILE);

/// Rows per cube for frames of `tokens` tokens.
fn units(tokens: usize) -> usize {
    tokens.min(ROWS.get()).min(256)
}

/// Rows of the other side staged per step in shared memory (two rows of the head each, plus
/// `extra` floats per row).
fn tile(head_dim: usize, extra: usize) -> usize {
    (SHARED_FLOATS / (2 * head_dim + extra)).clamp(1, TILE.get())
}

/// Gradients of frame-local attention into `dq`, `dk`, `dv` (so tests can hand in NaN-filled
/// ones), given the forward's output `o` and row log-sum-exps `lse` and the output gradient
/// `dout`.
///
/// # Shapes
/// - `q`, `o`, `dout`, `dq`: `[seqs, query_frames, tokens, head_dim]`
/// - `k`, `v`, `dk`, `dv`: `[seqs, key_frames, tokens, head_dim]`, the query frames being the
///   last `query_frames` key frames
/// - `lse`: `[seqs, query_frames, tokens]`
/// - `window`: frames seen per query frame, 0 for all past frames
///
/// With `Path::Auto` the gradients come from the tensor-core kernels where [`mma::serves`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_frame_attention_backward<R: CubeRuntime>(
    [q, k, v, o, dout]: [CubeTensor<R>; 5],
    lse: CubeTensor<R>,
    [dq, dk, dv]: [CubeTensor<R>; 3],
    window: usize,
    path: Path,
) {
    let shape = q.meta.shape().to_vec();
    let [seqs, query_frames, tokens, head_dim] = [shape[0], shape[1], shape[2], shape[3]];
    let key_frames = k.meta.shape()[1];
    assert!(
        key_frames >= query_frames,
        "frame attention backward: {key_frames} key frames < {query_frames} query frames"
    );
    assert!(
        head_dim <= MAX_HEAD_DIM,
        "frame attention backward: head_dim {head_dim} > {MAX_HEAD_DIM}"
    );
    assert_eq!(
        lse.meta.shape().num_elements(),
        seqs * query_frames * tokens,
        "frame attention backward: log-sum-exp size"
    );
    if path == Path::Auto && mma::serves(&q.client, head_dim) {
        mma::launch_backward([q, k, v, o, dout], lse, [dq, dk, dv], window);
        return;
    }
    let deltas = empty_f32(&q, &[seqs * query_frames * tokens]);
    let units = units(tokens);
    let tiles = tokens.div_ceil(units) as u32;
    let client = q.client.clone();
    let width = vector_width(head_dim);
    attention_backward_query::launch::<f32, R>(
        &client,
        CubeCount::Static(query_frames as u32 * tiles, seqs as u32, 1),
        CubeDim::new_1d(units as u32),
        width,
        q.clone().into_tensor_arg(),
        k.clone().into_tensor_arg(),
        v.clone().into_tensor_arg(),
        o.into_tensor_arg(),
        dout.clone().into_tensor_arg(),
        lse.clone().into_tensor_arg(),
        dq.into_tensor_arg(),
        deltas.clone().into_tensor_arg(),
        query_frames as u32,
        key_frames as u32,
        tokens as u32,
        window as u32,
        head_dim,
        head_dim / width,
        units,
        tile(head_dim, 0),
    );
    for (grad, values) in [(dv, true), (dk, false)] {
        attention_backward_key::launch::<f32, R>(
            &client,
            CubeCount::Static(key_frames as u32 * tiles, seqs as u32, 1),
            CubeDim::new_1d(units as u32),
            width,
            q.clone().into_tensor_arg(),
            k.clone().into_tensor_arg(),
            v.clone().into_tensor_arg(),
            dout.clone().into_tensor_arg(),
            lse.clone().into_tensor_arg(),
            deltas.clone().into_tensor_arg(),
            grad.into_tensor_arg(),
            query_frames as u32,
            key_frames as u32,
            tokens as u32,
            window as u32,
            head_dim,
            head_dim / width,
            units,
            tile(head_dim, 2),
            values,
        );
    }
}
