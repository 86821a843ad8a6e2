//! Masked block attention, the product every frame-local path ends in: softmax attention per
//! block of query frames against its key frames, with a frame-level 0/−∞ bias (SPEC §5.3).
//!
//! - [`masked_block_attention`]: the forward by tensor ops, in pieces of at most `max_scores`
//!   score elements ([`Split`]);
//! - [`masked_block_attention_backward`]: its gradients for given output gradients, recomputing
//!   the attention weights piece by piece instead of reading stored ones (the flash-attention
//!   backward of Dao et al., arXiv 2205.14135, Alg. 4, by tensor ops): with `P = softmax(S)`,
//!   `S = QKᵀ/√d + bias`,
//!   `dV = Pᵀ dO`, `dS = P ∘ (dO Vᵀ − rowsum(dO ∘ O))`, `dQ = dS K/√d`, `dK = dSᵀ Q/√d`.
//!
//! `recompute.rs` registers the pair as one autodiff operation, so training keeps only
//! queries, keys, values and output, never the score matrices.

use burn::tensor::{activation::softmax, backend::Backend, Tensor, TensorData};

use crate::precision::matmul;

/// Elements of the largest score tensor one product builds: 2²⁶ (256 MiB in f32), well under
/// the largest buffer a wgpu adapter binds. Bigger problems are split ([`Split`]).
pub(crate) const MAX_SCORE_ELEMENTS: usize = 1 << 26;

/// Softmax attention per block with a frame-level additive bias; split in halves while the
/// score tensor would hold more than `max_scores` elements.
///
/// # Shapes
/// - `q`: `[batch, n_heads, blocks, cq·Tq, hd]`; `k`, `v`: `[batch, n_heads, blocks, ck·Tk, hd]`
/// - `allowed`: `blocks · cq · ck` flags, block-major (may query frame i see key frame j)
/// - returns `[batch, n_heads, blocks, cq·Tq, hd]`
pub(crate) fn masked_block_attention<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    allowed: Vec<bool>,
    [cq, ck]: [usize; 2],
    max_scores: usize,
) -> Tensor<B, 5> {
    if let Some(split) = Split::plan(&q, &k, [cq, ck], max_scores) {
        let (q0, q1) = split.queries(q);
        let ((k0, k1), (v0, v1)) = (split.keys(k), split.keys(v));
        let ((a0, a1), (c0, c1)) = (split.allowed(allowed), split.query_frames(cq));
        return Tensor::cat(
            vec![
                masked_block_attention(q0, k0, v0, a0, [c0, ck], max_scores),
                masked_block_attention(q1, k1, v1, a1, [c1, ck], max_scores),
            ],
            split.dim,
        );
    }
    let weights = attention_weights(q, k, allowed, [cq, ck]);
    matmul(weights, v)
}

/// Gradients `[dq, dk, dv]` of [`masked_block_attention`] at `(q, k, v)` with output `o`, for
/// the output gradient `dout`; the attention weights are recomputed in the same pieces as the
/// forward builds them, so no tensor larger than `max_scores` elements is formed.
///
/// # Shapes
/// - as [`masked_block_attention`]; `o`, `dout`: like `q`; returns tensors shaped like `q`, `k`, `v`
#[allow(clippy::too_many_arguments)]
pub(crate) fn masked_block_attention_backward<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    o: Tensor<B, 5>,
    dout: Tensor<B, 5>,
    allowed: Vec<bool>,
    [cq, ck]: [usize; 2],
    max_scores: usize,
) -> [Tensor<B, 5>; 3] {
    if let Some(split) = Split::plan(&q, &k, [cq, ck], max_scores) {
        let (q0, q1) = split.queries(q);
        let (o0, o1) = split.queries(o);
        let (d0, d1) = split.queries(dout);
        let ((k0, k1), (v0, v1)) = (split.keys(k), split.keys(v));
        let ((a0, a1), (c0, c1)) = (split.allowed(allowed), split.query_frames(cq));
        let [dq0, dk0, dv0] =
            masked_block_attention_backward(q0, k0, v0, o0, d0, a0, [c0, ck], max_scores);
        let [dq1, dk1, dv1] =
            masked_block_attention_backward(q1, k1, v1, o1, d1, a1, [c1, ck], max_scores);
        return [
            Tensor::cat(vec![dq0, dq1], split.dim),
            split.join_keys(dk0, dk1),
            split.join_keys(dv0, dv1),
        ];
    }
    let hd = q.dims()[4];
    let scale = (hd as f64).sqrt().recip();
    let weights = attention_weights(q.clone(), k.clone(), allowed, [cq, ck]);
    let dv = matmul(weights.clone().swap_dims(3, 4), dout.clone());
    let row_dot = (dout.clone() * o).sum_dim(4);
    let dweights = matmul(dout, v.swap_dims(3, 4));
    let dscores = weights * (dweights - row_dot);
    let dq = matmul(dscores.clone(), k).mul_scalar(scale);
    let dk = matmul(dscores.swap_dims(3, 4), q).mul_scalar(scale);
    [dq, dk, dv]
}

