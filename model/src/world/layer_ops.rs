//! adaLN's layer norm + modulation and the MLP's exact GELU as single autodiff operations on
//! the training kernels of `kernels::layer_ops`, where burn's autodiff would otherwise record
//! ~12 element-wise ops forward (and twice that backward) for each norm and ~5 for each GELU.
//!
//! They run when the model's backend is `Autodiff` over wgpu or (with the `cuda` feature) cuda
//! and `MEMWORLD_KERNELS` selects the `fused` family, in f32 (`custom_op.rs` tells the
//! backends apart). Everywhere else — outside autodiff, where the inference kernels of
//! `kernels::fused` take over, on ndarray, or with the family off — the tensor ops of
//! [`block`](super::block) run; they are the reference the tests compare against.

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::NoCheckpointing},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::tensor::activation;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::block::{layer_norm, modulate, NORM_EPS};
use crate::mixers::custom_op::{
    autodiff_tensor, from_autodiff, inner, layer_ops_serve, register_gradients, AdTensor,
};

/// `modulate(layer_norm(x), shift, scale)`: one recorded operation on the kernels where they
/// serve (see the module docs), else the tensor ops.
///
/// # Shapes
/// - `x`: `[batch, frames, h, w, d]`; `shift`, `scale`: `[batch, frames, d]`; returns `x`'s
pub fn norm_modulate<B: Backend>(
    x: Tensor<B, 5>,
    shift: Tensor<B, 3>,
    scale: Tensor<B, 3>,
) -> Tensor<B, 5> {
    let out = norm_on::<B, burn::backend::Wgpu>(&x, &shift, &scale);
    #[cfg(feature = "cuda")]
    let out = out.or_else(|| norm_on::<B, burn::backend::Cuda>(&x, &shift, &scale));
    out.unwrap_or_else(|| modulate(layer_norm(x), shift, scale))
}

/// The exact GELU: one recorded operation on the kernels where they serve, else burn's.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let out = gelu_on::<B, burn::backend::Wgpu, D>(&x);
    #[cfg(feature = "cuda")]
    let out = out.or_else(|| gelu_on::<B, burn::backend::Cuda, D>(&x));
    out.unwrap_or_else(|| activation::gelu(x))
}

fn norm_on<B: Backend, I: Backend>(
    x: &Tensor<B, 5>,
    shift: &Tensor<B, 3>,
    scale: &Tensor<B, 3>,
) -> Option<Tensor<B, 5>> {
    if !layer_ops_serve::<B, I, 5>(x) {
        return None;
    }
    let dims = x.dims();
    let [b, f, h, w, d] = dims;
    let (x, shift, scale) = (
        autodiff_tensor::<B, I, 5>(x),
        autodiff_tensor::<B, I, 3>(shift),
        autodiff_tensor::<B, I, 3>(scale),
    );
    let x_rows = inner::<I, 5>(x.primitive.clone()).reshape([b * f * h * w, d]);
    let vectors = |t: &AdTensor<I>| inner::<I, 3>(t.primitive.clone()).reshape([b * f, d]);
    let scale_rows = vectors(&scale);
    let (y, stats) = kernels::layer_ops::norm_modulate(
        x_rows.clone(),
        vectors(&shift),
        scale_rows.clone(),
        NORM_EPS,
    );
    let y = y.reshape(dims).into_primitive().tensor();
    let nodes = [x.node.clone(), shift.node.clone(), scale.node.clone()];
    let out = match NormModulate
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let kept = [x_rows, stats, scale_rows].map(|t| t.into_primitive().tensor());
            prep.finish((kept, dims), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(from_autodiff::<B, I, 5>(out))
}

/// The backward step of [`norm_modulate`].
#[derive(Debug)]
struct NormModulate;

impl<I: Backend> Backward<I, 3> for NormModulate {
    /// `x` as rows, the rows' statistics, `scale` as rows, and `x`'s shape.
    type State = ([I::FloatTensorPrimitive; 3], [usize; 5]);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([x, stats, scale], dims) = ops.state;
        let [b, f, h, w, d] = dims;
        let dy = inner::<I, 5>(grads.consume::<I>(&ops.node)).reshape([b * f * h * w, d]);
        let [dx, dshift, dscale] = kernels::layer_ops::norm_modulate_backward(
            inner::<I, 2>(x),
            inner::<I, 2>(stats),
            inner::<I, 2>(scale),
            dy,
        );
        let gradients = [
            dx.reshape(dims).into_primitive().tensor(),
            dshift.reshape([b, f, d]).into_primitive().tensor(),
            dscale.reshape([b, f, d]).into_primitive().tensor(),
        ];
        register_gradients::<I, 3>(grads, ops.parents.map(|p| p.map(|n| n.id)), gradients);
    }
}

