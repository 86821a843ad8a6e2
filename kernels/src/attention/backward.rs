//! Launcher of the frame-local attention backward kernels on CubeCL tensors.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::backward_kernel::{attention_backward_key, attention_backward_query};
use super::forward::{vector_width, MAX_HEAD_DIM};
use crate::dispatch::empty_f32;

/// Floats of shared memory a cube may use: WebGPU's 16 KiB.
const SHARED_FLOATS: usize = 16 * 1024 / 4;

/// Rows per cube (one unit each, its own rows in registers).
fn units(tokens: usize) -> usize {
    tokens.min(32)
}

/// Rows of the other side staged per step in shared memory (two rows of the head each, plus
/// `extra` floats per row), at most 16.
fn tile(head_dim: usize, extra: usize) -> usize {
    (SHARED_FLOATS / (2 * head_dim + extra)).clamp(1, 16)
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
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_frame_attention_backward<R: CubeRuntime>(
    [q, k, v, o, dout]: [CubeTensor<R>; 5],
    lse: CubeTensor<R>,
    [dq, dk, dv]: [CubeTensor<R>; 3],
    window: usize,
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
