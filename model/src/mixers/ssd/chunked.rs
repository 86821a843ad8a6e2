//! The SSD chunked ("state-space dual") algorithm of Mamba-2 (Dao & Gu 2024, §6, Listing 1):
//! split the sequence into chunks of `chunk_size` steps and compute
//! 1. intra-chunk outputs as a masked matmul (L ∘ C Bᵀ)(Δx), L the segment-sum decay mask;
//! 2. the state each chunk leaves behind from its own inputs;
//! 3. a scan over chunks passing states along (a short sequential loop, linear in chunks);
//! 4. the contribution of the state entering each chunk to that chunk's outputs.
//!
//! Work is linear in the sequence length (quadratic only within a chunk).

use burn::tensor::{backend::Backend, Bool, Tensor};

use super::ssd_dims;

/// SSD by the four-stage chunk algorithm; equals [`super::reference_ssd`] for any
/// `chunk_size ≥ 1`, including lengths that are not a multiple of it.
///
/// # Shapes
/// - `x`: `[batch, seq, heads, head_dim]`
/// - `dt`: `[batch, seq, heads]`, Δ after softplus
/// - `a`: `[heads]`, A < 0
/// - `b`, `c`: `[batch, seq, groups, d_state]`, heads divide evenly among groups
/// - `initial_state`: `[batch, heads, head_dim, d_state]` (zeros if `None`)
/// - returns `y`: `[batch, seq, heads, head_dim]` and the final state
///   `[batch, heads, head_dim, d_state]`
pub fn chunked_ssd<B: Backend>(
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    initial_state: Option<Tensor<B, 4>>,
    chunk_size: usize,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, seq, heads, head_dim, groups, d_state] =
        ssd_dims(&x, &dt, &a, &b, &c, initial_state.as_ref());
    assert!(chunk_size > 0, "SSD: chunk_size must be at least 1");
    let device = x.device();
    // A sequence shorter than a chunk is one chunk of its own length (streaming a frame of a
    // few tokens must not pay for a padded 64-step chunk); the result is the same.
    let l = chunk_size.min(seq);
    let n_chunks = seq.div_ceil(l);

    // Zero padding to whole chunks is exact: Δ = 0 there, so a_t = 1 and nothing is added, and
    // the final state is the one after step `seq`.
    let x = to_chunks(x, l);
    // B and C stay per group: the C Bᵀ products are shared by the group's heads.
    let b = to_chunks(b, l);
    let c = to_chunks(c, l);
    let dt = dt_to_chunks(dt, l);
    let r = heads / groups;

    // log a_t = Δ_t A and its within-chunk prefix sums: [batch, heads, n_chunks, l]
    let log_a_cumsum = (dt.clone() * a.reshape([1, heads, 1, 1])).cumsum(3);
    let x_dt = x * dt.unsqueeze_dim(4);

    // 1. Intra-chunk: Y_diag = (L ∘ C Bᵀ) (Δx), L[i, j] = exp(Σ_{j<k≤i} log a_k) for j ≤ i.
    let decay_mask = segsum(log_a_cumsum.clone()).exp();
    let cb = c.clone().matmul(b.clone().swap_dims(3, 4)); // [batch, groups, n_chunks, l, l]
    let scores = (decay_mask.reshape([batch, groups, r, n_chunks, l, l]) * cb.unsqueeze_dim(2))
        .reshape([batch, heads, n_chunks, l, l]);
    let y_diag = scores.matmul(x_dt.clone());

    // 2. State each chunk leaves from its own inputs, transposed (d_state × head_dim):
    //    Σ_s exp(Σ_{s<k≤l} log a_k) B_s (Δ_s x_s)ᵀ.
    let log_a_total = log_a_cumsum.clone().narrow(3, l - 1, 1);
    let decay_to_end = (log_a_total.clone() - log_a_cumsum.clone()).exp();
    let weighted = fold_heads(x_dt * decay_to_end.unsqueeze_dim(4), groups);
    let chunk_states = unfold_heads(b.swap_dims(3, 4).matmul(weighted), r);

    // 3. Scan over chunks: s_{k+1} = exp(Σ_chunk k log a) s_k + chunk_states_k.
    let chunk_decay = log_a_total.exp(); // [batch, heads, n_chunks, 1]
    let mut state = match initial_state {
        Some(s) => s.swap_dims(2, 3),
        None => Tensor::zeros([batch, heads, d_state, head_dim], &device),
    };
    let mut entering = Vec::with_capacity(n_chunks);
    let decays = chunk_decay.split(1, 2);
    let states = chunk_states.split(1, 2);
    for (decay_k, states_k) in decays.into_iter().zip(states) {
        entering.push(state.clone());
        state = state * decay_k.reshape([batch, heads, 1, 1])
            + states_k.reshape([batch, heads, d_state, head_dim]);
    }
    let entering = fold_heads(Tensor::stack::<5>(entering, 2), groups);

    // 4. State → output: Y_off[i] = exp(Σ_{k≤i} log a_k) C_i s_entering.
    let y_off = unfold_heads(c.matmul(entering), r) * log_a_cumsum.exp().unsqueeze_dim(4);

    let y = from_chunks(y_diag + y_off, seq);
    (y, state.swap_dims(2, 3))
}

