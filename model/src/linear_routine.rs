//! The grouped linear product `x·W` (`linear_rows`, one product per frame) as one autodiff
//! operation whose three matrix products — forward `x·W`, input gradient `dy·Wᵀ`, weight
//! gradient `Σ_groups xᵀ·dy` — run on the cubek routine `MEMWORLD_MATMUL` names
//! (`kernels::matmul`) instead of burn's default one.
//!
//! It records when the model's backend is `Autodiff` over wgpu or (with the `cuda` feature)
//! cuda, in f32, and a routine is selected. A product the routine cannot run on the device
//! (its setup fails: e.g. no TMA) is burn's product instead, so the operation is the same
//! arithmetic everywhere; burn's autodiff through `matmul` is the reference the tests compare
//! against. Outside autodiff (dreaming, evaluation) burn's product runs.

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::NoCheckpointing},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::mixers::custom_op::{autodiff_tensor, from_autodiff, inner, is_autodiff_over};

/// `x · weight` for `x`: `[groups, rows, d_in]`, `weight`: `[d_in, d_out]`, recorded as one
/// operation on the selected routine where it applies (see the module docs); `None` where it
/// does not, and the caller runs burn's product.
pub(crate) fn product<B: Backend>(x: &Tensor<B, 3>, weight: &Tensor<B, 2>) -> Option<Tensor<B, 3>> {
    let routine = kernels::matmul::selected_routine()?;
    product_with(routine, x, weight)
}

/// [`product`] on routine `routine`.
pub(crate) fn product_with<B: Backend>(
    routine: &'static str,
    x: &Tensor<B, 3>,
    weight: &Tensor<B, 2>,
) -> Option<Tensor<B, 3>> {
    let out = product_on::<B, burn::backend::Wgpu>(routine, x, weight);
    #[cfg(feature = "cuda")]
    let out = out.or_else(|| product_on::<B, burn::backend::Cuda>(routine, x, weight));
    out
}

/// `lhs · rhs` (batched, broadcast) on `routine`, or burn's product where it cannot run.
fn matmul<I: Backend>(routine: &str, lhs: Tensor<I, 3>, rhs: Tensor<I, 3>) -> Tensor<I, 3> {
    kernels::matmul::routine_matmul(routine, lhs.clone(), rhs.clone())
        .unwrap_or_else(|_| lhs.matmul(rhs))
}

