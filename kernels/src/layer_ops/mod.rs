//! Training kernels, forward and backward, for the element-wise and row-wise ops of a
//! world-model layer that burn's autodiff otherwise runs as chains of small tensor ops (the
//! largest share of a training update's GPU time, `docs/results/training-profile.md`):
//! - adaLN's parameter-free layer norm and modulation, `y = x̂ · (1 + scale) + shift` with
//!   per-group vectors ([`norm_modulate`], [`norm_modulate_backward`]): one launch forward,
//!   where the tensor ops take ~12, and two backward;
//! - the exact GELU ([`gelu`], [`gelu_backward`]): one launch each way;
//! - Mamba-2's causal depthwise convolution + SiLU ([`conv_silu`], [`conv_silu_backward`]):
//!   one launch forward, where the tensor ops take ~20, and two backward plus the sum of the
//!   weight and bias gradients' partial sums;
//! - Mamba-2's D skip and gated RMSNorm ([`gated_norm`], [`gated_norm_backward`]): one launch
//!   forward, where the tensor ops take ~15, and two backward plus the sums.
//!
//! The model records them as single autodiff operations (`model/src/world/layer_ops.rs`) whose
//! reference is its tensor-op composition; [`reference`] here holds independent f64 host loops
//! the kernel tests compare against. [`serves`] says whether they run (the `fused` family of
//! `MEMWORLD_KERNELS`, a CubeCL backend, f32).

mod conv;
#[cfg(test)]
mod conv_tests;
mod gated_rms;
#[cfg(test)]
mod gated_rms_tests;
mod kernel;
pub mod reference;
#[cfg(test)]
mod tests;

use burn::tensor::{backend::Backend, DType, Tensor};
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};

use crate::dispatch::{empty_f32, from_cube, kernel_runtime, to_cube, with_runtime};
use conv::{launch_conv_silu_backward, launch_conv_silu_forward, CHUNK_ROWS};
use gated_rms::{launch_gated_norm_backward, launch_gated_norm_forward};
use kernel::{launch_gelu, launch_norm_modulate_backward, launch_norm_modulate_forward};

/// Do the kernels serve backend `B` (an inner, non-autodiff backend) for tensors of `dtype`?
pub fn serves<B: Backend>(dtype: DType) -> bool {
    crate::kernels_serve::<B>(crate::KernelKind::Fused, dtype)
}

fn runtime<B: Backend>() -> crate::dispatch::CubeRuntimeKind {
    kernel_runtime::<B>(DType::F32).expect("layer ops: backend has no kernels (check serves)")
}

/// Layer norm over the last dimension without affine parameters, then
/// `y = x̂ · (1 + scale[g]) + shift[g]` for row `r` of group `g = r / (rows / groups)`.
/// Returns `y` and each row's `(mean, 1/√(var + eps))`, which [`norm_modulate_backward`]
/// takes.
///
/// # Shapes
/// - `x`: `[rows, d]`; `shift`, `scale`: `[groups, d]`, `rows` a multiple of `groups`
/// - returns `y` `[rows, d]` and the statistics `[rows, 2]`
pub fn norm_modulate<B: Backend>(
    x: Tensor<B, 2>,
    shift: Tensor<B, 2>,
    scale: Tensor<B, 2>,
    eps: f64,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [rows, d] = x.dims();
    with_runtime!(runtime::<B>(), R => {
        let x = to_cube::<B, R, 2>(x);
        let vectors = [shift, scale].map(to_cube::<B, R, 2>);
        let (y, stats) = (empty_f32(&x, &[rows, d]), empty_f32(&x, &[rows, 2]));
        launch_norm_modulate_forward(x, vectors, y.clone(), stats.clone(), eps as f32);
        (from_cube::<B, R, 2>(y), from_cube::<B, R, 2>(stats))
    })
}

