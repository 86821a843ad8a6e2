//! Frame-local multi-head attention (SPEC §5.3; Po et al., arXiv 2505.20171, §4.1).
//!
//! A token of frame `t` attends to every token of frames `t − k + 1 ..= t` (window `k`):
//! bidirectional inside a frame, causal across frames. Queries and keys carry axial RoPE over
//! (row, column, frame) (`rope.rs`); scores are scaled by `1/√head_dim`. With `window = None`
//! it is full causal attention over all past frames (the paper's "full causal" baseline), with
//! `window = Some(K)` the limited-window baseline.
//!
//! Two paths compute the same function:
//! - **blocked** (windowed training): queries are processed in blocks of `chunk_frames` frames;
//!   each block attends to the `chunk_frames + k − 1` frames ending at its last frame, gathered
//!   by slicing a frame-padded key tensor. Scores are `[chunk·T, (chunk + k − 1)·T]` per block,
//!   so cost and memory are linear in the number of frames for a fixed window.
//! - **dense**: one `[F·T, P·T + F·T]` score matrix with a frame mask; used without a window, or
//!   when the window covers every available frame (e.g. one streamed frame).
//!
//! Both end in masked block attention (`blocks.rs`): a frame-level bias (0 or −∞) that
//! broadcasts over tokens, never a token-level mask; under autodiff it is one operation whose
//! backward recomputes the scores (`recompute.rs`).
//! On burn's CubeCL backends outside autodiff (`kernels::attention::takes`; in training,
//! full causal attention over long clips), both give way to the flash-style
//! kernels of `kernels::attention` (no score matrix at all), forward and, under autodiff,
//! backward (`recompute.rs`); these paths are their reference.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use kernels::fused::{qkv_rope, rope_table, QkvProducts, RopeAxes};

use super::blocks::MAX_SCORE_ELEMENTS;
use super::cache::KvCache;
use super::recompute::{block_attention, kernel_attention, training_kernel_min_keys};
use super::rope::{apply_rope, rope_tables, AxialRopeSplit};
use crate::precision::linear;

/// Configuration of [`FrameLocalAttention`].
#[derive(Config, Debug)]
pub struct FrameLocalAttentionConfig {
    /// Model width (input and output features).
    pub d_model: usize,
    /// Number of attention heads; `d_model / n_heads` must be even and at least 6.
    pub n_heads: usize,
    /// Frames attended: `t − k + 1 ..= t`; `None` = all past frames (full causal baseline).
    /// `Some(1)` is per-frame spatial attention. Default: `None`.
    pub window: Option<usize>,
    /// RoPE base θ. Default: 10000.
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// Query frames per block in the blocked (windowed) path. 1 wastes no score entries;
    /// larger blocks mean fewer, larger matmuls. Default: 1.
    #[config(default = 1)]
    pub chunk_frames: usize,
}

impl FrameLocalAttentionConfig {
    /// Size of one head: `d_model / n_heads`.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Build the layer; projections use burn's default `Linear` initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> FrameLocalAttention<B> {
        assert!(
            self.n_heads > 0 && self.d_model % self.n_heads == 0,
            "d_model {} must be a multiple of n_heads {}",
            self.d_model,
            self.n_heads
        );
        assert!(self.window != Some(0), "window must be at least 1 frame");
        assert!(self.chunk_frames > 0, "chunk_frames must be at least 1");
        // Validates head_dim for the axial split.
        AxialRopeSplit::for_head_dim(self.head_dim());
        let linear = || LinearConfig::new(self.d_model, self.d_model).init(device);
        FrameLocalAttention {
            q_proj: linear(),
            k_proj: linear(),
            v_proj: linear(),
            o_proj: linear(),
            n_heads: self.n_heads,
            head_dim: self.head_dim(),
            window: self.window,
            rope_theta: self.rope_theta,
            chunk_frames: self.chunk_frames,
        }
    }
}

