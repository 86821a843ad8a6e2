//! Mamba-2's D skip and gated RMSNorm (between the scan and the output projection) as one
//! autodiff operation on the training kernels of `kernels::layer_ops` (one launch forward, two
//! backward plus the sums of the vector gradients), where burn's autodiff otherwise records
//! ~15 ops forward and ~30 backward.
//!
//! It runs when the model's backend is `Autodiff` over wgpu or (with the `cuda` feature) cuda
//! and `MEMWORLD_KERNELS` selects the `fused` family, in f32 (`custom_op.rs` tells the backends
//! apart). Everywhere else the layer's tensor ops run (`y + D x`, then `layer::gated_norm`);
//! they are the reference the tests compare against.

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::NoCheckpointing},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::tensor::{backend::Backend, Tensor};

use crate::mixers::custom_op::{
    autodiff_tensor, from_autodiff, inner, layer_ops_serve, register_gradients,
};

/// `RMSNorm_group((y + D[head] · x) · SiLU(z)) · weight` recorded as one operation on the
/// kernels where they serve (see the module docs), else `None`.
///
/// # Shapes
/// - `y`, `x`: `[batch, seq, heads, head_dim]`; `z`: `[batch · seq, d]` with
///   `d = heads · head_dim` whole groups of `groups`; `d_skip`: `[heads]`; `weight`: `[d]`;
///   returns `[batch · seq, d]`
pub fn skip_gated_norm<B: Backend>(
    [y, x]: [&Tensor<B, 4>; 2],
    z: &Tensor<B, 2>,
    d_skip: &Tensor<B, 1>,
    weight: &Tensor<B, 1>,
    groups: usize,
    eps: f64,
) -> Option<Tensor<B, 2>> {
    let args = ([y, x], z, [d_skip, weight]);
    let out = on::<B, burn::backend::Wgpu>(args, groups, eps);
    #[cfg(feature = "cuda")]
    let out = out.or_else(|| on::<B, burn::backend::Cuda>(args, groups, eps));
    out
}

