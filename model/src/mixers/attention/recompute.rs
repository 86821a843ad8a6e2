//! Attention as one autodiff operation with its own backward pass, so a training step stores
//! queries, keys, values and the output of each attention layer but never its score
//! matrices. Without it, burn's autodiff keeps every piece's softmax for the backward pass,
//! which for full causal attention over 128 frames of 256 tokens is 4 GiB per head and layer.
//!
//! Two operations:
//! - [`block_attention`]: masked block attention by tensor ops, whose backward recomputes the
//!   weights piece by piece (`blocks.rs`); every path of every preset ends in it;
//! - [`kernel_attention`]: the flash-style CubeCL kernels of `kernels::attention`, forward
//!   and backward, where they are the faster choice: queries that see at least 2,048 keys
//!   ([`training_kernel_min_keys`]).
//!
//! The operations recognise the autodiff backends the application runs (`Autodiff` over
//! ndarray, wgpu and, with the `cuda` feature, cuda) by type and run on their inner backend
//! (`custom_op.rs`). Any other backend, and the `none` / `reference` selection of
//! `MEMWORLD_KERNELS` (both belong to the attention family), gets plain autodiff through the
//! tensor ops.

use std::fmt::Debug;

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::NoCheckpointing},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use kernels::{kernel_selected, KernelKind};

use crate::mixers::custom_op::{
    autodiff_tensor, from_autodiff, inner, is_autodiff_over, register_gradients, AdTensor,
};

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
        let qkv = [&q, &k, &v];
        let out = on::<B, burn::backend::NdArray, _>(&piece, qkv)
            .or_else(|| on::<B, burn::backend::Wgpu, _>(&piece, qkv));
        #[cfg(feature = "cuda")]
        let out = out.or_else(|| on::<B, burn::backend::Cuda, _>(&piece, qkv));
        if let Some(out) = out {
            return out;
        }
    }
    masked_block_attention(q, k, v, piece.allowed, blocks, max_scores)
}

/// Fewest keys a query sees (frames × tokens) for training through the attention kernels.
/// Measured on an H200 (`memworld bench kernels --ops attention-backward`, heads of 64),
/// forward + backward against the tensor ops: `maze-small` (window 10, batch 8) 2.23× / 2.03×
/// at 16 / 64 frames (2,560 keys); `causal-full` (batch 1) 1.20× / 2.10× / 3.44× at 16 / 32 /
/// 64 frames (4,096 … 16,384 keys). Training `maze-small` on batch 8 × 16 frames ran at
/// 61.8k against 50.0k tokens/s through the kernels, with the same loss curve. Below ~2,000
/// keys the kernels are unmeasured, so the tensor ops keep them.
const TRAINING_KERNEL_MIN_KEYS: usize = 2048;

/// A benchmarking knob: the fewest keys a query sees for training through the attention
/// kernels, instead of [`TRAINING_KERNEL_MIN_KEYS`] (0: always).
pub const TRAINING_KERNEL_MIN_KEYS_ENV: &str = "MEMWORLD_ATTENTION_TRAIN_MIN_KEYS";

/// [`TRAINING_KERNEL_MIN_KEYS`], or the value of [`TRAINING_KERNEL_MIN_KEYS_ENV`].
pub(crate) fn training_kernel_min_keys() -> usize {
    static KEYS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *KEYS.get_or_init(|| {
        std::env::var(TRAINING_KERNEL_MIN_KEYS_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(TRAINING_KERNEL_MIN_KEYS)
    })
}

/// Frame-local attention of whole clips on the CubeCL kernels, forward and backward, when `B`
/// is an autodiff backend over a kernel backend, the kernel serves the call and a query sees
/// at least `min_keys` keys; else `None`.
///
/// # Shapes
/// - `q`, `k`, `v`: `[batch, n_heads, frames, tokens, head_dim]`; returns the same
pub(crate) fn kernel_attention<B: Backend>(
    [q, k, v]: [&Tensor<B, 5>; 3],
    window: Option<usize>,
    min_keys: usize,
) -> Option<Tensor<B, 5>> {
    let [_, _, frames, tokens, _] = q.dims();
    if window.map_or(frames, |w| w.min(frames)) * tokens < min_keys {
        return None;
    }
    let op = KernelAttention { window };
    let out = on::<B, burn::backend::Wgpu, _>(&op, [q, k, v]);
    #[cfg(feature = "cuda")]
    let out = out.or_else(|| on::<B, burn::backend::Cuda, _>(&op, [q, k, v]));
    out
}

/// An attention computation with its own gradients, run on the inner backend `I`.
trait AttentionOp: Clone + Debug + Send + 'static {
    /// Whether this operation takes the call (checked before anything is recorded).
    fn serves<I: Backend>(&self, _q: &Tensor<I, 5>) -> bool {
        true
    }
    /// The output, and what the backward pass needs of the forward beyond its inputs and
    /// output where the operation keeps anything (the kernels: each row's log-sum-exp).
    fn forward<I: Backend>(&self, qkv: [Tensor<I, 5>; 3]) -> (Tensor<I, 5>, Option<Tensor<I, 4>>);
    /// `[dq, dk, dv]` from the inputs, the forward's output and what it kept, and the output
    /// gradient.
    fn backward<I: Backend>(
        &self,
        qkvo: [Tensor<I, 5>; 4],
        kept: Option<Tensor<I, 4>>,
        dout: Tensor<I, 5>,
    ) -> [Tensor<I, 5>; 3];
}