/// Zero-pad a sequence to whole chunks of `l` steps and split it:
/// `[batch, seq, m, k]` → `[batch, m, n_chunks, l, k]`, `m` = heads or groups.
pub(super) fn to_chunks<B: Backend>(t: Tensor<B, 4>, l: usize) -> Tensor<B, 5> {
    let [batch, seq, m, k] = t.dims();
    let n_chunks = seq.div_ceil(l);
    let pad = n_chunks * l - seq;
    let t = if pad > 0 {
        let zeros = Tensor::zeros([batch, pad, m, k], &t.device());
        Tensor::cat(vec![t, zeros], 1)
    } else {
        t
    };
    t.reshape([batch, n_chunks, l, m, k])
        .permute([0, 3, 1, 2, 4])
}

/// [`to_chunks`] for Δ: `[batch, seq, heads]` → `[batch, heads, n_chunks, l]`.
pub(super) fn dt_to_chunks<B: Backend>(dt: Tensor<B, 3>, l: usize) -> Tensor<B, 4> {
    let t = to_chunks(dt.unsqueeze_dim(3), l);
    let [batch, heads, n_chunks, l, _] = t.dims();
    t.reshape([batch, heads, n_chunks, l])
}

/// Inverse of [`to_chunks`], dropping the padding: `[batch, m, n_chunks, l, k]` →
/// `[batch, seq, m, k]`.
pub(super) fn from_chunks<B: Backend>(t: Tensor<B, 5>, seq: usize) -> Tensor<B, 4> {
    let [batch, m, n_chunks, l, k] = t.dims();
    t.permute([0, 2, 3, 1, 4])
        .reshape([batch, n_chunks * l, m, k])
        .narrow(1, 0, seq)
}

/// Decay mask exponents within each chunk from the prefix sums `cs` of log a:
/// `out[.., i, j] = cs[i] − cs[j] = Σ_{j<k≤i} log a_k` for j ≤ i, and −∞ above the diagonal,
/// masked *before* `exp` so that the positive differences there never overflow and `exp`
/// gives exact zeros (with zero gradients).
///
/// # Shapes
/// - `cs`: `[batch, heads, n_chunks, l]` → `[batch, heads, n_chunks, l, l]`
pub(super) fn segsum<B: Backend>(cs: Tensor<B, 4>) -> Tensor<B, 5> {
    let [batch, heads, n_chunks, l] = cs.dims();
    let device = cs.device();
    // tril_mask marks what lies outside the lower triangle (j > i)
    let above_diagonal = Tensor::<B, 2, Bool>::tril_mask([l, l], 0, &device)
        .reshape([1, 1, 1, l, l])
        .expand([batch, heads, n_chunks, l, l]);
    (cs.clone().unsqueeze_dim::<5>(4) - cs.unsqueeze_dim::<5>(3))
        .mask_fill(above_diagonal, f32::NEG_INFINITY)
}

/// Put a group's heads side by side so one matmul per group serves them all:
/// `[batch, heads, n_chunks, k, p]` → `[batch, groups, n_chunks, k, heads/groups · p]`.
fn fold_heads<B: Backend>(t: Tensor<B, 5>, groups: usize) -> Tensor<B, 5> {
    let [batch, heads, n_chunks, k, p] = t.dims();
    let r = heads / groups;
    if r == 1 {
        return t;
    }
    t.reshape([batch, groups, r, n_chunks, k, p])
        .permute([0, 1, 3, 4, 2, 5])
        .reshape([batch, groups, n_chunks, k, r * p])
}

/// Inverse of [`fold_heads`] with `r` heads per group.
fn unfold_heads<B: Backend>(t: Tensor<B, 5>, r: usize) -> Tensor<B, 5> {
    if r == 1 {
        return t;
    }
    let [batch, groups, n_chunks, k, rp] = t.dims();
    let p = rp / r;
    t.reshape([batch, groups, n_chunks, k, r, p])
        .permute([0, 1, 4, 2, 3, 5])
        .reshape([batch, groups * r, n_chunks, k, p])
}
