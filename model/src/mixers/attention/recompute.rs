//! Masked block attention as one autodiff operation whose backward recomputes the attention
//! weights (`blocks.rs`), so a training step stores queries, keys, values and the output of
//! each attention layer but never its score matrices. Without it, burn's autodiff keeps every
//! piece's softmax for the backward pass, which for full causal attention over 128 frames of
//! 256 tokens is 4 GiB per head and layer.
//!
//! burn registers custom backward passes per backend type, while the model is generic over
//! `B: Backend`; [`block_attention`] therefore recognises the autodiff backends the
//! application runs (`Autodiff` over ndarray, wgpu and, with the `cuda` feature, cuda) by
//! type and runs the operation on their inner backend. Any other backend, and the `none` /
//! `reference` selection of `MEMWORLD_KERNELS` (it belongs to the attention family), gets
//! plain autodiff through the tensor ops.

use std::any::{Any, TypeId};

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::NoCheckpointing},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::Autodiff;
use burn::tensor::backend::{Backend, BackendTypes};
use burn::tensor::{Tensor, TensorPrimitive};
use kernels::{kernel_selected, KernelKind};

use super::blocks::{masked_block_attention, masked_block_attention_backward};

/// [`masked_block_attention`], as one recomputing autodiff operation on the autodiff backends
/// the application uses (see the module docs), else as plain tensor ops.
pub(crate) fn block_attention<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    allowed: Vec<bool>,
    blocks: [usize; 2],
    max_scores: usize,
) -> Tensor<B, 5> {
    let piece = Piece {
        allowed,
        blocks,
        max_scores,
    };
    if kernel_selected(KernelKind::Attention) {
        if let Some(out) = piece.on::<B, burn::backend::NdArray>([&q, &k, &v]) {
            return out;
        }
        if let Some(out) = piece.on::<B, burn::backend::Wgpu>([&q, &k, &v]) {
            return out;
        }
        #[cfg(feature = "cuda")]
        if let Some(out) = piece.on::<B, burn::backend::Cuda>([&q, &k, &v]) {
            return out;
        }
    }
    masked_block_attention(q, k, v, piece.allowed, blocks, max_scores)
}

/// What a masked block attention needs besides its tensors; the backward step's identity.
#[derive(Clone, Debug)]
struct Piece {
    allowed: Vec<bool>,
    blocks: [usize; 2],
    max_scores: usize,
}

/// The autodiff tensor of backend `Autodiff<I>` (burn does not export its name).
type AdTensor<I> = <Autodiff<I> as BackendTypes>::FloatTensorPrimitive;

impl Piece {
    /// The recomputing operation when `B` is `Autodiff<I>`, else `None`.
    fn on<B: Backend, I: Backend>(&self, [q, k, v]: [&Tensor<B, 5>; 3]) -> Option<Tensor<B, 5>> {
        if TypeId::of::<B>() != TypeId::of::<Autodiff<I>>() {
            return None;
        }
        let ad = |t: &Tensor<B, 5>| {
            cast::<_, Tensor<Autodiff<I>, 5>>(t.clone())
                .into_primitive()
                .tensor()
        };
        let out = self.clone().record::<I>(ad(q), ad(k), ad(v));
        Some(cast(Tensor::<Autodiff<I>, 5>::from_primitive(
            TensorPrimitive::Float(out),
        )))
    }

    fn record<I: Backend>(self, q: AdTensor<I>, k: AdTensor<I>, v: AdTensor<I>) -> AdTensor<I> {
        let forward = |piece: &Piece| {
            masked_block_attention(
                inner::<I>(q.primitive.clone()),
                inner::<I>(k.primitive.clone()),
                inner::<I>(v.primitive.clone()),
                piece.allowed.clone(),
                piece.blocks,
                piece.max_scores,
            )
            .into_primitive()
            .tensor()
        };
        let out = forward(&self);
        let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
        match <Piece as Backward<I, 3>>::prepare::<NoCheckpointing>(self, nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish([q.primitive, k.primitive, v.primitive, out.clone()], out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

impl<I: Backend> Backward<I, 3> for Piece {
    /// Queries, keys, values and output of the forward pass.
    type State = [I::FloatTensorPrimitive; 4];

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dout = inner::<I>(grads.consume::<I>(&ops.node));
        let [q, k, v, o] = ops.state.map(inner::<I>);
        let gradients = masked_block_attention_backward(
            q,
            k,
            v,
            o,
            dout,
            self.allowed,
            self.blocks,
            self.max_scores,
        );
        for (parent, grad) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = parent {
                grads.register::<I>(node.id, grad.into_primitive().tensor());
            }
        }
    }
}

fn inner<I: Backend>(primitive: I::FloatTensorPrimitive) -> Tensor<I, 5> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// `x` as a value of type `T`, which callers have checked it is (by `TypeId`).
fn cast<S: 'static, T: 'static>(x: S) -> T {
    *(Box::new(x) as Box<dyn Any>)
        .downcast::<T>()
        .expect("recomputing attention: backend type checked by TypeId")
}