/// Masked block attention by tensor ops (`blocks.rs`).
#[derive(Clone, Debug)]
struct Piece {
    allowed: Vec<bool>,
    blocks: [usize; 2],
    max_scores: usize,
}

impl AttentionOp for Piece {
    fn forward<I: Backend>(
        &self,
        [q, k, v]: [Tensor<I, 5>; 3],
    ) -> (Tensor<I, 5>, Option<Tensor<I, 4>>) {
        let out =
            masked_block_attention(q, k, v, self.allowed.clone(), self.blocks, self.max_scores);
        (out, None)
    }

    fn backward<I: Backend>(
        &self,
        [q, k, v, o]: [Tensor<I, 5>; 4],
        _: Option<Tensor<I, 4>>,
        dout: Tensor<I, 5>,
    ) -> [Tensor<I, 5>; 3] {
        masked_block_attention_backward(
            q,
            k,
            v,
            o,
            dout,
            self.allowed.clone(),
            self.blocks,
            self.max_scores,
        )
    }
}

/// The flash-style kernels of `kernels::attention`.
#[derive(Clone, Debug)]
struct KernelAttention {
    window: Option<usize>,
}

impl AttentionOp for KernelAttention {
    fn serves<I: Backend>(&self, q: &Tensor<I, 5>) -> bool {
        kernels::attention::takes(q)
    }

    fn forward<I: Backend>(
        &self,
        [q, k, v]: [Tensor<I, 5>; 3],
    ) -> (Tensor<I, 5>, Option<Tensor<I, 4>>) {
        let (out, lse) = kernels::attention::frame_attention_with_lse(q, k, v, self.window);
        (out, Some(lse))
    }

    fn backward<I: Backend>(
        &self,
        [q, k, v, o]: [Tensor<I, 5>; 4],
        lse: Option<Tensor<I, 4>>,
        dout: Tensor<I, 5>,
    ) -> [Tensor<I, 5>; 3] {
        let lse = lse.expect("the attention kernel keeps its log-sum-exps");
        kernels::attention::frame_attention_backward([q, k, v, o, dout], lse, self.window)
    }
}

/// `op` recorded as one autodiff operation when `B` is `Autodiff<I>` and `op` serves the call,
/// else `None`.
fn on<B: Backend, I: Backend, G: AttentionOp>(
    op: &G,
    [q, k, v]: [&Tensor<B, 5>; 3],
) -> Option<Tensor<B, 5>> {
    if !is_autodiff_over::<B, I>() {
        return None;
    }
    let [q, k, v]: [AdTensor<I>; 3] = [q, k, v].map(autodiff_tensor::<B, I, 5>);
    if !op.serves(&inner::<I, 5>(q.primitive.clone())) {
        return None;
    }
    let (out, kept) = op.forward([&q, &k, &v].map(|t| inner::<I, 5>(t.primitive.clone())));
    let out = out.into_primitive().tensor();
    let kept = kept.map(|t| t.into_primitive().tensor());
    let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
    let out = match <Recorded<G> as Backward<I, 3>>::prepare::<NoCheckpointing>(
        Recorded(op.clone()),
        nodes,
    )
    .compute_bound()
    .stateful()
    {
        OpsKind::Tracked(prep) => {
            let qkvo = [q.primitive, k.primitive, v.primitive, out.clone()];
            prep.finish((qkvo, kept), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(from_autodiff::<B, I, 5>(out))
}

/// The backward step of an [`AttentionOp`] on inner backend `I`.
#[derive(Debug)]
struct Recorded<G>(G);

impl<I: Backend, G: AttentionOp> Backward<I, 3> for Recorded<G> {
    /// Queries, keys, values and output of the forward pass, and what it kept besides.
    type State = (
        [I::FloatTensorPrimitive; 4],
        Option<I::FloatTensorPrimitive>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dout = inner::<I, 5>(grads.consume::<I>(&ops.node));
        let (qkvo, kept) = ops.state;
        let gradients = self
            .0
            .backward(qkvo.map(inner::<I, 5>), kept.map(inner::<I, 4>), dout);
        let gradients = gradients.map(|g| g.into_primitive().tensor());
        register_gradients::<I, 3>(grads, ops.parents.map(|p| p.map(|n| n.id)), gradients);
    }
}
