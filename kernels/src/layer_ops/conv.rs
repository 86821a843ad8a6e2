//! CubeCL bodies and launchers of the training kernels of Mamba-2's causal depthwise
//! convolution followed by SiLU: for sequence `b`, token `t` and channel `c`,
//! `pre = bias[c] + Σ_j w[c, j] · p[t + j]`, `y = SiLU(pre)`, where `p` is the channel's input
//! padded in front with the `taps − 1` carried inputs of the state (oldest first).
//!
//! - Forward: one unit per element.
//! - Backward, two launches: the gate gradient `g = dy · SiLU'(pre)` (one unit per element,
//!   `pre` recomputed), then one column kernel that walks chunks of [`CHUNK_ROWS`] rows with
//!   [`COLUMNS`] columns × [`LANES`] lanes per cube and writes, from `g`,
//!   - the input gradient `dp[s] = Σ_j w[c, j] · g[s − j]` over the valid `s − j` (for the
//!     tokens and, at each sequence's first token, the carried inputs),
//!   - each chunk's partial sums `Σ g · p[t + j]` (weight) and `Σ g` (bias), reduced over the
//!     chunks by the caller.
//!
//! Tensors are contiguous and indexed flat; outputs are handed in, so the tests can give
//! NaN-filled ones.

use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::kernel::{COLUMNS, LANES, UNITS};
use crate::dispatch::{row_grid, shape};
use crate::fused::kernel::silu;
use crate::grid::cube_index;

/// Rows one cube of the column kernel walks ([`LANES`] units per column share them).
pub(crate) const CHUNK_ROWS: usize = 256;

/// Position `pos` of channel `c`'s padded input in sequence `b`: carried input `pos` for
/// `pos < carried`, else token `pos − carried`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn padded<F: Float>(
    x: &Tensor<F>,
    state: &Tensor<F>,
    b: usize,
    pos: usize,
    c: usize,
    seq: usize,
    channels: usize,
    #[comptime] carried: usize,
) -> F {
    if pos < carried {
        state[(b * channels + c) * carried + pos]
    } else {
        x[(b * seq + pos - carried) * channels + c]
    }
}

/// The convolution's output before SiLU at flat index `i` of `[batch · seq, channels]`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn pre_activation<F: Float>(
    x: &Tensor<F>,
    state: &Tensor<F>,
    weight: &Tensor<F>,
    bias: &Tensor<F>,
    i: usize,
    seq: usize,
    channels: usize,
    #[comptime] taps: usize,
) -> F {
    let (row, c) = (i / channels, i % channels);
    let (b, t) = (row / seq, row % seq);
    let mut acc = bias[c];
    #[unroll]
    for j in 0..taps {
        acc += weight[c * taps + j] * padded::<F>(x, state, b, t + j, c, seq, channels, taps - 1);
    }
    acc
}

/// `y = SiLU(pre)`, one unit per element of `[batch · seq, channels]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn conv_silu_forward<F: Float>(
    x: &Tensor<F>,
    state: &Tensor<F>,
    weight: &Tensor<F>,
    bias: &Tensor<F>,
    y: &mut Tensor<F>,
    len: usize,
    seq: u32,
    channels: u32,
    #[comptime] taps: usize,
) {
    let i = cube_index() * UNITS + UNIT_POS as usize;
    if i >= len {
        terminate!();
    }
    let pre = pre_activation::<F>(
        x,
        state,
        weight,
        bias,
        i,
        seq as usize,
        channels as usize,
        taps,
    );
    y[i] = silu::<F>(pre);
}

/// `g = dy · SiLU'(pre)`, `SiLU'(v) = σ(v) · (1 + v · (1 − σ(v)))`, one unit per element.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn conv_silu_gate_grad<F: Float>(
    x: &Tensor<F>,
    state: &Tensor<F>,
    weight: &Tensor<F>,
    bias: &Tensor<F>,
    dy: &Tensor<F>,
    g: &mut Tensor<F>,
    len: usize,
    seq: u32,
    channels: u32,
    #[comptime] taps: usize,
) {
    let i = cube_index() * UNITS + UNIT_POS as usize;
    if i >= len {
        terminate!();
    }
    let v = pre_activation::<F>(
        x,
        state,
        weight,
        bias,
        i,
        seq as usize,
        channels as usize,
        taps,
    );
    let sigmoid = F::new(1.0) / (F::new(1.0) + F::exp(-v));
    g[i] = dy[i] * sigmoid * (F::new(1.0) + v * (F::new(1.0) - sigmoid));
}