fn gelu_on<B: Backend, I: Backend, const D: usize>(x: &Tensor<B, D>) -> Option<Tensor<B, D>> {
    if !layer_ops_serve::<B, I, D>(x) {
        return None;
    }
    let x = autodiff_tensor::<B, I, D>(x);
    let y = kernels::layer_ops::gelu(inner::<I, D>(x.primitive.clone()))
        .into_primitive()
        .tensor();
    let out = match Gelu::<D>
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(x.primitive, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(from_autodiff::<B, I, D>(out))
}

/// The backward step of [`gelu`] on `D`-d tensors.
#[derive(Debug)]
struct Gelu<const D: usize>;

impl<I: Backend, const D: usize> Backward<I, 1> for Gelu<D> {
    /// The input.
    type State = I::FloatTensorPrimitive;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = inner::<I, D>(grads.consume::<I>(&ops.node));
        let [parent] = ops.parents;
        if let Some(node) = parent {
            let dx = kernels::layer_ops::gelu_backward(inner::<I, D>(ops.state), dy);
            grads.register::<I>(node.id, dx.into_primitive().tensor());
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::TensorData;
    use kernels::testing::GpuTarget;

    use super::*;
    use crate::tolerance::{assert_close_slices, to_vec};

    /// `[output, dx, dshift, dscale]` of `op` for `loss = Σ y · r`, the vectors narrowed out of
    /// a wider table (views, as the model's adaLN vectors are).
    fn norm_case<A: burn::tensor::backend::AutodiffBackend>(
        op: impl Fn(Tensor<A, 5>, Tensor<A, 3>, Tensor<A, 3>) -> Tensor<A, 5>,
        [x, table, r]: [&TensorData; 3],
        d: usize,
        device: &A::Device,
    ) -> [Vec<f32>; 4] {
        let x = Tensor::<A, 5>::from_data(x.clone(), device).require_grad();
        let table = Tensor::<A, 3>::from_data(table.clone(), device).require_grad();
        let (shift, scale) = (
            table.clone().narrow(2, 1, d),
            table.clone().narrow(2, d + 3, d),
        );
        let y = op(x.clone(), shift.clone(), scale.clone());
        let grads = (y.clone() * Tensor::from_data(r.clone(), device))
            .sum()
            .backward();
        let table_grad = table.grad(&grads).expect("table gradient");
        let grad = |start| to_vec(table_grad.clone().narrow(2, start, d));
        [
            to_vec(y),
            to_vec(x.grad(&grads).expect("x gradient")),
            grad(1),
            grad(d + 3),
        ]
    }

    /// On the kernels the norm + modulation and the GELU equal their tensor ops (the reference,
    /// run on the same backend) in output and every input gradient.
    fn layer_ops_equal_their_tensor_ops<T: GpuTarget>() {
        let Some(device) = T::device() else { return };
        type A<T> = Autodiff<<T as GpuTarget>::B>;
        let rel_tol = 1e-4;
        for &[b, f, h, w, d] in &[[2, 3, 4, 4, 8], [1, 2, 3, 5, 33], [1, 1, 1, 1, 1]] {
            let random = |shape: Vec<usize>, seed: u64| {
                let n = shape.iter().product();
                TensorData::new(kernels::testing::uniform(n, -2.0, 2.0, seed), shape)
            };
            let x = random(vec![b, f, h, w, d], 1);
            let table = random(vec![b, f, 2 * d + 5], 2);
            let r = random(vec![b, f, h, w, d], 3);
            let what = format!("norm_modulate {:?}", [b, f, h, w, d]);
            let got = norm_case::<A<T>>(norm_modulate, [&x, &table, &r], d, &device);
            let want = norm_case::<A<T>>(
                |x, s, c| modulate(layer_norm(x), s, c),
                [&x, &table, &r],
                d,
                &device,
            );
            // With d = 1 the exact dx is 0, which both sides reach as a difference of terms
            // ~|dy|·rstd ≈ 10³ large; what rounding leaves of it (5.5e-5 on CUDA) is 1e-7 of
            // those terms.
            let abs_tol = if d == 1 { 1e-4 } else { 1e-5 };
            for ((got, want), name) in got.iter().zip(&want).zip(["y", "dx", "dshift", "dscale"]) {
                assert_close_slices(&format!("{what} {name}"), got, want, rel_tol, abs_tol);
            }

            // GELU: the output against burn's, the gradient against the exact derivative
            // `Φ(x) + x·φ(x)` by tensor ops (burn's own GELU backward is the derivative of the
            // tanh approximation, ~1e-3 off).
            let x = Tensor::<A<T>, 5>::from_data(x.clone(), &device)
                .mul_scalar(2.0)
                .require_grad();
            let r = Tensor::<A<T>, 5>::from_data(r.clone(), &device);
            let y = gelu(x.clone());
            let grads = (y.clone() * r.clone()).sum().backward();
            let dx = x.grad(&grads).expect("x gradient");
            let (x, r) = (x.inner(), r.inner());
            let exact = x
                .clone()
                .div_scalar(std::f64::consts::SQRT_2)
                .erf()
                .add_scalar(1.0)
                .mul_scalar(0.5)
                + x.clone()
                    * x.clone()
                        .powi_scalar(2)
                        .mul_scalar(-0.5)
                        .exp()
                        .div_scalar((2.0 * std::f64::consts::PI).sqrt());
            let what = format!("gelu {:?}", [b, f, h, w, d]);
            let want_y = to_vec(activation::gelu(x));
            assert_close_slices(&format!("{what} y"), &to_vec(y), &want_y, rel_tol, 1e-6);
            let want_dx = to_vec(exact * r);
            assert_close_slices(&format!("{what} dx"), &to_vec(dx), &want_dx, rel_tol, 1e-6);
        }
    }

    kernels::gpu_tests!(layer_ops_equal_their_tensor_ops);
}
