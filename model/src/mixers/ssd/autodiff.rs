//! The SSD scan as one autodiff operation: the chunked CubeCL kernel forward
//! (`kernels::ssd::chunked_ssd`) and the recomputing chunk backward (`backward.rs`, whose scans
//! over chunks run on the chunk-scan kernel). Training then stores the scan's inputs only, and
//! its forward is the kernel rather than the chunk algorithm by tensor ops.
//!
//! It serves `Autodiff` over wgpu and, with the `cuda` feature, cuda (`custom_op.rs`), when the
//! SSD kernels are selected (`MEMWORLD_KERNELS`) and take the heads. burn's operations have
//! one output, so the output and the final state travel packed in one `[batch, ·]` tensor that
//! is split again by tracked tensor ops: a loss on either gets its gradient.

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::NoCheckpointing},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::tensor::{backend::Backend, Tensor};

use super::backward::chunked_ssd_backward;
use crate::mixers::custom_op::{
    autodiff_tensor, from_autodiff, inner, is_autodiff_over, register_gradients,
};

/// x, Δ, A, B and C of the scan.
pub(crate) type SsdInputs<'a, B> = (
    &'a Tensor<B, 4>,
    &'a Tensor<B, 3>,
    &'a Tensor<B, 1>,
    &'a Tensor<B, 4>,
    &'a Tensor<B, 4>,
);

/// The SSD scan (arguments and shapes of [`super::chunked_ssd`]) recorded as one operation with
/// the kernel forward, when `B` is an autodiff backend over a kernel backend and the kernel
/// serves the call; else `None`.
pub(crate) fn kernel_ssd<B: Backend>(
    inputs: SsdInputs<'_, B>,
    initial_state: Option<&Tensor<B, 4>>,
    chunk_size: usize,
) -> Option<(Tensor<B, 4>, Tensor<B, 4>)> {
    let out = on::<B, burn::backend::Wgpu>(inputs, initial_state, chunk_size);
    #[cfg(feature = "cuda")]
    let out = out.or_else(|| on::<B, burn::backend::Cuda>(inputs, initial_state, chunk_size));
    out
}

fn on<B: Backend, I: Backend>(
    (x, dt, a, b, c): SsdInputs<'_, B>,
    initial_state: Option<&Tensor<B, 4>>,
    chunk_size: usize,
) -> Option<(Tensor<B, 4>, Tensor<B, 4>)> {
    if !is_autodiff_over::<B, I>() {
        return None;
    }
    let [batch, seq, heads, head_dim] = x.dims();
    let d_state = b.dims()[3];
    // The kernels are selected (`MEMWORLD_KERNELS`) and take these heads.
    let x_ad = autodiff_tensor::<B, I, 4>(x);
    if !kernels::ssd::serves(&inner::<I, 4>(x_ad.primitive.clone()), d_state) {
        return None;
    }
    let initial_state = initial_state
        .cloned()
        .unwrap_or_else(|| Tensor::zeros([batch, heads, head_dim, d_state], &x.device()));
    let inputs = [
        x_ad,
        autodiff_tensor::<B, I, 3>(dt),
        autodiff_tensor::<B, I, 1>(a),
        autodiff_tensor::<B, I, 4>(b),
        autodiff_tensor::<B, I, 4>(c),
        autodiff_tensor::<B, I, 4>(&initial_state),
    ];
    let [x, dt, a, b, c, s0] = inputs.clone().map(|t| t.primitive);
    let (y, s) = kernels::ssd::chunked_ssd(
        inner::<I, 4>(x),
        inner::<I, 3>(dt),
        inner::<I, 1>(a),
        inner::<I, 4>(b),
        inner::<I, 4>(c),
        Some(inner::<I, 4>(s0)),
    );
    let sizes = [seq * heads * head_dim, heads * head_dim * d_state];
    let packed = Tensor::cat(
        vec![y.reshape([batch, sizes[0]]), s.reshape([batch, sizes[1]])],
        1,
    )
    .into_primitive()
    .tensor();
    let op = SsdBackward {
        dims: [batch, seq, heads, head_dim, d_state],
        chunk_size,
    };
    let nodes = inputs.clone().map(|t| t.node);
    let packed = match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(inputs.map(|t| t.primitive), packed),
        OpsKind::UnTracked(prep) => prep.finish(packed),
    };
    let packed = from_autodiff::<B, I, 2>(packed);
    let y = packed.clone().narrow(1, 0, sizes[0]);
    let s = packed.narrow(1, sizes[0], sizes[1]);
    Some((
        y.reshape([batch, seq, heads, head_dim]),
        s.reshape([batch, heads, head_dim, d_state]),
    ))
}

/// The backward step: [`chunked_ssd_backward`] on the inner backend.
#[derive(Debug)]
struct SsdBackward {
    /// `[batch, seq, heads, head_dim, d_state]`
    dims: [usize; 5],
    chunk_size: usize,
}

impl<I: Backend> Backward<I, 6> for SsdBackward {
    /// x, Δ, A, B, C and the initial state.
    type State = [I::FloatTensorPrimitive; 6];

    fn backward(self, ops: Ops<Self::State, 6>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [batch, seq, heads, head_dim, d_state] = self.dims;
        let d_packed = inner::<I, 2>(grads.consume::<I>(&ops.node));
        let n_y = seq * heads * head_dim;
        let dy = d_packed.clone().narrow(1, 0, n_y);
        let d_final = d_packed.narrow(1, n_y, heads * head_dim * d_state);
        let [x, dt, a, b, c, s0] = ops.state;
        let g = chunked_ssd_backward(
            inner::<I, 4>(x),
            inner::<I, 3>(dt),
            inner::<I, 1>(a),
            inner::<I, 4>(b),
            inner::<I, 4>(c),
            inner::<I, 4>(s0),
            dy.reshape([batch, seq, heads, head_dim]),
            d_final.reshape([batch, heads, head_dim, d_state]),
            self.chunk_size,
        );
        let gradients = [
            g.x.into_primitive().tensor(),
            g.dt.into_primitive().tensor(),
            g.a.into_primitive().tensor(),
            g.b.into_primitive().tensor(),
            g.c.into_primitive().tensor(),
            g.initial_state.into_primitive().tensor(),
        ];
        register_gradients::<I, 6>(grads, ops.parents.map(|p| p.map(|n| n.id)), gradients);
    }
}