/// Multi-head attention over video tokens with a frame window; see the module docs.
#[derive(Module, Debug)]
pub struct FrameLocalAttention<B: Backend> {
    /// W^Q: `[d_model, d_model]`.
    pub q_proj: Linear<B>,
    /// W^K.
    pub k_proj: Linear<B>,
    /// W^V.
    pub v_proj: Linear<B>,
    /// W^O.
    pub o_proj: Linear<B>,
    pub(crate) n_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) window: Option<usize>,
    pub(crate) rope_theta: f64,
    pub(crate) chunk_frames: usize,
}

/// Per-head queries, keys and values, `[batch, n_heads, frames, tokens, head_dim]` each.
pub(crate) struct Qkv<B: Backend> {
    pub q: Tensor<B, 5>,
    pub k: Tensor<B, 5>,
    pub v: Tensor<B, 5>,
}

impl<B: Backend> FrameLocalAttention<B> {
    /// Frames attended by each token (`None`: all past frames).
    pub fn window(&self) -> Option<usize> {
        self.window
    }

    /// Full-sequence (training) path. `first_frame` is the absolute index of `x`'s first frame
    /// (it sets the rotary frame positions).
    ///
    /// # Shapes
    /// - `x`: `[batch, frames, h, w, d_model]`
    /// - returns `[batch, frames, h, w, d_model]`
    pub fn forward(&self, x: Tensor<B, 5>, first_frame: usize) -> Tensor<B, 5> {
        let dims = x.dims();
        let Qkv { q, k, v } = self.project(x, first_frame, None);
        linear(&self.o_proj, self.attend_merged(q, k, v, None, dims))
    }

