//! Mamba-2's causal depthwise convolution + SiLU as one autodiff operation on the training
//! kernels of `kernels::layer_ops` (one launch forward, two backward plus a sum), where burn's
//! autodiff otherwise records ~20 ops forward — a slice, product and sum per tap on the
//! transposed input — and ~45 backward, several of them strided passes over the whole input.
//!
//! It runs when the model's backend is `Autodiff` over wgpu or (with the `cuda` feature) cuda
//! and `MEMWORLD_KERNELS` selects the `fused` family, in f32, with at least two taps
//! (`custom_op.rs` tells the backends apart). Everywhere else the layer's tensor ops run
//! (`layer::causal_conv` then SiLU); they are the reference the tests compare against.

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::NoCheckpointing},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::tensor::{backend::Backend, Tensor};

use crate::mixers::custom_op::{
    autodiff_tensor, from_autodiff, inner, layer_ops_serve, register_gradients, AdTensor,
};

/// `SiLU(causal_conv(xbc))` recorded as one operation on the kernels where they serve (see
/// the module docs), else `None`. The carried inputs after the sequence are not computed here.
///
/// # Shapes
/// - `xbc`: `[batch, seq, channels]`; `state`: `[batch, channels, taps − 1]`; `weight`:
///   `[channels, taps]`; `bias`: `[channels]`; returns `xbc`'s shape
pub fn conv_silu<B: Backend>(
    xbc: &Tensor<B, 3>,
    state: &Tensor<B, 3>,
    weight: &Tensor<B, 2>,
    bias: &Tensor<B, 1>,
) -> Option<Tensor<B, 3>> {
    let out = on::<B, burn::backend::Wgpu>(xbc, state, weight, bias);
    #[cfg(feature = "cuda")]
    let out = out.or_else(|| on::<B, burn::backend::Cuda>(xbc, state, weight, bias));
    out
}