/// `dp[s] = Σ_j w[c, j] · g[s − j]` over `0 ≤ s − j < seq`: the gradient of padded position
/// `s` of channel `c` in sequence `b`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn padded_grad<F: Float>(
    g: &Tensor<F>,
    weight: &Tensor<F>,
    b: usize,
    s: usize,
    c: usize,
    seq: usize,
    channels: usize,
    #[comptime] taps: usize,
) -> F {
    let mut acc = F::new(0.0);
    #[unroll]
    for j in 0..taps {
        if s >= j && s - j < seq {
            acc += weight[c * taps + j] * g[(b * seq + s - j) * channels + c];
        }
    }
    acc
}

/// The column kernel of the backward pass (see the module docs): `dx`, `dstate`, and each
/// chunk's partial sums `partial[chunk, j, c]` — `Σ g · p[t + j]` for `j < taps`, `Σ g` at
/// `j = taps`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn conv_grads<F: Float>(
    x: &Tensor<F>,
    state: &Tensor<F>,
    weight: &Tensor<F>,
    g: &Tensor<F>,
    dx: &mut Tensor<F>,
    dstate: &mut Tensor<F>,
    partial: &mut Tensor<F>,
    rows: u32,
    seq: u32,
    channels: u32,
    #[comptime] taps: usize,
) {
    let (rows, seq, channels) = (rows as usize, seq as usize, channels as usize);
    let column_blocks = channels.div_ceil(COLUMNS);
    let cube = cube_index();
    if cube >= rows.div_ceil(CHUNK_ROWS) * column_blocks {
        terminate!();
    }
    let u = UNIT_POS as usize;
    let chunk = cube / column_blocks;
    let c = (cube % column_blocks) * COLUMNS + u % COLUMNS;
    let lane = u / COLUMNS;
    let carried = taps - 1;

    let mut sums = Array::<F>::new(taps + 1);
    #[unroll]
    for j in 0..taps + 1 {
        sums[j] = F::new(0.0);
    }
    if c < channels {
        let mut end = (chunk + 1) * CHUNK_ROWS;
        if end > rows {
            end = rows;
        }
        let mut r = chunk * CHUNK_ROWS + lane;
        while r < end {
            let (b, t) = (r / seq, r % seq);
            let gv = g[r * channels + c];
            #[unroll]
            for j in 0..taps {
                sums[j] += gv * padded::<F>(x, state, b, t + j, c, seq, channels, carried);
            }
            sums[taps] += gv;
            dx[r * channels + c] =
                padded_grad::<F>(g, weight, b, t + carried, c, seq, channels, taps);
            if t == 0 {
                // `t + s` rather than `s`: a run-time position, so `s − j` below is not
                // evaluated (and overflowed) while the unrolled loops are expanded.
                #[unroll]
                for s in 0..carried {
                    dstate[(b * channels + c) * carried + s] =
                        padded_grad::<F>(g, weight, b, t + s, c, seq, channels, taps);
                }
            }
            r += LANES;
        }
    }

    let mut shared = SharedMemory::<F>::new((taps + 1) * COLUMNS * LANES);
    #[unroll]
    for j in 0..taps + 1 {
        shared[j * COLUMNS * LANES + u] = sums[j];
    }
    sync_cube();
    if lane == 0 && c < channels {
        #[unroll]
        for j in 0..taps + 1 {
            let mut total = F::new(0.0);
            for l in 0..LANES {
                total += shared[j * COLUMNS * LANES + l * COLUMNS + u];
            }
            partial[(chunk * (taps + 1) + j) * channels + c] = total;
        }
    }
}