/// The gradients of [`norm_modulate`] from its input, statistics, scale and output gradient:
/// `[dx, dshift, dscale]`.
///
/// # Shapes
/// - `x`, `dy`: `[rows, d]`; `stats`: `[rows, 2]`; `scale`: `[groups, d]`
/// - returns `dx` `[rows, d]`, `dshift` and `dscale` `[groups, d]`
pub fn norm_modulate_backward<B: Backend>(
    x: Tensor<B, 2>,
    stats: Tensor<B, 2>,
    scale: Tensor<B, 2>,
    dy: Tensor<B, 2>,
) -> [Tensor<B, 2>; 3] {
    let [rows, d] = x.dims();
    let groups = scale.dims()[0];
    with_runtime!(runtime::<B>(), R => {
        let [x, stats, scale, dy] = [x, stats, scale, dy].map(to_cube::<B, R, 2>);
        let outs = [
            empty_f32(&x, &[rows, d]),
            empty_f32(&x, &[groups, d]),
            empty_f32(&x, &[groups, d]),
        ];
        launch_norm_modulate_backward(x, stats, scale, dy, outs.clone());
        outs.map(from_cube::<B, R, 2>)
    })
}

/// The exact GELU, `x · Φ(x)`, element-wise.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    gelu_launch(x, None)
}

/// GELU's input gradient, `dy · (Φ(x) + x · φ(x))`; `dy` has `x`'s shape.
pub fn gelu_backward<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    dy: Tensor<B, D>,
) -> Tensor<B, D> {
    assert_eq!(dy.dims(), x.dims(), "gelu_backward: dy shape");
    gelu_launch(x, Some(dy))
}

fn gelu_launch<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    dy: Option<Tensor<B, D>>,
) -> Tensor<B, D> {
    let dims = x.dims();
    let n = x.shape().num_elements();
    with_runtime!(runtime::<B>(), R => {
        let flat = |t: Tensor<B, D>| to_cube::<B, R, 1>(t.reshape([n]));
        let x = flat(x);
        let out = empty_f32(&x, &[n]);
        launch_gelu(x, dy.map(flat), out.clone());
        from_cube::<B, R, 1>(out).reshape(dims)
    })
}

/// Mamba-2's causal depthwise convolution followed by SiLU:
/// `y[b, t, c] = SiLU(bias[c] + Σ_j weight[c, j] · p[b, t + j, c])`, `p` the input padded in
/// front with the carried inputs `state` (oldest first), as PyTorch's `Conv1d` with
/// `groups = channels` and `padding = taps − 1`, cut to the first `seq` outputs.
///
/// # Shapes
/// - `x`: `[batch, seq, channels]`; `state`: `[batch, channels, taps − 1]`, `taps ≥ 2`;
///   `weight`: `[channels, taps]`; `bias`: `[channels]`; returns `x`'s shape
pub fn conv_silu<B: Backend>(
    x: Tensor<B, 3>,
    state: Tensor<B, 3>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
) -> Tensor<B, 3> {
    let dims = x.dims();
    with_runtime!(runtime::<B>(), R => {
        let inputs = conv_inputs::<B, R>(x, state, weight, bias);
        let y = empty_f32(&inputs[0], &dims);
        launch_conv_silu_forward(inputs, y.clone());
        from_cube::<B, R, 3>(y)
    })
}

/// The gradients of [`conv_silu`] for output gradient `dy` (`x`'s shape):
/// `(dx, dstate, dweight, dbias)`, each its input's shape.
pub fn conv_silu_backward<B: Backend>(
    x: Tensor<B, 3>,
    state: Tensor<B, 3>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
    dy: Tensor<B, 3>,
) -> (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 2>, Tensor<B, 1>) {
    let [batch, seq, channels] = x.dims();
    let (state_dims, taps) = (state.dims(), weight.dims()[1]);
    let chunks = (batch * seq).div_ceil(CHUNK_ROWS);
    let (dx, dstate, partial) = with_runtime!(runtime::<B>(), R => {
        let inputs = conv_inputs::<B, R>(x, state, weight, bias);
        let dy = to_cube::<B, R, 3>(dy);
        let g = empty_f32(&dy, &[batch, seq, channels]);
        let outs = [
            empty_f32(&dy, &[batch, seq, channels]),
            empty_f32(&dy, &state_dims),
            empty_f32(&dy, &[chunks, taps + 1, channels]),
        ];
        launch_conv_silu_backward(inputs, dy, g, outs.clone());
        let [dx, dstate, partial] = outs.map(from_cube::<B, R, 3>);
        (dx, dstate, partial)
    });
    let sums = partial.sum_dim(0).reshape([taps + 1, channels]);
    let dweight = sums.clone().narrow(0, 0, taps).transpose();
    let dbias = sums.narrow(0, taps, 1).reshape([channels]);
    (dx, dstate, dweight, dbias)
}