/// `softmax(QKᵀ/√d + bias)` for one piece, `[batch, n_heads, blocks, cq·Tq, ck·Tk]`.
fn attention_weights<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    allowed: Vec<bool>,
    [cq, ck]: [usize; 2],
) -> Tensor<B, 5> {
    let [b, nh, n, lq, hd] = q.dims();
    let lk = k.dims()[3];
    let (tq, tk) = (lq / cq, lk / ck);
    let scale = (hd as f64).sqrt().recip();
    let scores = matmul(q, k.swap_dims(3, 4)).mul_scalar(scale);
    let bias: Vec<f32> = allowed
        .into_iter()
        .map(|a| if a { 0.0 } else { f32::NEG_INFINITY })
        .collect();
    let bias = Tensor::<B, 6>::from_data(
        TensorData::new(bias, [1, n, cq, 1, ck, 1]),
        &scores.device(),
    );
    let scores = scores.reshape([b * nh, n, cq, tq, ck, tk]) + bias;
    softmax(scores.reshape([b, nh, n, lq, lk]), 4)
}

/// How a piece too large for one score tensor is halved: over blocks, else the batch, else the
/// heads (keys and values halved alongside), else the query frames, else the query tokens of
/// the one query frame (keys and values shared). Rows of a softmax never straddle halves, so
/// the halves compute the same function.
struct Split {
    /// Dimension of `q` that is halved.
    dim: usize,
    /// Size of the first half along `dim`.
    at: usize,
    /// Whether keys and values are halved too (else both halves see all of them).
    split_keys: bool,
    /// Where `allowed` is cut (`None`: both halves use all of it).
    allowed_at: Option<usize>,
    /// Query frames in the first half, when the query frames are halved.
    cq_at: Option<usize>,
}

impl Split {
    /// `None` when the piece fits in `max_scores` elements (or is a single score row).
    fn plan<B: Backend>(
        q: &Tensor<B, 5>,
        k: &Tensor<B, 5>,
        [cq, ck]: [usize; 2],
        max_scores: usize,
    ) -> Option<Split> {
        let [b, nh, n, lq, _] = q.dims();
        let lk = k.dims()[3];
        if b * nh * n * lq * lk <= max_scores || b * nh * n * lq == 1 {
            return None;
        }
        let whole = |dim, at| Split {
            dim,
            at,
            split_keys: true,
            allowed_at: None,
            cq_at: None,
        };
        Some(if n > 1 {
            Split {
                allowed_at: Some(n / 2 * cq * ck),
                ..whole(2, n / 2)
            }
        } else if b > 1 {
            whole(0, b / 2)
        } else if nh > 1 {
            whole(1, nh / 2)
        } else if cq > 1 {
            Split {
                dim: 3,
                at: cq / 2 * (lq / cq),
                split_keys: false,
                allowed_at: Some(cq / 2 * ck),
                cq_at: Some(cq / 2),
            }
        } else {
            Split {
                split_keys: false,
                ..whole(3, lq / 2)
            }
        })
    }

    /// The two halves of a query-shaped tensor.
    fn queries<B: Backend>(&self, x: Tensor<B, 5>) -> (Tensor<B, 5>, Tensor<B, 5>) {
        let size = x.dims()[self.dim];
        (
            x.clone().narrow(self.dim, 0, self.at),
            x.narrow(self.dim, self.at, size - self.at),
        )
    }

    /// The keys (or values) each half sees.
    fn keys<B: Backend>(&self, x: Tensor<B, 5>) -> (Tensor<B, 5>, Tensor<B, 5>) {
        if self.split_keys {
            self.queries(x)
        } else {
            (x.clone(), x)
        }
    }

    /// Gradient of keys (or values) from the two halves' gradients.
    fn join_keys<B: Backend>(&self, a: Tensor<B, 5>, b: Tensor<B, 5>) -> Tensor<B, 5> {
        if self.split_keys {
            Tensor::cat(vec![a, b], self.dim)
        } else {
            a + b
        }
    }

    fn allowed(&self, allowed: Vec<bool>) -> (Vec<bool>, Vec<bool>) {
        match self.allowed_at {
            Some(i) => {
                let mut first = allowed;
                let second = first.split_off(i);
                (first, second)
            }
            None => (allowed.clone(), allowed),
        }
    }

    fn query_frames(&self, cq: usize) -> (usize, usize) {
        self.cq_at.map_or((cq, cq), |c| (c, cq - c))
    }
}