/// `(batch, seq, channels, taps)` from `x` `[batch, seq, channels]`, the state
/// `[batch, channels, taps − 1]` and the weight `[channels, taps]`, checked.
fn conv_shapes<R: CubeRuntime>(
    what: &str,
    x: &CubeTensor<R>,
    state: &CubeTensor<R>,
    weight: &CubeTensor<R>,
) -> (usize, usize, usize, usize) {
    let [batch, seq, channels] = shape(x)[..] else {
        panic!("{what}: x must be [batch, seq, channels]")
    };
    let [wc, taps] = shape(weight)[..] else {
        panic!("{what}: weight must be [channels, taps]")
    };
    assert!(wc == channels, "{what}: weight shape");
    assert!(taps >= 2, "{what}: needs at least 2 taps");
    assert_eq!(
        shape(state),
        [batch, channels, taps - 1],
        "{what}: state shape"
    );
    (batch, seq, channels, taps)
}

/// Launch [`conv_silu_forward`]; `y` has `x`'s shape and `bias` is `[channels]`.
pub(crate) fn launch_conv_silu_forward<R: CubeRuntime>(
    [x, state, weight, bias]: [CubeTensor<R>; 4],
    y: CubeTensor<R>,
) {
    let (batch, seq, channels, taps) = conv_shapes("conv_silu", &x, &state, &weight);
    assert_eq!(shape(&bias), [channels], "conv_silu: bias shape");
    assert_eq!(shape(&y), [batch, seq, channels], "conv_silu: output shape");
    let len = batch * seq * channels;
    let client = x.client.clone();
    conv_silu_forward::launch::<f32, R>(
        &client,
        row_grid(len.div_ceil(UNITS)),
        CubeDim::new_1d(UNITS as u32),
        x.into_tensor_arg(),
        state.into_tensor_arg(),
        weight.into_tensor_arg(),
        bias.into_tensor_arg(),
        y.into_tensor_arg(),
        len,
        seq as u32,
        channels as u32,
        taps,
    );
}

/// Launch the backward kernels of [`conv_silu_forward`]: `g` is scratch of `x`'s shape; `dx`
/// has `x`'s shape, `dstate` the state's and `partial` is `[chunks, taps + 1, channels]` with
/// `chunks = ⌈batch · seq / CHUNK_ROWS⌉`.
pub(crate) fn launch_conv_silu_backward<R: CubeRuntime>(
    [x, state, weight, bias]: [CubeTensor<R>; 4],
    dy: CubeTensor<R>,
    g: CubeTensor<R>,
    [dx, dstate, partial]: [CubeTensor<R>; 3],
) {
    let what = "conv_silu backward";
    let (batch, seq, channels, taps) = conv_shapes(what, &x, &state, &weight);
    assert_eq!(shape(&bias), [channels], "{what}: bias shape");
    for t in [&dy, &g, &dx] {
        assert_eq!(shape(t), [batch, seq, channels], "{what}: gradient shape");
    }
    assert_eq!(shape(&dstate), shape(&state), "{what}: dstate shape");
    let rows = batch * seq;
    let chunks = rows.div_ceil(CHUNK_ROWS);
    assert_eq!(
        shape(&partial),
        [chunks, taps + 1, channels],
        "{what}: partial sums shape"
    );
    let len = rows * channels;
    let client = x.client.clone();
    conv_silu_gate_grad::launch::<f32, R>(
        &client,
        row_grid(len.div_ceil(UNITS)),
        CubeDim::new_1d(UNITS as u32),
        x.clone().into_tensor_arg(),
        state.clone().into_tensor_arg(),
        weight.clone().into_tensor_arg(),
        bias.into_tensor_arg(),
        dy.into_tensor_arg(),
        g.clone().into_tensor_arg(),
        len,
        seq as u32,
        channels as u32,
        taps,
    );
    conv_grads::launch::<f32, R>(
        &client,
        row_grid(chunks * channels.div_ceil(COLUMNS)),
        CubeDim::new_1d((COLUMNS * LANES) as u32),
        x.into_tensor_arg(),
        state.into_tensor_arg(),
        weight.into_tensor_arg(),
        g.into_tensor_arg(),
        dx.into_tensor_arg(),
        dstate.into_tensor_arg(),
        partial.into_tensor_arg(),
        rows as u32,
        seq as u32,
        channels as u32,
        taps,
    );
}
