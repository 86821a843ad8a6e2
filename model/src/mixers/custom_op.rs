//! What the model's own autodiff operations (`attention/recompute.rs`, `ssd/autodiff.rs`,
//! `ssd/conv_op.rs`, `ssd/gated_norm_op.rs`, `world/layer_ops.rs`) share: burn registers a
//! custom backward pass per backend type while the model is generic over `B: Backend`, so an
//! operation checks by `TypeId` that `B` is `Autodiff<I>` for an inner backend `I` it knows,
//! moves tensors between the two views, and hands each tracked parent its gradient.

use std::any::{Any, TypeId};

use burn::backend::autodiff::{grads::Gradients, NodeId};
use burn::backend::Autodiff;
use burn::tensor::backend::{Backend, BackendTypes};
use burn::tensor::{Tensor, TensorPrimitive};

/// The autodiff tensor of backend `Autodiff<I>` (burn does not export its name).
pub(crate) type AdTensor<I> = <Autodiff<I> as BackendTypes>::FloatTensorPrimitive;

/// Is `B` the autodiff backend over `I`?
pub(crate) fn is_autodiff_over<B: Backend, I: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Autodiff<I>>()
}

/// Do the layer-op training kernels (`kernels::layer_ops`) run for `x` under `B`: is `B`
/// `Autodiff<I>` and do the kernels serve `I` for `x`'s float type?
pub(crate) fn layer_ops_serve<B: Backend, I: Backend, const D: usize>(x: &Tensor<B, D>) -> bool {
    is_autodiff_over::<B, I>() && kernels::layer_ops::serves::<I>(x.dtype())
}

/// The autodiff tensor (primitive and graph node) inside `t`; `B` must be `Autodiff<I>`
/// ([`is_autodiff_over`]).
pub(crate) fn autodiff_tensor<B: Backend, I: Backend, const D: usize>(
    t: &Tensor<B, D>,
) -> AdTensor<I> {
    cast::<_, Tensor<Autodiff<I>, D>>(t.clone())
        .into_primitive()
        .tensor()
}

/// An autodiff tensor as a `Tensor<B, D>`; `B` must be `Autodiff<I>`.
pub(crate) fn from_autodiff<B: Backend, I: Backend, const D: usize>(
    t: AdTensor<I>,
) -> Tensor<B, D> {
    cast(Tensor::<Autodiff<I>, D>::from_primitive(
        TensorPrimitive::Float(t),
    ))
}

/// An inner backend's primitive as a tensor.
pub(crate) fn inner<I: Backend, const D: usize>(
    primitive: I::FloatTensorPrimitive,
) -> Tensor<I, D> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// Registers `gradients[i]` for parent `i` of a backward step where that parent is tracked;
/// `parents` are the step's `ops.parents` by id (`ops.parents.map(|p| p.map(|n| n.id))`).
pub(crate) fn register_gradients<I: Backend, const N: usize>(
    grads: &mut Gradients,
    parents: [Option<NodeId>; N],
    gradients: [I::FloatTensorPrimitive; N],
) {
    for (parent, grad) in parents.into_iter().zip(gradients) {
        if let Some(id) = parent {
            grads.register::<I>(id, grad);
        }
    }
}

/// `x` as a value of type `T`, which callers have checked it is (by `TypeId`).
fn cast<S: 'static, T: 'static>(x: S) -> T {
    *(Box::new(x) as Box<dyn Any>)
        .downcast::<T>()
        .expect("autodiff operation: backend type checked by TypeId")
}
