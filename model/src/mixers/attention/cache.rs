//! Key/value cache for streaming frame-local attention (SPEC §5.5).
//!
//! With a window of `k` frames a new frame only needs the keys/values of the previous `k − 1`
//! frames, so the cache is a ring buffer of `k − 1` frame slots: frame `a` lives in slot
//! `a mod (k − 1)`. Memory is constant in the rollout length. Without a window (full causal
//! attention) the cache grows by one frame per committed frame. Keys are stored after the rotary
//! embedding, so a cached key never needs its position again.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

/// Keys and values of the most recent committed frames, owned by the caller.
///
/// # Shapes
/// Stored tensors are `[batch, n_heads, slots, tokens_per_frame, head_dim]`.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    keys: Option<Tensor<B, 5>>,
    values: Option<Tensor<B, 5>>,
    /// Ring capacity in frames (`window − 1`); `None`: unbounded, frames kept in order.
    capacity: Option<usize>,
    frames_seen: usize,
    len: usize,
    /// `[batch, h, w]` of the frames committed so far, checked on every call.
    layout: Option<[usize; 3]>,
    /// The fused RoPE path's angle table for `(first_frame, frames)`: every pass of one
    /// generated frame (the denoising passes and the commit) reuses it instead of uploading it.
    rope: Option<(usize, usize, Tensor<B, 1>)>,
    /// The fused path's q, k and v projection weights side by side (`[d_model, 3 · d_model]`),
    /// packed on the first pass: a cache serves the layer that made it
    /// (`FrameLocalAttention::empty_cache`), whose weights do not change while it streams.
    qkv_weight: Option<Tensor<B, 2>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for attention with the given window (`None`: all past frames).
    pub fn new(window: Option<usize>) -> Self {
        Self {
            keys: None,
            values: None,
            capacity: window.map(|k| k - 1),
            frames_seen: 0,
            len: 0,
            layout: None,
            rope: None,
            qkv_weight: None,
        }
    }

    /// The layer's q, k and v weights side by side: the kept ones, else `make()`'s, kept.
    pub(crate) fn qkv_weight(&mut self, make: impl FnOnce() -> Tensor<B, 2>) -> Tensor<B, 2> {
        self.qkv_weight.get_or_insert_with(make).clone()
    }

    /// The RoPE angle table for `frames` frames from `first_frame`: the kept one if it was made
    /// for them, else `make()`'s, kept for the next call.
    pub(crate) fn rope_table(
        &mut self,
        first_frame: usize,
        frames: usize,
        make: impl FnOnce() -> Tensor<B, 1>,
    ) -> Tensor<B, 1> {
        match &self.rope {
            Some((first, n, table)) if (*first, *n) == (first_frame, frames) => table.clone(),
            _ => {
                let table = make();
                self.rope = Some((first_frame, frames, table.clone()));
                table
            }
        }
    }

    /// Absolute index of the next frame (number of frames committed so far).
    pub fn frames_seen(&self) -> usize {
        self.frames_seen
    }

    /// Number of frames whose keys/values are held (at most `window − 1`).
    pub fn len_frames(&self) -> usize {
        self.len
    }

    /// Ring capacity in frames; `None` when unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Frame slots allocated in the stored key tensor (`window − 1` once anything is committed
    /// with a window; all committed frames without one).
    pub fn slots_allocated(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.dims()[2])
    }

    /// Check that a call with `[batch, h, w]` tokens matches what the cache already holds.
    pub(crate) fn check_layout(&self, layout: [usize; 3]) {
        if let Some(held) = self.layout {
            assert_eq!(
                held, layout,
                "KvCache holds frames of [batch, h, w] = {held:?}, got {layout:?}"
            );
        }
    }

    /// Held keys/values in slot order with the absolute frame index of each slot, or `None`
    /// when nothing is held.
    ///
    /// # Shapes
    /// - returns keys, values `[batch, n_heads, len_frames, tokens, head_dim]`
    pub(crate) fn held_in_slot_order(&self) -> Option<(Tensor<B, 5>, Tensor<B, 5>, Vec<usize>)> {
        if self.len == 0 {
            return None;
        }
        let (keys, values) = (self.keys.clone()?, self.values.clone()?);
        let first = self.frames_seen - self.len;
        match self.capacity {
            None => Some((keys, values, (first..self.frames_seen).collect())),
            Some(cap) => {
                // Slot i holds the held frame congruent to i; slots >= len are still empty
                // (frames are committed from 0 upward, so the filled slots are 0..len).
                let frames = (0..self.len)
                    .map(|slot| first + (slot + cap - first % cap) % cap)
                    .collect();
                let keys = keys.narrow(2, 0, self.len);
                let values = values.narrow(2, 0, self.len);
                Some((keys, values, frames))
            }
        }
    }

    /// Held keys/values oldest frame first.
    ///
    /// # Shapes
    /// - returns keys, values `[batch, n_heads, len_frames, tokens, head_dim]`
    pub(crate) fn held_in_frame_order(&self) -> Option<(Tensor<B, 5>, Tensor<B, 5>)> {
        let (keys, values, frames) = self.held_in_slot_order()?;
        if frames.windows(2).all(|w| w[0] < w[1]) {
            return Some((keys, values));
        }
        let mut order: Vec<usize> = (0..frames.len()).collect();
        order.sort_by_key(|&slot| frames[slot]);
        let order: Vec<i64> = order.into_iter().map(|s| s as i64).collect();
        let index =
            Tensor::<B, 1, Int>::from_data(TensorData::new(order, [frames.len()]), &keys.device());
        Some((keys.select(2, index.clone()), values.select(2, index)))
    }

    /// Append `f_new` frames that repeat the held ones (oldest first, cycling) without running
    /// attention: for latency measurements at long rollouts, where the cost of a frame depends
    /// on how many frames are held and not on what they show. Does nothing when nothing is held.
    pub fn repeat_held(&mut self, f_new: usize) {
        if f_new == 0 {
            return;
        }
        let (Some((keys, values)), Some(layout)) = (self.held_in_frame_order(), self.layout) else {
            return;
        };
        let held = keys.dims()[2];
        let copies = f_new.div_ceil(held);
        let tile = |x: Tensor<B, 5>| Tensor::cat(vec![x; copies], 2).narrow(2, 0, f_new);
        self.commit(tile(keys), tile(values), layout);
    }

    /// Append the keys/values of `f_new` frames that follow the committed ones.
    ///
    /// # Shapes
    /// - `keys`, `values`: `[batch, n_heads, f_new, tokens, head_dim]`
    pub(crate) fn commit(&mut self, keys: Tensor<B, 5>, values: Tensor<B, 5>, layout: [usize; 3]) {
        self.check_layout(layout);
        self.layout = Some(layout);
        let [b, nh, f_new, t, hd] = keys.dims();
        let start = self.frames_seen;
        self.frames_seen += f_new;
        match self.capacity {
            None => {
                self.keys = Some(match self.keys.take() {
                    Some(held) => Tensor::cat(vec![held, keys], 2),
                    None => keys,
                });
                self.values = Some(match self.values.take() {
                    Some(held) => Tensor::cat(vec![held, values], 2),
                    None => values,
                });
                self.len += f_new;
            }
            Some(0) => {}
            Some(cap) => {
                let device = keys.device();
                let mut ring_k = self
                    .keys
                    .take()
                    .unwrap_or_else(|| Tensor::zeros([b, nh, cap, t, hd], &device));
                let mut ring_v = self
                    .values
                    .take()
                    .unwrap_or_else(|| Tensor::zeros([b, nh, cap, t, hd], &device));
                // Only the last `cap` new frames survive; write them as at most two runs of
                // consecutive slots (before and after the wrap).
                let mut j = f_new.saturating_sub(cap);
                while j < f_new {
                    let slot = (start + j) % cap;
                    let run = (f_new - j).min(cap - slot);
                    let k_run = keys.clone().narrow(2, j, run);
                    let v_run = values.clone().narrow(2, j, run);
                    ring_k =
                        ring_k.slice_assign([0..b, 0..nh, slot..slot + run, 0..t, 0..hd], k_run);
                    ring_v =
                        ring_v.slice_assign([0..b, 0..nh, slot..slot + run, 0..t, 0..hd], v_run);
                    j += run;
                }
                self.keys = Some(ring_k);
                self.values = Some(ring_v);
                self.len = (self.len + f_new).min(cap);
            }
        }
    }
}