    /// Streaming path: the new frames attend to the cached keys/values of the previous
    /// `window − 1` frames plus themselves. `commit = false` reads the cache and leaves it
    /// unchanged (denoising passes); `commit = true` appends the new frames' keys/values.
    ///
    /// # Shapes
    /// - `x`: `[batch, f_new, h, w, d_model]`, frames `cache.frames_seen()..+f_new`
    /// - returns `[batch, f_new, h, w, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 5>,
        cache: &mut KvCache<B>,
        commit: bool,
    ) -> Tensor<B, 5> {
        linear(&self.o_proj, self.forward_cached_heads(x, cache, commit))
    }

    /// [`Self::forward_cached`] up to the heads' outputs side by side, before the output
    /// projection `o_proj` (which a caller may fuse with what follows).
    ///
    /// # Shapes
    /// - `x`: `[batch, f_new, h, w, d_model]`; returns `[batch, f_new, h, w, n_heads · head_dim]`
    pub fn forward_cached_heads(
        &self,
        x: Tensor<B, 5>,
        cache: &mut KvCache<B>,
        commit: bool,
    ) -> Tensor<B, 5> {
        let dims = x.dims();
        let [b, _, h, w, _] = dims;
        assert_eq!(
            cache.capacity(),
            self.window.map(|k| k - 1),
            "KvCache was made for another window; use FrameLocalAttention::empty_cache"
        );
        cache.check_layout([b, h, w]);
        let Qkv { q, k, v } = self.project(x, cache.frames_seen(), Some(&mut *cache));
        let out = self.attend_merged(q, k.clone(), v.clone(), Some(cache), dims);
        if commit {
            cache.commit(k, v, [b, h, w]);
        }
        out
    }

    /// A cache for [`Self::forward_cached`] starting at frame 0.
    pub fn empty_cache(&self) -> KvCache<B> {
        KvCache::new(self.window)
    }

    /// Project to heads and apply the axial RoPE to queries and keys. `cache`, when given,
    /// keeps the fused path's angle table for the next pass at the same frames and its packed
    /// q/k/v weights.
    pub(crate) fn project(
        &self,
        x: Tensor<B, 5>,
        first_frame: usize,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Qkv<B> {
        let [b, f, h, w, _d] = x.dims();
        let (nh, hd) = (self.n_heads, self.head_dim);
        let split = AxialRopeSplit::for_head_dim(hd);
        if kernels::fused::serves::<B>(x.dtype()) {
            // One kernel adds the biases, rotates q and k from a per-axis table and moves all
            // three to the heads-major layout (the tensor ops below are its reference).
            let axes = RopeAxes {
                rows: split.rows,
                cols: split.cols,
                frames: split.frames,
            };
            let upload = || {
                let table = rope_table(axes, self.rope_theta, first_frame, f, [h, w]);
                let n = table.len();
                Tensor::from_data(TensorData::new(table, [n]), &x.device())
            };
            let layers = [&self.q_proj, &self.k_proj, &self.v_proj];
            let biases = layers.map(|l| l.bias.as_ref().map(|b| b.val()));
            let biases = match biases {
                [Some(q), Some(k), Some(v)] => Some([q, k, v]),
                _ => None,
            };
            let all_or_none = biases.is_some() || layers.iter().all(|l| l.bias.is_none());
            let products = match cache.as_deref_mut() {
                // Streaming: one product with the three weights side by side, packed once
                // per cache.
                Some(cache) if all_or_none => {
                    let weight = cache.qkv_weight(|| {
                        Tensor::cat(layers.iter().map(|l| l.weight.val()).collect(), 1)
                    });
                    let y = crate::linear_rows::product(x.clone(), weight, None);
                    QkvProducts::Packed(y.reshape([b, f, h * w, 3 * nh, hd]))
                }
                _ => QkvProducts::Separate(layers.map(|l| {
                    let y = match biases {
                        Some(_) => crate::linear_rows::product(x.clone(), l.weight.val(), None),
                        None => linear(l, x.clone()),
                    };
                    y.reshape([b, f, h * w, nh, hd])
                })),
            };
            let table = match cache {
                Some(cache) => cache.rope_table(first_frame, f, upload),
                None => upload(),
            };
            let [q, k, v] = qkv_rope(products, biases, table, axes, [h, w]);
            return Qkv { q, k, v };
        }
        let heads = |t: Tensor<B, 5>| {
            t.reshape([b, f, h * w, nh, hd])
                .swap_dims(2, 3)
                .swap_dims(1, 2)
        };
        let q = heads(linear(&self.q_proj, x.clone()));
        let k = heads(linear(&self.k_proj, x.clone()));
        let v = heads(linear(&self.v_proj, x));
        let (cos, sin) =
            rope_tables::<B>(split, self.rope_theta, first_frame, f, [h, w], &q.device());
        let cos: Tensor<B, 5> = cos.unsqueeze();
        let sin: Tensor<B, 5> = sin.unsqueeze();
        Qkv {
            q: apply_rope(q, cos.clone(), sin.clone()),
            k: apply_rope(k, cos, sin),
            v,
        }
    }

    /// `[batch, n_heads, frames, tokens, head_dim]` → the heads side by side,
    /// `[batch, frames, h, w, n_heads · head_dim]`.
    pub(crate) fn merge_heads(
        &self,
        out: Tensor<B, 5>,
        [b, f, h, w, d]: [usize; 5],
    ) -> Tensor<B, 5> {
        out.swap_dims(1, 2).swap_dims(2, 3).reshape([b, f, h, w, d])
    }

    /// [`Self::attend`] with the heads merged (`dims` = `[batch, frames, h, w, d_model]`).
    /// Outside autodiff on the GPU backends one kernel launch does it all: it reads a cache's
    /// held frames where they lie and writes the heads side by side.
    fn attend_merged(
        &self,
        q: Tensor<B, 5>,
        k: Tensor<B, 5>,
        v: Tensor<B, 5>,
        cache: Option<&KvCache<B>>,
        dims: [usize; 5],
    ) -> Tensor<B, 5> {
        if kernels::attention::takes(&q) {
            // One new frame sees every held frame (a ring holds window − 1), so their order
            // does not matter and the ring's slot order saves reordering them; more new frames
            // need them oldest first.
            let held = cache.and_then(|c| match q.dims()[2] {
                1 => c.held_in_slot_order().map(|(k, v, _)| (k, v)),
                _ => c.held_in_frame_order(),
            });
            return kernels::attention::frame_attention_after(q, held, k, v, self.window)
                .reshape(dims);
        }
        self.merge_heads(self.attend(q, k, v, cache), dims)
    }

    /// Attention of the new frames' queries over the held frames (if any) and the new frames.
    fn attend(
        &self,
        q: Tensor<B, 5>,
        k: Tensor<B, 5>,
        v: Tensor<B, 5>,
        cache: Option<&KvCache<B>>,
    ) -> Tensor<B, 5> {
        let f = q.dims()[2];
        let held = cache.map_or(0, |c| c.len_frames());
        match (cache, self.window) {
            (None, _) => kernel_attention([&q, &k, &v], self.window, training_kernel_min_keys())
                .unwrap_or_else(|| {
                    tensor_op_frame_attention(q, k, v, self.window, self.chunk_frames)
                }),
            (Some(cache), Some(window)) if held + f > self.chunk_frames + window - 1 => {
                let hist = cache.held_in_frame_order();
                blocked_attention(q, k, v, hist, window, self.chunk_frames)
            }
            (Some(cache), _) => {
                let hist = cache.held_in_slot_order();
                dense_attention(q, k, v, hist, cache.frames_seen(), self.window)
            }
        }
    }
}