fn product_on<B: Backend, I: Backend>(
    routine: &'static str,
    x: &Tensor<B, 3>,
    weight: &Tensor<B, 2>,
) -> Option<Tensor<B, 3>> {
    if !is_autodiff_over::<B, I>() || kernels::dispatch::kernel_runtime::<I>(x.dtype()).is_none() {
        return None;
    }
    let (x, weight) = (
        autodiff_tensor::<B, I, 3>(x),
        autodiff_tensor::<B, I, 2>(weight),
    );
    let (x_in, w_in) = (
        inner::<I, 3>(x.primitive.clone()),
        inner::<I, 2>(weight.primitive.clone()),
    );
    let y = matmul(routine, x_in, w_in.unsqueeze::<3>())
        .into_primitive()
        .tensor();
    let op = RoutineProduct { routine };
    let out = match op
        .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish([x.primitive, weight.primitive], y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(from_autodiff::<B, I, 3>(out))
}

/// The backward step of [`product`]: the input and weight gradients on the same routine.
#[derive(Debug)]
struct RoutineProduct {
    routine: &'static str,
}

impl<I: Backend> Backward<I, 2> for RoutineProduct {
    /// `x` and `weight`.
    type State = [I::FloatTensorPrimitive; 2];

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, weight] = ops.state;
        let dy = inner::<I, 3>(grads.consume::<I>(&ops.node));
        let [x_parent, w_parent] = ops.parents.map(|p| p.map(|n| n.id));
        if let Some(id) = x_parent {
            let w_t = inner::<I, 2>(weight).transpose().unsqueeze::<3>();
            let dx = matmul(self.routine, dy.clone(), w_t);
            grads.register::<I>(id, dx.into_primitive().tensor());
        }
        if let Some(id) = w_parent {
            let x_t = inner::<I, 3>(x).swap_dims(1, 2);
            let dw = matmul(self.routine, x_t, dy).sum_dim(0).squeeze_dim::<2>(0);
            grads.register::<I>(id, dw.into_primitive().tensor());
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::backend::AutodiffBackend;
    use burn::tensor::TensorData;
    use kernels::testing::{uniform, GpuTarget};

    use super::*;
    use crate::tolerance::{assert_close_slices, to_vec};

    /// `[y, dx, dweight]` of `op` for `loss = Σ y · r`, `x` narrowed out of a wider tensor
    /// (a view, as the layers' inputs can be).
    fn case<A: AutodiffBackend>(
        op: impl Fn(Tensor<A, 3>, Tensor<A, 2>) -> Tensor<A, 3>,
        [groups, rows, d_in, d_out]: [usize; 4],
        device: &A::Device,
    ) -> [Vec<f32>; 3] {
        let random = |shape: [usize; 3], seed: u64| {
            let n = shape.iter().product();
            Tensor::<A, 3>::from_data(TensorData::new(uniform(n, -1.0, 1.0, seed), shape), device)
        };
        let wide = random([groups, rows, d_in + 3], 1).require_grad();
        let weight = random([1, d_in, d_out], 2)
            .reshape([d_in, d_out])
            .require_grad();
        let r = random([groups, rows, d_out], 3);
        let y = op(wide.clone().narrow(2, 1, d_in), weight.clone());
        let grads = (y.clone() * r).sum().backward();
        [
            to_vec(y),
            to_vec(wide.grad(&grads).expect("x gradient").narrow(2, 1, d_in)),
            to_vec(weight.grad(&grads).expect("weight gradient")),
        ]
    }

    /// On each routine (one that runs on every device, the default, which lavapipe lacks and
    /// replaces by burn's product, and cubek's `auto`), the recorded product equals burn's
    /// autodiff through `matmul` in output and both gradients.
    fn routine_product_equals_burns_autodiff<T: GpuTarget>() {
        let Some(device) = T::device() else { return };
        type A<T> = Autodiff<<T as GpuTarget>::B>;
        for dims in [[3, 7, 5, 9], [2, 64, 32, 152], [4, 16, 64, 32]] {
            let want = case::<A<T>>(|x, w| x.matmul(w.unsqueeze::<3>()), dims, &device);
            for routine in ["simple-unit", kernels::matmul::DEFAULT_ROUTINE, "auto"] {
                let op = |x: Tensor<A<T>, 3>, w: Tensor<A<T>, 2>| {
                    product_with(routine, &x, &w).expect("recorded on Autodiff over the GPU")
                };
                let got = case::<A<T>>(op, dims, &device);
                for ((got, want), name) in got.iter().zip(&want).zip(["y", "dx", "dweight"]) {
                    let what = format!("{routine} {dims:?} {name}");
                    // TF32 on tensor cores (10-bit mantissas) on one side or both
                    assert_close_slices(&what, got, want, 3e-3, 1e-5);
                }
            }
        }
    }

    kernels::gpu_tests!(routine_product_equals_burns_autodiff);

    /// Without a CubeCL backend under autodiff nothing is recorded: the caller runs burn's
    /// product.
    #[test]
    fn other_backends_take_burns_product() {
        let device = Default::default();
        let x = Tensor::<Autodiff<NdArray>, 3>::zeros([2, 3, 4], &device);
        let w = Tensor::<Autodiff<NdArray>, 2>::zeros([4, 5], &device);
        assert!(product_with("auto", &x, &w).is_none());
        assert!(product_with("auto", &x.inner(), &w.inner()).is_none());
    }
}
