//! Reference for frame-local attention: plain dense softmax attention
//! `softmax(QKᵀ/√d_h + M) V` over all `F·T` tokens with an explicit token-level frame mask `M`
//! (Vaswani et al., arXiv 1706.03762, eq. 1). Quadratic in frames; used only to check the
//! blocked and streaming paths.

use burn::tensor::{activation::softmax, backend::Backend, Bool, Tensor, TensorData};

use super::frame_local::{FrameLocalAttention, Qkv};

/// Token-level attention mask over `frames · tokens_per_frame` tokens (frame-major): entry
/// `[i, j]` is `true` when token `i` may attend to token `j`, i.e. frame(j) ≤ frame(i) and,
/// with a window `k`, frame(i) − frame(j) < k.
///
/// # Shapes
/// - returns `[frames · tokens_per_frame, frames · tokens_per_frame]`
pub fn frame_mask<B: Backend>(
    frames: usize,
    tokens_per_frame: usize,
    window: Option<usize>,
    device: &B::Device,
) -> Tensor<B, 2, Bool> {
    let l = frames * tokens_per_frame;
    let mut mask = Vec::with_capacity(l * l);
    for i in 0..l {
        let fi = i / tokens_per_frame;
        for j in 0..l {
            let fj = j / tokens_per_frame;
            mask.push(fj <= fi && window.is_none_or(|k| fi - fj < k));
        }
    }
    Tensor::from_data(TensorData::new(mask, [l, l]), device)
}

/// Dense masked softmax attention.
///
/// # Shapes
/// - `q`, `k`, `v`: `[batch, n_heads, L, head_dim]`; `allowed`: `[L, L]`
/// - returns `[batch, n_heads, L, head_dim]`
pub fn reference_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    allowed: Tensor<B, 2, Bool>,
) -> Tensor<B, 4> {
    let [b, nh, l, hd] = q.dims();
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((hd as f64).sqrt());
    let blocked = allowed.bool_not().unsqueeze::<4>().expand([b, nh, l, l]);
    let weights = softmax(scores.mask_fill(blocked, f32::NEG_INFINITY), 3);
    weights.matmul(v)
}

impl<B: Backend> FrameLocalAttention<B> {
    /// The same layer computed with [`reference_attention`] and [`frame_mask`]: projections
    /// and RoPE as in [`FrameLocalAttention::forward`], then one dense masked attention.
    ///
    /// # Shapes
    /// - `x`: `[batch, frames, h, w, d_model]`; returns the same shape
    pub fn forward_reference(&self, x: Tensor<B, 5>, first_frame: usize) -> Tensor<B, 5> {
        let [b, f, h, w, d] = x.dims();
        let Qkv { q, k, v } = self.project(x, first_frame, None);
        let tokens = |t: Tensor<B, 5>| t.reshape([b, self.n_heads, f * h * w, self.head_dim]);
        let mask = frame_mask::<B>(f, h * w, self.window, &q.device());
        let out = reference_attention(tokens(q), tokens(k), tokens(v), mask);
        let out = self.merge_heads(
            out.reshape([b, self.n_heads, f, h * w, self.head_dim]),
            [b, f, h, w, d],
        );
        crate::precision::linear(&self.o_proj, out)
    }
}