fn on<B: Backend, I: Backend>(
    xbc: &Tensor<B, 3>,
    state: &Tensor<B, 3>,
    weight: &Tensor<B, 2>,
    bias: &Tensor<B, 1>,
) -> Option<Tensor<B, 3>> {
    if !layer_ops_serve::<B, I, 3>(xbc) || weight.dims()[1] < 2 {
        return None;
    }
    let (x, state, weight, bias) = (
        autodiff_tensor::<B, I, 3>(xbc),
        autodiff_tensor::<B, I, 3>(state),
        autodiff_tensor::<B, I, 2>(weight),
        autodiff_tensor::<B, I, 1>(bias),
    );
    let y = kernels::layer_ops::conv_silu(
        inner::<I, 3>(x.primitive.clone()),
        inner::<I, 3>(state.primitive.clone()),
        inner::<I, 2>(weight.primitive.clone()),
        inner::<I, 1>(bias.primitive.clone()),
    )
    .into_primitive()
    .tensor();
    let inputs: [&AdTensor<I>; 4] = [&x, &state, &weight, &bias];
    let out = match ConvSilu
        .prepare::<NoCheckpointing>(inputs.map(|t| t.node.clone()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(inputs.map(|t| t.primitive.clone()), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(from_autodiff::<B, I, 3>(out))
}

/// The backward step of [`conv_silu`].
#[derive(Debug)]
struct ConvSilu;

impl<I: Backend> Backward<I, 4> for ConvSilu {
    /// The inputs: `xbc`, the carried inputs, the weight and the bias.
    type State = [I::FloatTensorPrimitive; 4];

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = inner::<I, 3>(grads.consume::<I>(&ops.node));
        let [x, state, weight, bias] = ops.state;
        let (dx, dstate, dweight, dbias) = kernels::layer_ops::conv_silu_backward(
            inner::<I, 3>(x),
            inner::<I, 3>(state),
            inner::<I, 2>(weight),
            inner::<I, 1>(bias),
            dy,
        );
        let gradients = [
            dx.into_primitive().tensor(),
            dstate.into_primitive().tensor(),
            dweight.into_primitive().tensor(),
            dbias.into_primitive().tensor(),
        ];
        register_gradients::<I, 4>(grads, ops.parents.map(|p| p.map(|n| n.id)), gradients);
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::activation::silu;
    use burn::tensor::TensorData;
    use kernels::testing::{uniform, GpuTarget};

    use super::*;
    use crate::mixers::ssd::layer::{carried_after, causal_conv};
    use crate::tolerance::{assert_close_slices, to_vec};

    /// `[y, dxbc, dstate, dweight, dbias]` of `op` for `loss = Σ y · r`, `xbc` narrowed out of
    /// a wider tensor (a view, as the layer's is).
    fn conv_case<A: burn::tensor::backend::AutodiffBackend>(
        op: impl Fn(Tensor<A, 3>, Tensor<A, 3>, Tensor<A, 2>, Tensor<A, 1>) -> Tensor<A, 3>,
        [batch, seq, channels, taps]: [usize; 4],
        device: &A::Device,
    ) -> [Vec<f32>; 5] {
        let random = |shape: Vec<usize>, seed: u64| {
            let n = shape.iter().product();
            Tensor::<A, 3>::from_data(TensorData::new(uniform(n, -1.5, 1.5, seed), shape), device)
        };
        let wide = random(vec![batch, seq, channels + 3], 1).require_grad();
        let state = random(vec![batch, channels, taps - 1], 2).require_grad();
        let weight = random(vec![1, channels, taps], 3)
            .reshape([channels, taps])
            .require_grad();
        let bias = random(vec![1, 1, channels], 4)
            .reshape([channels])
            .require_grad();
        let r = random(vec![batch, seq, channels], 5);
        let xbc = wide.clone().narrow(2, 2, channels);
        let y = op(xbc, state.clone(), weight.clone(), bias.clone());
        let grads = (y.clone() * r).sum().backward();
        let grad = |g: Option<Tensor<A::InnerBackend, 3>>| to_vec(g.expect("gradient"));
        [
            to_vec(y),
            to_vec(
                wide.grad(&grads)
                    .expect("xbc gradient")
                    .narrow(2, 2, channels),
            ),
            grad(state.grad(&grads)),
            to_vec(weight.grad(&grads).expect("weight gradient")),
            to_vec(bias.grad(&grads).expect("bias gradient")),
        ]
    }

    /// On the kernels the convolution + SiLU equals the layer's tensor ops (run on the same
    /// backend) in output and every input gradient, with fewer tokens than carried inputs and
    /// more, and two taps; and the carried inputs after the sequence equal the reference's.
    fn conv_silu_equals_the_tensor_ops<T: GpuTarget>() {
        let Some(device) = T::device() else { return };
        type A<T> = Autodiff<<T as GpuTarget>::B>;
        for dims in [[2, 9, 6, 4], [1, 2, 70, 4], [3, 5, 3, 2], [1, 300, 20, 4]] {
            let reference = |x, s, w, b| silu(causal_conv::<A<T>>(x, s, w, b).0);
            let kernel = |x: Tensor<A<T>, 3>, s, w, b| {
                conv_silu(&x, &s, &w, &b).expect("the kernels serve Autodiff over the GPU backend")
            };
            let got = conv_case::<A<T>>(kernel, dims, &device);
            let want = conv_case::<A<T>>(reference, dims, &device);
            for ((got, want), name) in got
                .iter()
                .zip(&want)
                .zip(["y", "dxbc", "dstate", "dweight", "dbias"])
            {
                let what = format!("conv_silu {dims:?} {name}");
                assert_close_slices(&what, got, want, 1e-4, 1e-5);
            }

            let [batch, seq, channels, taps] = dims;
            let xbc = Tensor::<T::B, 3>::from_data(
                TensorData::new(
                    uniform(batch * seq * channels, -1.0, 1.0, 6),
                    [batch, seq, channels],
                ),
                &device,
            );
            let state = Tensor::<T::B, 3>::from_data(
                TensorData::new(
                    uniform(batch * channels * (taps - 1), -1.0, 1.0, 7),
                    [batch, channels, taps - 1],
                ),
                &device,
            );
            let weight = Tensor::<T::B, 2>::zeros([channels, taps], &device);
            let bias = Tensor::<T::B, 1>::zeros([channels], &device);
            let (_, want) = causal_conv(xbc.clone(), state.clone(), weight, bias);
            let got = carried_after(xbc, state);
            let what = format!("carried inputs {dims:?}");
            assert_close_slices(&what, &to_vec(got), &to_vec(want), 0.0, 0.0);
        }
    }

    kernels::gpu_tests!(conv_silu_equals_the_tensor_ops);
}
