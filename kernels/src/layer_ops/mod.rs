//! Training kernels, forward and backward, for the element-wise and row-wise ops of a
//! world-model layer that burn's autodiff otherwise runs as chains of small tensor ops (the
//! largest share of a training update's GPU time, `docs/results/training-profile.md`):
//! - adaLN's parameter-free layer norm and modulation, `y = x̂ · (1 + scale) + shift` with
//!   per-group vectors ([`norm_modulate`], [`norm_modulate_backward`]): one launch forward,
//!   where the tensor ops take ~12, and two backward;
//! - the exact GELU ([`gelu`], [`gelu_backward`]): one launch each way.
//!
//! The model records them as single autodiff operations (`model/src/world/layer_ops.rs`) whose
//! reference is its tensor-op composition; [`reference`] here holds independent f64 host loops
//! the kernel tests compare against. [`serves`] says whether they run (the `fused` family of
//! `MEMWORLD_KERNELS`, a CubeCL backend, f32).

mod kernel;
pub mod reference;
#[cfg(test)]
mod tests;

use burn::tensor::{backend::Backend, DType, Tensor};

use crate::dispatch::{empty_f32, from_cube, kernel_runtime, to_cube, with_runtime};
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
