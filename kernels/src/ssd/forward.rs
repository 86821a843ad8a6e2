//! Launchers of the SSD kernels on CubeCL tensors: shape checks, output allocation, grid.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::kernel::{chunk_state_scan, chunked_ssd_forward, ssd_step_forward, STEP_MAX_UNITS};
use crate::dispatch::row_grid;

/// Shared-memory budget of one cube, in f32 elements: WebGPU's guaranteed 16 KiB.
const SHARED_F32: usize = 16 * 1024 / 4;

/// Largest state row a unit keeps in registers (see the kernel's note on private arrays).
pub(crate) const MAX_D_STATE: usize = 64;

/// Largest head a cube serves (one unit per channel).
pub(crate) const MAX_HEAD_DIM: usize = 256;

/// Steps per chunk inside the kernel: the largest power of two ≤ 16 whose tiles (B, C, G,
/// Δx and the prefix sums) fit [`SHARED_F32`]; `None` when not even one step fits. The result
/// does not depend on it (any chunking is exact).
pub(crate) fn kernel_chunk(head_dim: usize, d_state: usize) -> Option<usize> {
    let fits = |l: usize| 2 * l * d_state + l * l + l * head_dim + l <= SHARED_F32;
    (0..=4).rev().map(|e| 1usize << e).find(|&l| fits(l))
}

/// Chunked SSD forward into the given outputs (so tests can hand in NaN-filled ones).
///
/// # Shapes
/// - `x`: `[batch, seq, heads, head_dim]`, `dt`: `[batch, seq, heads]`, `a`: `[heads]`
/// - `b`, `c`: `[batch, seq, groups, d_state]`
/// - `initial_state`, `final_state`: `[batch, heads, head_dim, d_state]`
/// - `y`: `[batch, seq, heads, head_dim]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_chunked_ssd<R: CubeRuntime>(
    x: CubeTensor<R>,
    dt: CubeTensor<R>,
    a: CubeTensor<R>,
    b: CubeTensor<R>,
    c: CubeTensor<R>,
    initial_state: CubeTensor<R>,
    y: CubeTensor<R>,
    final_state: CubeTensor<R>,
) {
    let [batch, seq, heads, head_dim] = dims4(&x);
    let [_, _, groups, d_state] = dims4(&b);
    let chunk = kernel_chunk(head_dim, d_state)
        .filter(|_| super::supports(head_dim, d_state))
        .unwrap_or_else(|| {
            panic!("SSD kernel: head_dim {head_dim} / d_state {d_state} unsupported")
        })
        // A streamed frame's short block sequences (4 tokens for 2×2 blocks) would otherwise
        // fill most of every chunk's tiles with padding.
        .min(seq.next_power_of_two());
    let client = x.client.clone();
    chunked_ssd_forward::launch::<f32, R>(
        &client,
        CubeCount::Static(heads as u32, batch as u32, 1),
        CubeDim::new_1d(head_dim as u32),
        x.into_tensor_arg(),
        dt.into_tensor_arg(),
        a.into_tensor_arg(),
        b.into_tensor_arg(),
        c.into_tensor_arg(),
        initial_state.into_tensor_arg(),
        y.into_tensor_arg(),
        final_state.into_tensor_arg(),
        seq as u32,
        heads as u32,
        groups as u32,
        head_dim,
        d_state,
        chunk,
    );
}

/// One SSD step into the given outputs.
///
/// # Shapes
/// - `x`, `y`: `[batch, heads, head_dim]`, `dt`: `[batch, heads]`, `a`: `[heads]`
/// - `b`, `c`: `[batch, groups, d_state]`
/// - `state`, `new_state`: `[batch, heads, head_dim, d_state]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_ssd_step<R: CubeRuntime>(
    x: CubeTensor<R>,
    dt: CubeTensor<R>,
    a: CubeTensor<R>,
    b: CubeTensor<R>,
    c: CubeTensor<R>,
    state: CubeTensor<R>,
    y: CubeTensor<R>,
    new_state: CubeTensor<R>,
) {
    let [batch, heads, head_dim, d_state] = dims4(&state);
    let groups = b.meta.shape()[1];
    let lanes = step_lanes(d_state);
    let seq_heads = batch * heads;
    let client = x.client.clone();
    // Units a cube: `lanes` per row for every row of a head, in whole warps, at most
    // STEP_MAX_UNITS.
    let units = (lanes * head_dim)
        .div_ceil(32)
        .clamp(1, STEP_MAX_UNITS / 32)
        * 32;
    ssd_step_forward::launch::<f32, R>(
        &client,
        row_grid(seq_heads),
        CubeDim::new_1d(units as u32),
        x.into_tensor_arg(),
        dt.into_tensor_arg(),
        a.into_tensor_arg(),
        b.into_tensor_arg(),
        c.into_tensor_arg(),
        state.into_tensor_arg(),
        y.into_tensor_arg(),
        new_state.into_tensor_arg(),
        seq_heads as u32,
        heads as u32,
        groups as u32,
        head_dim,
        d_state,
        lanes,
    );
}

/// Units of the step kernel that share a row of the state: 8 (a row's 32-byte sectors read
/// whole by consecutive units), fewer for rows of fewer elements.
pub(crate) fn step_lanes(d_state: usize) -> usize {
    d_state.next_power_of_two().clamp(1, 8)
}

/// The chunk scan into the given outputs (see the kernel for the recurrence).
///
/// # Shapes
/// - `log_decay`: `[rows, chunks]`, `local`, `states`: `[rows, chunks, width]`
/// - `initial`, `last`: `[rows, width]`
pub(crate) fn launch_chunk_scan<R: CubeRuntime>(
    log_decay: CubeTensor<R>,
    local: CubeTensor<R>,
    initial: CubeTensor<R>,
    states: CubeTensor<R>,
    last: CubeTensor<R>,
    reverse: bool,
) {
    let shape = local.meta.shape();
    let [rows, chunks, width] = [shape[0], shape[1], shape[2]];
    let client = local.client.clone();
    let units = 256;
    chunk_state_scan::launch::<f32, R>(
        &client,
        CubeCount::Static(width.div_ceil(units) as u32, rows as u32, 1),
        CubeDim::new_1d(units as u32),
        log_decay.into_tensor_arg(),
        local.into_tensor_arg(),
        initial.into_tensor_arg(),
        states.into_tensor_arg(),
        last.into_tensor_arg(),
        chunks as u32,
        width as u32,
        reverse as u32,
    );
}

pub(crate) fn dims4<R: CubeRuntime>(t: &CubeTensor<R>) -> [usize; 4] {
    let shape = t.meta.shape();
    assert_eq!(shape.len(), 4, "expected a 4-d tensor, got {shape:?}");
    [shape[0], shape[1], shape[2], shape[3]]
}