/// [`conv_silu`]'s inputs on the cube runtime.
fn conv_inputs<B: Backend, R: CubeRuntime>(
    x: Tensor<B, 3>,
    state: Tensor<B, 3>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
) -> [CubeTensor<R>; 4] {
    [
        to_cube::<B, R, 3>(x),
        to_cube::<B, R, 3>(state),
        to_cube::<B, R, 2>(weight),
        to_cube::<B, R, 1>(bias),
    ]
}

/// Mamba-2's D skip and gated RMSNorm, per row and group of `d / groups` channels, channel `c`
/// in head `c / (d / heads)`: `g = (y + D[head] · x) · SiLU(z)`,
/// `out = g / √(mean_group(g²) + eps) · weight`. Returns `out` and each (row, group)'s
/// `1/√(mean(g²) + eps)`, which [`gated_norm_backward`] takes.
///
/// # Shapes
/// - `y`, `x`, `z`: `[rows, d]`; `d_skip`: `[heads]`; `weight`: `[d]`
/// - returns `out` `[rows, d]` and `rstd` `[rows, groups]`
pub fn gated_norm<B: Backend>(
    [y, x, z]: [Tensor<B, 2>; 3],
    d_skip: Tensor<B, 1>,
    weight: Tensor<B, 1>,
    groups: usize,
    eps: f64,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [rows, d] = y.dims();
    with_runtime!(runtime::<B>(), R => {
        let row_tensors = [y, x, z].map(to_cube::<B, R, 2>);
        let vectors = [d_skip, weight].map(to_cube::<B, R, 1>);
        let outs = [empty_f32(&row_tensors[0], &[rows, d]), empty_f32(&row_tensors[0], &[rows, groups])];
        launch_gated_norm_forward(row_tensors, vectors, outs.clone(), groups, eps as f32);
        let [out, rstd] = outs.map(from_cube::<B, R, 2>);
        (out, rstd)
    })
}

/// The gradients of [`gated_norm`] for output gradient `dout`: `[dy, dx, dz]` (`[rows, d]`)
/// and `[dD, dweight]` (`[heads]`, `[d]`).
pub fn gated_norm_backward<B: Backend>(
    [y, x, z]: [Tensor<B, 2>; 3],
    [d_skip, weight]: [Tensor<B, 1>; 2],
    rstd: Tensor<B, 2>,
    dout: Tensor<B, 2>,
) -> ([Tensor<B, 2>; 3], [Tensor<B, 1>; 2]) {
    let [rows, d] = y.dims();
    let (groups, heads) = (rstd.dims()[1], d_skip.dims()[0]);
    let chunks = rows.div_ceil(CHUNK_ROWS);
    let (row_grads, partial) = with_runtime!(runtime::<B>(), R => {
        let row_tensors = [y, x, z].map(to_cube::<B, R, 2>);
        let [d_skip, weight] = [d_skip, weight].map(to_cube::<B, R, 1>);
        let rstd = to_cube::<B, R, 2>(rstd);
        let like = &row_tensors[0];
        let row_grads = [0; 3].map(|_| empty_f32(like, &[rows, d]));
        let partial = empty_f32(like, &[chunks, 2, d]);
        launch_gated_norm_backward(
            row_tensors,
            [d_skip, weight, rstd],
            to_cube::<B, R, 2>(dout),
            [row_grads[0].clone(), row_grads[1].clone(), row_grads[2].clone(), partial.clone()],
            groups,
        );
        (row_grads.map(from_cube::<B, R, 2>), from_cube::<B, R, 3>(partial))
    });
    let sums = partial.sum_dim(0).reshape([2, d]);
    let dweight = sums.clone().narrow(0, 0, 1).reshape([d]);
    let d_skip_grad = sums
        .narrow(0, 1, 1)
        .reshape([heads, d / heads])
        .sum_dim(1)
        .reshape([heads]);
    (row_grads, [d_skip_grad, dweight])
}