/// Frame-local attention of a whole sequence by tensor ops (the kernel's reference): the
/// blocked path with `chunk_frames` query frames per block where the window leaves frames
/// out, else one dense masked block.
///
/// # Shapes
/// - `q`, `k`, `v`: `[batch, n_heads, frames, tokens, head_dim]`, RoPE applied; returns the same
pub fn tensor_op_frame_attention<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    window: Option<usize>,
    chunk_frames: usize,
) -> Tensor<B, 5> {
    let f = q.dims()[2];
    match window {
        Some(window) if f > chunk_frames + window - 1 => {
            blocked_attention(q, k, v, None, window, chunk_frames)
        }
        _ => dense_attention(q, k, v, None, 0, window),
    }
}

/// May a query of (relative) frame `qf` see a key of frame `kf`?
fn frame_allowed(qf: isize, kf: isize, window: Option<usize>) -> bool {
    kf <= qf && window.is_none_or(|k| qf - kf < k as isize)
}

/// Full (optionally window-masked) attention: one block of all new frames against the held
/// frames plus the new ones.
///
/// `hist`: held keys, values and the absolute frame of each; `first_new`: absolute frame of the
/// first query frame.
///
/// # Shapes
/// - `q`, `k`, `v`: `[batch, n_heads, f, T, hd]`; returns the same shape
fn dense_attention<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    hist: Option<(Tensor<B, 5>, Tensor<B, 5>, Vec<usize>)>,
    first_new: usize,
    window: Option<usize>,
) -> Tensor<B, 5> {
    let [b, nh, f, t, hd] = q.dims();
    let (k, v, mut key_frames) = match hist {
        Some((hk, hv, frames)) => (
            Tensor::cat(vec![hk, k], 2),
            Tensor::cat(vec![hv, v], 2),
            frames,
        ),
        None => (k, v, Vec::new()),
    };
    key_frames.extend(first_new..first_new + f);
    let ck = key_frames.len();
    let mut allowed = Vec::with_capacity(f * ck);
    for qf in first_new..first_new + f {
        allowed.extend(
            key_frames
                .iter()
                .map(|&kf| frame_allowed(qf as isize, kf as isize, window)),
        );
    }
    let q = q.reshape([b, nh, 1, f * t, hd]);
    let k = k.reshape([b, nh, 1, ck * t, hd]);
    let v = v.reshape([b, nh, 1, ck * t, hd]);
    block_attention(q, k, v, allowed, [f, ck], MAX_SCORE_ELEMENTS).reshape([b, nh, f, t, hd])
}