/// The tensors of [`skip_gated_norm`]: `[y, x]`, `z` and `[D, weight]`.
type Inputs<'a, B> = (
    [&'a Tensor<B, 4>; 2],
    &'a Tensor<B, 2>,
    [&'a Tensor<B, 1>; 2],
);

fn on<B: Backend, I: Backend>(
    ([y, x], z, vectors): Inputs<'_, B>,
    groups: usize,
    eps: f64,
) -> Option<Tensor<B, 2>> {
    if !layer_ops_serve::<B, I, 2>(z) {
        return None;
    }
    let flat = |t: &Tensor<B, 4>| {
        let [batch, seq, heads, head_dim] = t.dims();
        t.clone().reshape([batch * seq, heads * head_dim])
    };
    let rows = [&flat(y), &flat(x), z].map(autodiff_tensor::<B, I, 2>);
    let vectors = vectors.map(autodiff_tensor::<B, I, 1>);
    let row_values = rows.each_ref().map(|t| inner::<I, 2>(t.primitive.clone()));
    let vector_values = vectors
        .each_ref()
        .map(|t| inner::<I, 1>(t.primitive.clone()));
    let [d_skip, weight] = vector_values.clone();
    let (out, rstd) =
        kernels::layer_ops::gated_norm(row_values.clone(), d_skip, weight, groups, eps);
    let out = out.into_primitive().tensor();
    let [y, x, z] = &rows;
    let [d_skip, weight] = &vectors;
    let nodes = [y, x, z, d_skip, weight].map(|t| t.node.clone());
    let out = match GatedNorm
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((row_values, vector_values, rstd), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(from_autodiff::<B, I, 2>(out))
}

/// The backward step of [`skip_gated_norm`].
#[derive(Debug)]
struct GatedNorm;

impl<I: Backend> Backward<I, 5> for GatedNorm {
    /// `[y, x, z]`, `[D, weight]` and each (row, group)'s `1/√(mean(g²) + eps)`.
    type State = ([Tensor<I, 2>; 3], [Tensor<I, 1>; 2], Tensor<I, 2>);

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dout = inner::<I, 2>(grads.consume::<I>(&ops.node));
        let (rows, vectors, rstd) = ops.state;
        let ([dy, dx, dz], [d_skip, dweight]) =
            kernels::layer_ops::gated_norm_backward(rows, vectors, rstd, dout);
        let gradients = [
            dy.into_primitive().tensor(),
            dx.into_primitive().tensor(),
            dz.into_primitive().tensor(),
            d_skip.into_primitive().tensor(),
            dweight.into_primitive().tensor(),
        ];
        register_gradients::<I, 5>(grads, ops.parents.map(|p| p.map(|n| n.id)), gradients);
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::TensorData;
    use kernels::testing::{uniform, GpuTarget};

    use super::*;
    use crate::mixers::ssd::layer::gated_norm;
    use crate::tolerance::{assert_close_slices, to_vec};

    /// `[out, dy, dx, dz, dD, dweight]` of `op` for `loss = Σ out · r`, `x` and `z` narrowed
    /// out of wider tensors (views, as the layer's are).
    fn norm_case<A: burn::tensor::backend::AutodiffBackend>(
        op: impl Fn([Tensor<A, 4>; 2], Tensor<A, 2>, [Tensor<A, 1>; 2]) -> Tensor<A, 2>,
        [batch, seq, heads, head_dim]: [usize; 4],
        device: &A::Device,
    ) -> [Vec<f32>; 6] {
        let d = heads * head_dim;
        let random = |shape: Vec<usize>, lo: f32, seed: u64| {
            let n = shape.iter().product();
            let data = TensorData::new(uniform(n, lo, lo + 2.0, seed), shape);
            Tensor::<A, 4>::from_data(data, device).require_grad()
        };
        let y = random(vec![batch, seq, heads, head_dim], -1.0, 1);
        let x_wide = random(vec![batch, seq, heads, head_dim + 2], -1.0, 2);
        let z_wide = random(vec![1, 1, batch * seq, d + 5], -1.0, 3);
        let d_skip = random(vec![1, 1, 1, heads], 0.0, 4);
        let weight = random(vec![1, 1, 1, d], 0.0, 5);
        let r = Tensor::<A, 2>::from_data(
            TensorData::new(uniform(batch * seq * d, -1.0, 1.0, 6), [batch * seq, d]),
            device,
        );
        let x = x_wide.clone().narrow(3, 1, head_dim);
        let z = z_wide.clone().reshape([batch * seq, d + 5]).narrow(1, 3, d);
        let vector = |t: &Tensor<A, 4>| t.clone().flatten::<1>(0, 3);
        let out = op([y.clone(), x], z, [vector(&d_skip), vector(&weight)]);
        let grads = (out.clone() * r).sum().backward();
        let grad = |t: &Tensor<A, 4>| t.grad(&grads).expect("gradient");
        [
            to_vec(out),
            to_vec(grad(&y)),
            to_vec(grad(&x_wide).narrow(3, 1, head_dim)),
            to_vec(grad(&z_wide).reshape([batch * seq, d + 5]).narrow(1, 3, d)),
            to_vec(grad(&d_skip)),
            to_vec(grad(&weight)),
        ]
    }

    /// On the kernels the D skip + gated RMSNorm equals the layer's tensor ops (run on the
    /// same backend) in output and every input gradient.
    fn skip_gated_norm_equals_the_tensor_ops<T: GpuTarget>() {
        let Some(device) = T::device() else { return };
        type A<T> = Autodiff<<T as GpuTarget>::B>;
        for (dims, groups) in [([2, 3, 4, 2], 2), ([1, 5, 1, 7], 1), ([1, 300, 8, 8], 4)] {
            let [batch, seq, heads, head_dim] = dims;
            let d = heads * head_dim;
            let reference = |[y, x]: [Tensor<A<T>, 4>; 2],
                             z: Tensor<A<T>, 2>,
                             [skip, w]: [_; 2]| {
                let y = (y + x * Tensor::reshape(skip, [1, 1, heads, 1])).reshape([batch, seq, d]);
                gated_norm(y, z.reshape([batch, seq, d]), w, groups, 1e-5).reshape([batch * seq, d])
            };
            let kernel = |[y, x]: [Tensor<A<T>, 4>; 2], z, [skip, w]: [Tensor<A<T>, 1>; 2]| {
                skip_gated_norm([&y, &x], &z, &skip, &w, groups, 1e-5)
                    .expect("the kernels serve Autodiff over the GPU backend")
            };
            let got = norm_case::<A<T>>(kernel, dims, &device);
            let want = norm_case::<A<T>>(reference, dims, &device);
            let names = ["out", "dy", "dx", "dz", "dD", "dweight"];
            for ((got, want), name) in got.iter().zip(&want).zip(names) {
                let what = format!("skip_gated_norm {dims:?} groups={groups} {name}");
                assert_close_slices(&what, got, want, 1e-4, 1e-5);
            }
        }
    }

    kernels::gpu_tests!(skip_gated_norm_equals_the_tensor_ops);
}