/// Windowed attention in blocks of `chunk` query frames, each against the `chunk + window − 1`
/// key frames ending at its last frame.
///
/// Keys are laid out as `[zeros, hist, new, zeros]` with `window − 1` frames before the first
/// new frame (held frames, the rest zero and masked) and zeros after, so the keys of block `i`
/// are frames `i·chunk .. i·chunk + chunk + window − 1` of that padded tensor: the
/// concatenation of `m + 1` consecutive chunk-sized slices, `m = ⌈(window − 1)/chunk⌉`.
///
/// # Shapes
/// - `q`, `k`, `v`: `[batch, n_heads, f, T, hd]`; `hist`: held frames oldest first,
///   `[batch, n_heads, p ≤ window − 1, T, hd]`; returns `[batch, n_heads, f, T, hd]`
fn blocked_attention<B: Backend>(
    q: Tensor<B, 5>,
    k: Tensor<B, 5>,
    v: Tensor<B, 5>,
    hist: Option<(Tensor<B, 5>, Tensor<B, 5>)>,
    window: usize,
    chunk: usize,
) -> Tensor<B, 5> {
    let [b, nh, f, t, hd] = q.dims();
    let device = q.device();
    let held = hist.as_ref().map_or(0, |(hk, _)| hk.dims()[2]);
    assert!(
        held < window,
        "history of {held} frames exceeds window − 1 = {}",
        window - 1
    );
    let n = f.div_ceil(chunk);
    let m = (window - 1).div_ceil(chunk);
    let ck = chunk + window - 1;
    let front = window - 1 - held;
    let tail = (n + m) * chunk - (window - 1) - f;
    // No zero-frame tensor is ever built: an empty allocation is a launch of zero blocks,
    // which CUDA rejects (CUDA_ERROR_INVALID_VALUE).
    let zeros = |frames: usize| {
        (frames > 0).then(|| Tensor::<B, 5>::zeros([b, nh, frames, t, hd], &device))
    };

    let pad = |new: Tensor<B, 5>, hist: Option<Tensor<B, 5>>| {
        let mut parts: Vec<Tensor<B, 5>> = zeros(front).into_iter().collect();
        parts.extend(hist);
        parts.push(new);
        parts.extend(zeros(tail));
        let padded = Tensor::cat(parts, 2);
        let chunks = padded.reshape([b, nh, n + m, chunk, t, hd]);
        let window_keys: Vec<_> = (0..=m).map(|s| chunks.clone().narrow(2, s, n)).collect();
        Tensor::cat(window_keys, 3)
            .narrow(3, 0, ck)
            .reshape([b, nh, n, ck * t, hd])
    };
    let (hk, hv) = hist.unzip();
    let k = pad(k, hk);
    let v = pad(v, hv);
    let q = match zeros(n * chunk - f) {
        Some(z) => Tensor::cat(vec![q, z], 2),
        None => q,
    }
    .reshape([b, nh, n, chunk * t, hd]);

    // Query frame j of block i is new frame i·chunk + j; key slot s is new frame
    // i·chunk − (window − 1) + s, which is a zero pad frame when below −held.
    let mut allowed = Vec::with_capacity(n * chunk * ck);
    for i in 0..n {
        for j in 0..chunk {
            let qf = (i * chunk + j) as isize;
            allowed.extend((0..ck).map(|s| {
                let kf = (i * chunk + s) as isize - (window as isize - 1);
                kf >= -(held as isize) && frame_allowed(qf, kf, Some(window))
            }));
        }
    }
    block_attention(q, k, v, allowed, [chunk, ck], MAX_SCORE_ELEMENTS)
        .reshape([b, nh, n * chunk, t, hd])
        .narrow(2, 0, f)
}
